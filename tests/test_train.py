"""Tests for nas.fidelity and nas.train: presets, divergence, checkpoint/resume, learning on synthetic data."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.data import DatasetSplits, load_dataset
from nas.errors import CheckpointError, ConfigError, Diverged
from nas.fidelity import FIDELITIES, Fidelity, get_fidelity
from nas.train import CHECKPOINT_NAME, Trainer, load_checkpoint, load_weights, lr_factor, parameter_groups

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data() -> DatasetSplits:
    return load_dataset("synthetic", train_size=480, test_size=80, num_classes=4, channels=3, resolution=12)


def tiny_cnn(width: int = 8, norm: bool = True, classes: int = 4) -> nn.Sequential:
    torch.manual_seed(0)
    bn = [nn.BatchNorm2d(width)] if norm else []
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=not norm),
        *bn,
        nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, classes),
    )


def tiny(**overrides: object) -> Fidelity:
    base = {"train_images": 256, "epochs": 2, "batch_size": 32, "val_images": 100, "probe_images": 50}
    return get_fidelity("quick", **{**base, **overrides})


def accuracy(model: nn.Module, data: DatasetSplits) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(data.normalize(data.val_x)).argmax(1) == data.val_y).float().mean())


# ---------------------------------------------------------------- fidelity


def test_fidelity_presets_and_overrides() -> None:
    assert set(FIDELITIES) == {"quick", "standard", "full"}
    full = get_fidelity("full")
    assert full.train_images is None and full.epochs >= 30 and full.optimizer == "sgd"
    assert full.label_smoothing == pytest.approx(0.1)
    f = get_fidelity("quick", epochs=3, lr=1e-3)
    assert f.epochs == 3 and f.lr == 1e-3 and f.name == "quick"
    assert FIDELITIES["quick"].epochs != 3  # presets are untouched
    assert Fidelity.from_dict(f.to_dict()) == f


def test_fidelity_errors() -> None:
    with pytest.raises(ConfigError, match=r"quick, standard, full"):
        get_fidelity("fast")
    with pytest.raises(ConfigError, match="epochz"):
        get_fidelity("quick", epochz=3)
    with pytest.raises(ConfigError, match="optimizer"):
        get_fidelity("quick", optimizer="lion")
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        get_fidelity("quick", epochs="3")
    for field in ("lr", "weight_decay", "warmup_epochs", "grad_clip", "momentum", "label_smoothing"):
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
                get_fidelity("quick", **{field: value})


def test_lr_schedule_and_groups() -> None:
    factors = [lr_factor(s, warmup_steps=4, total_steps=20) for s in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(factors[3:])) and factors[-1] < 0.01
    decay, no_decay = parameter_groups(tiny_cnn(), 0.05)
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 4  # BN weight and bias, two biases


# ---------------------------------------------------------------- training


def test_learns_synthetic_above_chance(data: DatasetSplits) -> None:
    model = tiny_cnn()
    before = accuracy(model, data)
    result = Trainer(progress=False).fit(model, data, tiny(epochs=4, lr=2e-2, train_images=None), seed=0)
    steps = 4 * (len(data.train_y) // 32)  # the ragged last batch of each epoch is dropped
    assert result.steps == steps and result.epochs == 4 and result.images_seen == steps * 32
    assert result.images_per_s > 0 and result.wall_s > 0 and math.isfinite(result.final_loss)
    assert not model.training
    after = accuracy(model, data)
    assert after > 0.6 and after > before  # chance is 0.25


def test_deterministic_with_sgd_augment_and_progress(data: DatasetSplits) -> None:
    fid = tiny(optimizer="sgd", lr=0.05, augment=True, label_smoothing=0.1, grad_clip=1.0, epochs=1)
    a, b = tiny_cnn(), tiny_cnn()
    Trainer(progress=True).fit(a, data, fid, seed=3)
    Trainer(progress=False).fit(b, data, fid, seed=3)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    c = tiny_cnn()
    Trainer(progress=False).fit(c, data, fid, seed=4)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_diverged_reports_step_and_loss(data: DatasetSplits) -> None:
    fid = tiny(optimizer="sgd", lr=1e6, grad_clip=None, warmup_epochs=0.0, epochs=5)
    with pytest.raises(Diverged) as info:
        Trainer(progress=False).fit(tiny_cnn(norm=False), data, fid, seed=0)
    assert info.value.step >= 2 and not math.isfinite(info.value.loss)
    assert f"step {info.value.step}" in str(info.value)


class Stop(Exception):
    """Raised by a callback to simulate an interruption."""


def test_checkpoint_resume_is_bit_identical(data: DatasetSplits, tmp_path: Path) -> None:
    fid = tiny(augment=True, epochs=2)
    straight = tiny_cnn()
    full = Trainer(progress=False).fit(straight, data, fid, seed=1, checkpoint_dir=tmp_path / "a")

    seen: list[int] = []

    def stop_after_one(epoch: int, model: nn.Module) -> None:
        seen.append(epoch)
        torch.rand(3)  # a callback drawing random numbers must not change training
        raise Stop

    first = tiny_cnn()
    with pytest.raises(Stop):
        Trainer(progress=False).fit(
            first, data, fid, seed=1, checkpoint_dir=tmp_path / "b", epoch_callback=stop_after_one
        )
    assert seen == [1] and load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)["epoch"] == 1

    resumed = tiny_cnn(width=8)
    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    nn.init.normal_(resumed[0].weight)
    result = Trainer(progress=False).fit(resumed, data, fid, seed=1, checkpoint_dir=tmp_path / "b", resume=True)
    assert result.steps == full.steps and result.epochs == 2 and result.images_seen == full.images_seen
    assert result.final_loss == full.final_loss
    for (k, pa), pb in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), k

    again = Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=1, checkpoint_dir=tmp_path / "b", resume=True)
    assert again.epochs == 2 and again.steps == full.steps  # a finished checkpoint: nothing left to do
    loaded = tiny_cnn()
    load_weights(loaded, tmp_path / "b" / CHECKPOINT_NAME)
    assert torch.equal(loaded[0].weight, straight[0].weight.cpu())
    assert not list(tmp_path.glob("*/*.tmp"))


@pytest.mark.parametrize("cut_at_save", [3, 10])  # 8 steps per epoch: inside epoch 1, inside epoch 2
def test_a_checkpoint_inside_an_epoch_resumes_bit_identical(
    data: DatasetSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_at_save: int
) -> None:
    import nas.train as train_module

    fid = tiny(augment=True, epochs=2)
    straight = tiny_cnn()
    full = Trainer(progress=False).fit(straight, data, fid, seed=1)

    real_save, saved = train_module.save_checkpoint, []

    def killed_after(path: Path, state: dict) -> None:  # the process dies right after this checkpoint
        real_save(path, state)
        saved.append((state["epoch"], state["epoch_step"]))
        if len(saved) == cut_at_save:
            raise Stop

    monkeypatch.setattr(train_module, "save_checkpoint", killed_after)
    with pytest.raises(Stop):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=1, checkpoint_dir=tmp_path, checkpoint_every_s=1e-9)
    monkeypatch.undo()
    epoch, inside = saved[-1]
    assert 0 < inside < 8 and epoch == (cut_at_save > 8)  # a mid-epoch checkpoint, not an epoch end
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["step"] == 8 * epoch + inside and len(state["epoch_losses"]) == inside

    resumed = tiny_cnn(width=8)
    nn.init.normal_(resumed[0].weight)  # everything must come from the checkpoint
    result = Trainer(progress=False).fit(resumed, data, fid, seed=1, checkpoint_dir=tmp_path, resume=True,
                                         checkpoint_every_s=1e-9)
    assert (result.steps, result.epochs, result.images_seen) == (full.steps, full.epochs, full.images_seen)
    assert result.final_loss == full.final_loss
    for (k, pa), pb in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), k


def test_format_1_checkpoints_still_resume_and_a_bad_open_epoch_is_refused(data: DatasetSplits,
                                                                           tmp_path: Path) -> None:
    fid = tiny(epochs=2)
    straight = tiny_cnn()
    Trainer(progress=False).fit(straight, data, fid, seed=2)

    class Stop1(Exception):
        pass

    def stop(epoch: int, model: nn.Module) -> None:
        raise Stop1

    with pytest.raises(Stop1):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=2, checkpoint_dir=tmp_path, epoch_callback=stop)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    old = {k: v for k, v in state.items() if not k.startswith("epoch_")} | {"format": 1}  # as version 1 wrote it
    torch.save(old, tmp_path / CHECKPOINT_NAME)
    resumed = tiny_cnn()
    Trainer(progress=False).fit(resumed, data, fid, seed=2, checkpoint_dir=tmp_path, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(),
                                                  strict=True))

    bad = dict(state, epoch=0, step=3, epoch_step=3, epoch_order=torch.zeros(5, 2, dtype=torch.long),
               epoch_losses=torch.zeros(3))
    torch.save(bad, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="another shape"):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=2, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="positive"):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=2, checkpoint_dir=tmp_path, checkpoint_every_s=0)


def test_corrupt_or_mismatched_checkpoint(data: DatasetSplits, tmp_path: Path) -> None:
    fid = tiny(epochs=1)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CHECKPOINT_NAME).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=0, checkpoint_dir=tmp_path / "bad", resume=True)

    Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=0, checkpoint_dir=tmp_path / "ok")
    with pytest.raises(CheckpointError, match="does not match the model"):
        Trainer(progress=False).fit(
            tiny_cnn(width=16), data, fid, seed=0, checkpoint_dir=tmp_path / "ok", resume=True
        )
    with pytest.raises(CheckpointError, match="seed"):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=9, checkpoint_dir=tmp_path / "ok", resume=True)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a bottleneck-nas"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ConfigError):
        Trainer(progress=False).fit(tiny_cnn(), data, fid, seed=0, resume=True)
