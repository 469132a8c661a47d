"""Tests for nas.retrain: selection, CLI errors (exit 2), kill-and-resume, export + nas.load, ONNX, proxy audit."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.cli import main
from nas.errors import CheckpointError, ConfigError
from nas.objectives import Objective
from nas.retrain import audit, export, select
from nas.retrain.plan import CHECKPOINT_NAME, METRICS_NAME, Job, preflight
from nas.retrain.report import RETRAIN_COLUMNS
from nas.run import RunStore, TrialRecord, one_per_architecture, pareto_front
from nas.testing import make_run

torch.set_num_threads(1)

A = "stem_c8_k3_s1/basic_d1_s2_c16_k3_relu_bn"
B = "stem_c8_k3_s1/separable_d1_s2_c16_k3_relu_bn"
C = "stem_c8_k3_s1/inverted_d1_s2_c16_e2_k3_relu_dw_bn"
D = "stem_c8_k3_s1/nodepth_d1_s2_c16_e2_k3_relu_bn"
# (trial, arch, accuracy, polysemanticity, status, reused); the front is 0, 1, 2 (+ 4, a reused copy of 1)
TRIALS = [
    (0, A, 0.6, 0.5, "complete", False),
    (1, B, 0.5, 0.3, "complete", False),
    (2, C, 0.4, 0.2, "complete", False),
    (3, D, 0.3, 0.6, "complete", False),
    (4, B, 0.5, 0.3, "complete", True),
    (5, D, None, None, "failed", False),
]
OBJECTIVES = [Objective("accuracy", "maximize"), Objective("polysemanticity", "minimize")]
FID = ["--epochs", "2", "--set", "train_images=128", "--set", "batch_size=32", "--set", "probe_images=40",
       "--set", "eval_batch_size=100", "--seed", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def tiny_run(root: Path, objectives: tuple[str, ...] = ("accuracy", "polysemanticity")) -> Path:
    """A tiny run folder (run.yaml, trial records, trials.csv) written through nas.testing.make_run, no search."""
    from nas.models import count_params
    from nas.space import Architecture, Budget

    rows = []
    for tid, text, acc, poly, status, reused in TRIALS:
        arch = Architecture.parse(text)
        rows.append(dict(trial_id=tid, status=status, reason="" if status == "complete" else "diverged: test",
                         reused=reused, arch=arch.to_string(), arch_hash=arch.semantic_hash, fidelity="quick",
                         params=count_params(arch, in_channels=3, num_classes=4), macs=1000 * (tid + 1), epochs=2,
                         seed=0, accuracy=acc, polysemanticity=poly, overlap=0.1 * tid))
    make_run(root, len(rows), rows=rows, objectives=objectives, dataset="synthetic", budget=Budget(20_000, 0.05, 8))
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("pristine") / "tiny")


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "tiny"))


@pytest.fixture(scope="module")
def trained(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run with trial 0 retrained straight through (2 epochs), with ONNX when available."""
    root = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("trained") / "tiny"))
    onnx = ["--onnx"] if export.onnx_available() else []
    assert main(["retrain", str(root), "--trial", "0", *FID, *onnx]) == 0
    return root


def hash_of(text: str) -> str:
    from nas.space import Architecture

    return Architecture.parse(text).semantic_hash


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err
    return err


# ---------------------------------------------------------------- selection


def test_spread_indices() -> None:
    assert select.spread_indices(7, 3) == [0, 3, 6]
    assert select.spread_indices(5, 2) == [0, 4]
    assert select.spread_indices(10, 1) == [0]
    assert select.spread_indices(3, 5) == [0, 1, 2]
    for n in range(1, 25):
        for k in range(2, n + 1):
            idx = select.spread_indices(n, k)
            assert len(idx) == k and idx[0] == 0 and idx[-1] == n - 1
            assert all(b > a for a, b in itertools.pairwise(idx))
    with pytest.raises(ConfigError):
        select.spread_indices(4, 0)


def test_spread_front_and_dedupe() -> None:
    front = [
        TrialRecord.from_dict({"trial_id": i, "status": "complete", "arch": A, "arch_hash": h, "fidelity": "quick",
                               "accuracy": acc, "polysemanticity": poly, "reused": r})
        for i, acc, poly, h, r in [(0, 0.70, 0.9, "a", False), (1, 0.90, 0.95, "b", False), (2, 0.50, 0.3, "c", False),
                                   (3, 0.60, 0.5, "d", False), (4, 0.80, 0.92, "e", False), (5, 0.60, 0.5, "d", True)]
    ]
    unique = one_per_architecture(front)
    assert [r.trial_id for r in unique] == [0, 1, 2, 3, 4]
    ordered = select.sort_front(unique, OBJECTIVES)
    assert [r.trial_id for r in ordered] == [1, 4, 0, 3, 2]  # by accuracy, best first
    assert [r.trial_id for r in select.spread_front(unique, OBJECTIVES, 3)] == [1, 0, 2]
    assert [r.trial_id for r in select.spread_front(unique, OBJECTIVES, 2)] == [1, 2]


def test_front_read_from_records(run: Path) -> None:
    from nas.models import build_model
    from nas.retrain.plan import RetrainOptions, plan_retrain
    from nas.space import Architecture

    config = RunStore(run).read_config()
    front = pareto_front(RunStore(run).records(), config.objectives, config.fidelity.name)
    assert not (run / "study.db").exists()  # the front comes from the records alone
    assert [r.trial_id for r in front] == [0, 1, 2]  # trial 3 dominated, 4 a reused copy of 1, 5 failed
    from nas.fidelity import get_fidelity

    plan = plan_retrain(RetrainOptions(fidelity=get_fidelity("full"), run=str(run), top=2))
    assert [(c.kind, c.source) for c in plan.candidates] == [("trial", "0"), ("trial", "2")]
    assert plan.seed == 0 and plan.interference == ["polysemanticity"] and not plan.done
    odd = "stem_c8_k3_s1/basic_d2_s1_c8_k3_relu_bn"
    plan = plan_retrain(RetrainOptions(fidelity=get_fidelity("full"), run=str(run), archs=[B, odd, B]))
    assert [(c.kind, c.source) for c in plan.candidates] == [("trial", "1"), ("arch", "")]  # B is trial 1's network
    assert plan.candidates[1].params == sum(p.numel() for p in build_model(
        Architecture.parse(odd), in_channels=3, num_classes=4, resolution=16).parameters())
    plan = plan_retrain(RetrainOptions(fidelity=get_fidelity("full"), run=str(run), baseline_names=["mobilenet_v1"]))
    assert [(c.kind, c.source) for c in plan.candidates] == [("baseline", "mobilenet_v1")]  # at the run's budget
    assert 19_000 <= plan.candidates[0].params <= 20_000 and plan.out_dir == run.resolve() / "retrain"
    assert not (run / "retrain").exists()  # planning writes nothing


# ---------------------------------------------------------------- user errors: one message, exit 2


def test_bad_selections_exit_2(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", str(run), "--trial", "99", *FID]) == 2
    assert "trial 99 is not in run" in one_error(capsys)
    assert main(["retrain", str(run), "--trial", "5", *FID]) == 2
    err = one_error(capsys)
    assert "trial 5" in err and "is failed" in err
    assert main(["retrain", str(run), "--arch", "stem_c8_k3_s1/bogus_d1_s1_c8_k3_relu", *FID]) == 2
    assert "does not parse" in one_error(capsys)
    assert main(["retrain", str(run), "--baseline", "lenet", *FID]) == 2
    assert "unknown baseline" in one_error(capsys)
    assert main(["retrain", "--top", "2", *FID]) == 2
    assert "run" in one_error(capsys)
    assert main(["retrain", str(run / "nope"), *FID]) == 2
    assert "does not exist" in one_error(capsys)
    (run / "nope").mkdir()
    assert main(["retrain", str(run / "nope"), *FID]) == 2
    assert "not a run folder" in one_error(capsys)
    assert not (run / "retrain").exists()


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", ["budget-int", "unknown-key", "old-style", "corrupt-yaml"])
def test_off_schema_run_yaml_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bug 2: a run.yaml off the schema ends in one `error:` line naming the key, never a traceback."""
    import yaml

    from nas.fidelity import get_fidelity
    from nas.testing import make_config

    root = tiny_run(tmp_path / "tiny")
    data = make_config("tiny", dataset="synthetic").to_dict()
    expected = {"budget-int": "budget", "unknown-key": "colour", "old-style": "version", "corrupt-yaml": "run.yaml"}
    if case == "budget-int":
        data["budget"] = 1500000  # what the old synthetic fixture wrote
    elif case == "unknown-key":
        data["colour"] = "blue"
    elif case == "old-style":  # the dialect retrain used to read through cfg.get
        data = {"name": "tiny", "dataset": "synthetic", "data_dir": None, "resolution": None, "seed": 0,
                "storage": None, "budget": {"params": 20_000, "tolerance": 0.05, "divisor": 8},
                "objectives": [o.to_dict() for o in OBJECTIVES], "fidelity": get_fidelity("quick").to_dict()}
    text = "name: [unclosed\n" if case == "corrupt-yaml" else yaml.safe_dump(data, sort_keys=False)
    (root / "run.yaml").write_text(text)
    before = snapshot(root)
    for args in (["--baselines"], ["--top", "2"]):
        assert main(["retrain", str(root), *args, *FID]) == 2
        err = one_error(capsys)
        assert len(err.splitlines()) == 1 and expected[case] in err, err
    assert snapshot(root) == before


def test_run_without_interference_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bug 1: an accuracy,params run is selected on accuracy and params; no interference metric is audited."""
    from nas.fidelity import get_fidelity
    from nas.retrain.plan import RetrainOptions, plan_retrain

    root = tiny_run(tmp_path / "acc-params", objectives=("accuracy", "params"))
    records = [r for r in RunStore(root).records() if r.complete and not r.reused]

    def dominated(r: TrialRecord) -> bool:
        mine = (r.accuracy, r.params)
        return any(o.accuracy >= r.accuracy and o.params <= r.params and (o.accuracy, o.params) != mine
                   for o in records)

    front = sorted((r for r in records if not dominated(r)), key=lambda r: -r.accuracy)
    plan = plan_retrain(RetrainOptions(fidelity=get_fidelity("full"), run=str(root), top=len(records)))
    assert plan.interference == [] and [o.name for o in plan.objectives] == ["accuracy", "params"]
    assert [c.source for c in plan.candidates] == [str(r.trial_id) for r in front]

    assert main(["retrain", str(root), "--top", "1", "--json", *FID]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {c["target"] for c in out["audit"]} == {"test accuracy"}
    report = (root / "retrain" / "report.md").read_text()
    assert "optimised no interference metric" in report and "| polysemanticity |" not in report
    assert main(["retrain", str(root), "--top", "1", *FID]) == 0  # kept; the terminal says why no interference
    assert "optimised no interference metric" in capsys.readouterr().out


@pytest.mark.parametrize("arch", [
    "stem_c8_k3_s1/basic_d128_s1_c16384_k3_relu_bn",  # parses, but cannot exist in memory
    "stem_c8_k3_s1/basic_d1_s2_c99999999_k3_relu_bn",  # a width beyond the rules
    "stem_c8_k3_s1/" + "basic_d1_s1_c8_k3_relu_bn/" * 500,  # a long string
])
def test_absurd_arch_fails_before_writing(arch: str, run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(run)
    assert main(["retrain", str(run), "--arch", arch, *FID]) == 2
    err = one_error(capsys)
    assert len(err.splitlines()) == 1 and len(err) < 600, err
    assert snapshot(run) == before  # no retrain/, no header-only retrain.csv, no empty report.md


@pytest.mark.parametrize("option", [["--workers", "0"], ["--workers", "-1"], ["--cpus-per-trial", "0"],
                                    ["--cpus-per-trial", "-1"], ["--threads", "0"], ["--top", "0"],
                                    ["--device", "tpu"]])
def test_bad_options_refused_before_anything(
    option: list[str], run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import nas.data

    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(nas.data, "load_dataset", no_data)
    before = snapshot(run)
    started = time.monotonic()
    pick = [] if option[0] == "--top" else ["--trial", "0"]
    assert main(["retrain", str(run), *pick, "--results-dir", str(tmp_path / "r"), *option, *FID]) == 2
    assert time.monotonic() - started < 60  # a hang guard (training would start), not a speed target
    err = one_error(capsys)
    assert option[0] in err and len(err.splitlines()) == 1
    assert snapshot(run) == before and not (tmp_path / "r").exists()


def test_unreadable_trial_record_is_named(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run / "trials" / "00000" / "metrics.json"
    path.write_text(path.read_text()[:40])
    assert main(["retrain", str(run), "--trial", "0", *FID]) == 2
    err = one_error(capsys)
    assert str(path) in err and "is not in the run" not in err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_refused_without_unsafe_advice(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = run.parent / "pwned"
    crafted = run / "retrain" / hash_of(A) / CHECKPOINT_NAME
    crafted.parent.mkdir(parents=True)
    torch.save({"model": _Payload(marker)}, crafted)
    assert main(["retrain", str(run), "--trial", "0", "--resume", *FID]) == 2
    err = one_error(capsys)
    assert "corrupt or unreadable" in err and len(err.splitlines()) == 1
    assert "weights_only" not in err and "likely succeed" not in err and "trusted" not in err
    assert not marker.exists()  # nothing the file carries ran


def test_param_count_mismatch_fails_loudly(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run / "trials" / "00000" / "metrics.json"
    record = json.loads(path.read_text())
    record["params"] += 8
    path.write_text(json.dumps(record))
    assert main(["retrain", str(run), "--trial", "0", *FID]) == 2
    err = one_error(capsys)
    assert "rebuilds with" in err and f"{record['params']:,}" in err
    assert not (run / "retrain").exists()


def test_onnx_missing_names_the_extra(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "onnx_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'bottleneck-nas\[onnx\]'"):
        export.require_onnx()


# ---------------------------------------------------------------- training, resume, export


def test_retrain_writes_metrics_csv_report_and_keeps_finished(trained: Path) -> None:
    folder = trained / "retrain" / hash_of(A)
    for name in (CHECKPOINT_NAME, METRICS_NAME, export.WEIGHTS_NAME, export.ARCH_NAME):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / METRICS_NAME).read_text())
    assert metrics["status"] == "complete" and metrics["epochs"] == 2 and metrics["kind"] == "trial"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["proxy_accuracy"] == 0.6
    assert metrics["params"] == json.loads((trained / "trials/00000/metrics.json").read_text())["params"]
    assert metrics["macs"] > 0 and metrics["latency_ms"] > 0
    lines = (trained / "retrain" / "retrain.csv").read_text().splitlines()
    assert lines[0].split(",") == list(RETRAIN_COLUMNS) and len(lines) == 2
    assert "Proxy audit" in (trained / "retrain" / "report.md").read_text()
    stamp = (folder / METRICS_NAME).stat().st_mtime_ns
    assert main(["retrain", str(trained), "--trial", "0", *FID]) == 0  # finished: kept, not retrained
    assert (folder / METRICS_NAME).stat().st_mtime_ns == stamp


_KILLED = """
import sys, time
import torch
torch.set_num_threads(1)
from nas.cli import build_parser
from nas.cli.retrain import options_from_args
from nas.retrain.job import retrain_one
from nas.retrain.plan import plan_retrain

def pause(epoch, model):
    print("EPOCH", epoch, flush=True)
    time.sleep(600)  # killed here, after epoch 1's checkpoint

plan = plan_retrain(options_from_args(build_parser().parse_args(sys.argv[1:])))
retrain_one(plan.jobs[0], plan.data, epoch_callback=pause)
"""


def test_kill_and_resume_ends_with_the_same_weights(
    trained: Path, pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    from nas.train import load_checkpoint

    run = Path(shutil.copytree(pristine, tmp_path / "tiny"))
    folder = run / "retrain" / hash_of(A)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, "retrain", str(run), "--trial", "0", *FID],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until epoch 1 is checkpointed (or the process dies)
        assert line.strip() == "EPOCH 1", line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert load_checkpoint(folder / CHECKPOINT_NAME)["epoch"] == 1 and not (folder / METRICS_NAME).exists()

    before = (folder / CHECKPOINT_NAME).read_bytes()
    assert main(["retrain", str(run), "--trial", "0", *FID]) == 2  # never silently restarts over a checkpoint
    assert "--resume" in one_error(capsys)
    assert (folder / CHECKPOINT_NAME).read_bytes() == before

    assert main(["retrain", str(run), "--trial", "0", "--resume", *FID]) == 0
    straight = load_checkpoint(trained / "retrain" / hash_of(A) / CHECKPOINT_NAME)
    resumed = load_checkpoint(folder / CHECKPOINT_NAME)
    assert resumed["epoch"] == straight["epoch"] == 2 and resumed["step"] == straight["step"]
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    a = load_file(str(trained / "retrain" / hash_of(A) / export.WEIGHTS_NAME))
    b = load_file(str(folder / export.WEIGHTS_NAME))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma = json.loads((trained / "retrain" / hash_of(A) / METRICS_NAME).read_text())
    mb = json.loads((folder / METRICS_NAME).read_text())
    assert ma["test_accuracy"] == mb["test_accuracy"] and ma["polysemanticity"] == mb["polysemanticity"]


def test_corrupt_or_foreign_checkpoint_is_refused(
    trained: Path, run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # another architecture's checkpoint in trial 2's folder
    foreign = run / "retrain" / hash_of(C) / CHECKPOINT_NAME
    foreign.parent.mkdir(parents=True)
    shutil.copy(trained / "retrain" / hash_of(A) / CHECKPOINT_NAME, foreign)
    before = foreign.read_bytes()
    assert main(["retrain", str(run), "--trial", "2", "--resume", *FID]) == 2
    assert "does not match the model" in one_error(capsys)
    assert foreign.read_bytes() == before and sorted(p.name for p in foreign.parent.iterdir()) == [CHECKPOINT_NAME]

    # a corrupted checkpoint: a clear CheckpointError, nothing touched
    corrupt = run / "retrain" / hash_of(B) / CHECKPOINT_NAME
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x00not a checkpoint" * 64)
    assert main(["retrain", str(run), "--trial", "1", "--resume", *FID]) == 2
    assert "corrupt" in one_error(capsys)
    assert corrupt.read_bytes() == b"\x00not a checkpoint" * 64
    from nas.data import load_dataset
    from nas.fidelity import get_fidelity
    from nas.space import Architecture

    job = Job(select.Candidate("trial", "1", Architecture.parse(B), 0), corrupt.parent, get_fidelity("full"), 0,
              resume=True)
    with pytest.raises(CheckpointError, match=r"corrupt or unreadable .*delete it"):
        preflight(job, load_dataset("synthetic"))

    # a finished candidate at other settings is kept, not overwritten
    done = run / "retrain" / hash_of(A)
    shutil.copytree(trained / "retrain" / hash_of(A), done)
    assert main(["retrain", str(run), "--trial", "0", *FID[:-1], "7"]) == 2
    assert "different seed" in one_error(capsys)


_LOAD = """
import sys
import torch
torch.set_num_threads(1)
import nas
from safetensors.torch import load_file, save_file
model = nas.load(sys.argv[1])
assert not model.training
with torch.inference_mode():
    save_file({"logits": model(load_file(sys.argv[2])["x"]).contiguous()}, sys.argv[3])
"""


def test_export_loads_in_a_fresh_process(trained: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    import nas
    from nas.data import load_dataset

    folder = trained / "retrain" / hash_of(A)
    data = load_dataset("synthetic")
    x = data.normalize(data.test_x)
    model = nas.load(folder)
    with torch.inference_mode():
        logits = model(x)
    metrics = json.loads((folder / METRICS_NAME).read_text())
    assert (logits.argmax(1) == data.test_y).float().mean().item() == pytest.approx(metrics["test_accuracy"])
    save_file({"x": x.contiguous()}, str(tmp_path / "x.safetensors"))
    for target in (folder, folder / export.WEIGHTS_NAME):
        subprocess.run([sys.executable, "-c", _LOAD, str(target), str(tmp_path / "x.safetensors"),
                        str(tmp_path / "y.safetensors")], check=True, env=ENV, timeout=120)
        fresh = load_file(str(tmp_path / "y.safetensors"))["logits"]
        assert torch.equal(fresh.argmax(1), logits.argmax(1))
        assert torch.allclose(fresh, logits, atol=1e-6, rtol=0)
    info = export.read_export_info(folder)
    assert info["arch"] == A and (info["in_channels"], info["num_classes"], info["resolution"]) == (3, 4, 16)
    assert len(info["mean"]) == 3
    out = subprocess.run([sys.executable, "-c", "import sys, nas; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, env=ENV)
    assert out.stdout.strip() == "False"  # `import nas` stays light
    with pytest.raises(CheckpointError, match="not a bottleneck-nas export"):
        nas.load(tmp_path)


def test_onnx_export_matches_pytorch(trained: Path) -> None:
    if not export.onnx_available():
        pytest.skip("onnx/onnxruntime not installed (pip install 'bottleneck-nas[onnx]')")
    import numpy as np
    import onnxruntime as ort

    import nas
    from nas.data import load_dataset

    folder = trained / "retrain" / hash_of(A)
    metrics = json.loads((folder / METRICS_NAME).read_text())
    assert metrics["export"]["onnx"] == export.ONNX_NAME and metrics["export"]["onnx_max_abs_diff"] <= 1e-4
    data = load_dataset("synthetic")
    x = data.normalize(data.test_x[:32])
    model = nas.load(folder)
    with torch.inference_mode():
        want = model(x).numpy()
    session = ort.InferenceSession(str(folder / export.ONNX_NAME), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    assert got.shape == want.shape and float(np.abs(got - want).max()) <= 1e-4


def test_diverged_candidate_is_recorded_and_the_rest_goes_on(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.errors import Diverged
    from nas.train import Trainer

    real_fit = Trainer.fit

    def fit(self: Trainer, model: Any, *args: Any, **kwargs: Any) -> Any:
        if model.arch.semantic_hash == hash_of(C):
            raise Diverged(3, float("nan"))
        return real_fit(self, model, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    assert main(["retrain", str(run), "--top", "2", *FID]) == 1  # trial 0 trains, trial 2 diverges
    failed = json.loads((run / "retrain" / hash_of(C) / METRICS_NAME).read_text())
    assert failed["status"] == "failed" and "diverged at step 3" in failed["reason"]
    ok = json.loads((run / "retrain" / hash_of(A) / METRICS_NAME).read_text())
    assert ok["status"] == "complete"
    assert "diverged at step 3" in (run / "retrain" / "report.md").read_text()


# ---------------------------------------------------------------- baselines


def test_baselines_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", "--baselines", "--dataset", "synthetic", *FID]) == 2
    assert "--budget" in one_error(capsys)
    args = ["retrain", "--baseline", "mobilenet_v1", "--budget", "20k", "--dataset", "synthetic",
            "--results-dir", str(tmp_path), *FID]
    assert main(args) == 0
    rows = (tmp_path / "baselines-20_0k" / "retrain.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("baseline,mobilenet_v1,complete,")
    params = int(rows[1].split(",")[RETRAIN_COLUMNS.index("params")])
    assert 19_000 <= params <= 20_000


# ---------------------------------------------------------------- proxy audit


def test_audit_matches_scipy() -> None:
    from scipy import stats

    from nas.analysis.stats import correlate

    x, y = [0.1, 0.4, 0.35, 0.8, 0.6], [0.2, 0.5, 0.55, 0.9, 0.7]
    c = correlate(x, y, target="test accuracy", predictor="proxy accuracy")
    assert c.n == 5 and not c.note
    assert c.tau == pytest.approx(stats.kendalltau(x, y).statistic) and c.tau == pytest.approx(0.8)
    assert c.tau_p == pytest.approx(stats.kendalltau(x, y).pvalue)
    assert c.rho == pytest.approx(stats.spearmanr(x, y).statistic) and c.rho == pytest.approx(0.9)
    assert c.rho_p == pytest.approx(stats.spearmanr(x, y).pvalue)
    two = correlate([1, 2, None], [3, 4, 5], target="t", predictor="p")
    assert two.tau is None and two.n == 2 and "at least 3" in two.note
    flat = correlate([1, 1, 1], [3, 4, 5], target="t", predictor="params")
    assert flat.tau is None and "params is the same" in flat.note
    assert correlate([1, 2, math.nan, 3], [1, 2, 3, 4], target="t", predictor="p").n == 3

    points = [(0.9, 0.6, 0.1, 3), (0.8, 0.5, 0.2, 1), (0.7, 0.55, 0.3, 2)]
    rows: list[dict[str, Any]] = [
        {"kind": "trial", "test_accuracy": t, "proxy_accuracy": p, "polysemanticity": 0.5,
         "proxy_polysemanticity": q, "params": n, "macs": 10 * n}
        for t, p, q, n in points
    ]
    rows.append({"kind": "baseline", "test_accuracy": 0.1, "params": 9, "macs": 90})
    result = {(c.target, c.predictor): c for c in audit.proxy_audit(rows, ["polysemanticity"])}
    acc = result[("test accuracy", "proxy accuracy")]
    assert acc.n == 3 and acc.tau == pytest.approx(stats.kendalltau([0.6, 0.5, 0.55], [0.9, 0.8, 0.7]).statistic)
    assert result[("test accuracy", "MACs")].rho == pytest.approx(stats.spearmanr([30, 10, 20], [0.9, 0.8, 0.7])[0])
    assert "polysemanticity is the same" in result[("polysemanticity", "params")].note
    table = audit.audit_markdown(list(result.values()))
    assert "| test accuracy | proxy accuracy | 3 |" in table and "n/a" in table


@pytest.mark.slow
def test_several_candidates_on_ray_tune(run: Path) -> None:
    """--workers 2: each candidate is one Ray Tune trial running the same per-candidate function."""
    assert main(["retrain", str(run), "--trial", "0", "2", "--workers", "2", "--cpus-per-trial", "1", *FID]) == 0
    for text in (A, C):
        metrics = json.loads((run / "retrain" / hash_of(text) / METRICS_NAME).read_text())
        assert metrics["status"] == "complete" and metrics["epochs"] == 2
    assert len((run / "retrain" / "retrain.csv").read_text().splitlines()) == 3
