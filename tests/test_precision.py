"""Tests of the training precision: Fidelity.precision, resolve_precision, bf16 autocast in the Trainer, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import nas.train
from nas.data import DatasetSplits, load_dataset
from nas.errors import CheckpointError, ConfigError
from nas.fidelity import FIDELITIES, Fidelity, get_fidelity
from nas.metrics import interference_suite, predict_logits
from nas.train import CHECKPOINT_NAME, Trainer, cpu_native_bf16, load_checkpoint, resolve_precision

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data() -> DatasetSplits:
    return load_dataset("synthetic", train_size=160, test_size=40, num_classes=4, channels=3, resolution=8)


def tiny_cnn(width: int = 8) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 4),
    )


def tiny(precision: str, **overrides: object) -> Fidelity:
    base = {"train_images": 128, "epochs": 1, "batch_size": 32, "val_images": 40, "probe_images": 20}
    return get_fidelity("quick", precision=precision, **{**base, **overrides})


# ---------------------------------------------------------------- fidelity


def test_precision_field_validated_and_presets_fp32() -> None:
    assert all(f.precision == "fp32" for f in FIDELITIES.values())
    for precision in ("fp32", "bf16", "auto"):
        assert get_fidelity("quick", precision=precision).precision == precision
    with pytest.raises(ConfigError, match=r"precision must be one of fp32, bf16, auto \(got 'fp16'\)"):
        get_fidelity("quick", precision="fp16")
    with pytest.raises(ConfigError, match="precision must be a string"):
        get_fidelity("quick", precision=16)
    assert "precision" not in get_fidelity("quick").describe()
    assert get_fidelity("quick", precision="bf16").describe().endswith(", precision bf16")


def test_from_dict_reads_missing_precision_as_fp32() -> None:
    bf16 = get_fidelity("standard", precision="bf16")
    assert Fidelity.from_dict(bf16.to_dict()) == bf16
    old = get_fidelity("standard").to_dict()
    del old["precision"]  # written before the field existed
    assert Fidelity.from_dict(old) == get_fidelity("standard")
    del old["epochs"]  # every other field is still required
    with pytest.raises(ConfigError, match=r"lacks \['epochs'\]"):
        Fidelity.from_dict(old)
    with pytest.raises(ConfigError, match="precision must be one of"):
        Fidelity.from_dict({**bf16.to_dict(), "precision": "half"})


# ---------------------------------------------------------------- resolve_precision


def test_resolve_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    native = cpu_native_bf16()
    assert [resolve_precision("auto", cpu) for _ in range(3)] == ["bf16" if native else "fp32"] * 3
    features = torch.cpu.get_capabilities()
    if features.get("architecture") == "x86_64":  # the hardware's own answer, not a timing
        assert native == bool(features.get("avx512_bf16") or features.get("amx_bf16"))
    monkeypatch.setattr(nas.train, "cpu_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(nas.train, "cpu_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", torch.device("meta")) == "fp32"  # no known bf16 support: fp32
    with pytest.raises(ConfigError, match="fp32, bf16, auto"):
        resolve_precision("fp16", cpu)


# ---------------------------------------------------------------- training


def test_bf16_training_autocasts_but_keeps_fp32_state(data: DatasetSplits, tmp_path: Path) -> None:
    model = tiny_cnn()
    seen: set[torch.dtype] = set()
    hook = model[0].register_forward_hook(lambda _m, _i, out: seen.add(out.dtype) if _m.training else None)
    result = Trainer(progress=False).fit(model, data, tiny("bf16"), seed=0, checkpoint_dir=tmp_path)
    hook.remove()
    assert result.precision == "bf16" and result.to_dict()["precision"] == "bf16"
    assert seen == {torch.bfloat16}  # the training forward ran under bf16 autocast
    assert math.isfinite(result.final_loss) and result.steps == 4
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert tensor.dtype in (torch.float32, torch.int64), name  # BN's num_batches_tracked is int64
        assert torch.isfinite(tensor).all(), name
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["precision"] == "bf16" and state["fidelity"]["precision"] == "bf16"
    moments = [v for s in state["optimizer"]["state"].values() for v in s.values() if v.is_floating_point()]
    assert moments and all(v.dtype == torch.float32 for v in moments)  # AdamW state stays fp32

    fp32 = tiny_cnn()
    fp32_result = Trainer(progress=False).fit(fp32, data, tiny("fp32"), seed=0)
    assert fp32_result.precision == "fp32"
    assert not torch.equal(fp32[0].weight, model[0].weight)  # bf16 really changed the arithmetic
    again = tiny_cnn()
    Trainer(progress=False).fit(again, data, tiny("bf16"), seed=0)
    assert torch.equal(again[0].weight, model[0].weight)  # and stays bit-exact with a seed on CPU


def test_metrics_after_bf16_training_are_fp32(data: DatasetSplits) -> None:
    model = tiny_cnn()
    Trainer(progress=False).fit(model, data, tiny("bf16"), seed=1)
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of fit
    seen: list[torch.dtype] = []
    hook = model[3].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    logits = predict_logits(model, data.val_x, normalize=data.normalize, batch_size=16)
    assert logits.dtype == torch.float32 and set(seen) == {torch.float32}
    batches = [(data.normalize(data.val_x), data.val_y)]
    result = interference_suite(model, [model[3]], batches, num_classes=4)
    hook.remove()
    assert result.finite and set(seen) == {torch.float32}
    assert all(isinstance(result[m], float) for m in ("polysemanticity", "overlap", "outliers", "dead_fraction"))


def test_resume_refuses_a_different_resolved_precision(
    data: DatasetSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Trainer(progress=False).fit(tiny_cnn(), data, tiny("fp32"), seed=0, checkpoint_dir=tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"different precision \('fp32', now 'bf16'\)"):
        Trainer(progress=False).fit(tiny_cnn(), data, tiny("bf16"), seed=0, checkpoint_dir=tmp_path / "a", resume=True)

    monkeypatch.setattr(nas.train, "cpu_native_bf16", lambda: True)  # "auto" and "bf16" resolving alike may resume
    Trainer(progress=False).fit(tiny_cnn(), data, tiny("bf16"), seed=0, checkpoint_dir=tmp_path / "b")
    resumed = Trainer(progress=False).fit(
        tiny_cnn(), data, tiny("auto"), seed=0, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert resumed.precision == "bf16" and resumed.epochs == 1
    monkeypatch.setattr(nas.train, "cpu_native_bf16", lambda: False)  # now "auto" means fp32: refused
    with pytest.raises(CheckpointError, match="different precision"):
        Trainer(progress=False).fit(tiny_cnn(), data, tiny("auto"), seed=0, checkpoint_dir=tmp_path / "b", resume=True)

    old = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)  # a checkpoint from before precision existed
    del old["precision"], old["fidelity"]["precision"]
    torch.save(old, tmp_path / "a" / CHECKPOINT_NAME)
    done = Trainer(progress=False).fit(tiny_cnn(), data, tiny("fp32"), seed=0, checkpoint_dir=tmp_path / "a",
                                       resume=True)
    assert done.precision == "fp32" and done.epochs == 1
    with pytest.raises(CheckpointError, match="different precision"):
        Trainer(progress=False).fit(tiny_cnn(), data, tiny("bf16"), seed=0, checkpoint_dir=tmp_path / "a", resume=True)
