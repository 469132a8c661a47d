"""Constraints the sampler learns from: failed trials told infeasible, ceilings on MACs and peak activation memory."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml

from nas.cli import main
from nas.complexity import peak_activation_bytes
from nas.constraints import Constraints, parse_ceilings, pessimistic_values
from nas.models import build_model
from nas.objectives import Objective
from nas.run import TrialRecord
from nas.sampling import Shape
from nas.search.searcher import tell_record
from nas.space import Architecture, load_target

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "train_images=96", "--set", "epochs=1", "--set", "val_images=60", "--set", "probe_images=60",
        "--set", "batch_size=32"]
SYN = ["--dataset", "synthetic", "--budget", "60k", *TINY, "--workers", "1", "--cpus-per-trial", "1"]
OBJECTIVES = [Objective("accuracy", "maximize"), Objective("polysemanticity", "minimize")]
ARCH = "stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/basic_d1_s2_c16_k3_relu_bn"


def test_peak_activation_memory_is_mobilenet_v2s_known_peak() -> None:
    """MobileNetV2 at 224 px peaks in its second block: the 1x1 expansion's input and output, 96 x 112² + 16 x 112²
    read while writing... the depthwise conv reads 96 x 112² and writes 96 x 56² (1,505,280 values, MCUNet's figure)."""
    arch = load_target(str(ROOT / "search_spaces" / "baselines" / "mobilenet_v2.yaml")).single()
    model = build_model(arch, in_channels=3, num_classes=1000, resolution=224)
    assert peak_activation_bytes(model, torch.randn(1, 3, 224, 224)) == 4 * (96 * 112 * 112 + 96 * 56 * 56)


def test_peak_holds_a_residual_input() -> None:
    """A basic block with an identity shortcut keeps its input alive while its two convs run."""
    arch = Architecture.parse("stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn")
    model = build_model(arch, in_channels=1, num_classes=10, resolution=8)
    # inside the block: held input (8x8x8) + conv input (the same tensor, counted once) + conv output (8x8x8)
    # at the first conv; the second conv reads the first's output and writes its own: 3 maps of 512 values
    assert peak_activation_bytes(model, torch.randn(1, 1, 8, 8)) == 4 * 3 * 8 * 8 * 8


def test_ceilings_parse_like_budgets() -> None:
    assert parse_ceilings("50M", "256k") == {"macs": 50_000_000, "activation_memory": 256_000}
    assert parse_ceilings() == {}


def test_failed_records_are_told_infeasible_and_older_runs_fail() -> None:
    shape = Shape(1, 16, 10)
    for constraints in (Constraints({"macs": 10**9}, shape), None):
        study = optuna.create_study(directions=["maximize", "minimize"])
        done = TrialRecord.from_dict({"trial_id": 0, "status": "complete", "arch": ARCH, "arch_hash": "x",
                                      "params": 1, "accuracy": 0.7, "polysemanticity": 0.4, "fidelity": "quick"})
        failed = done.replace(trial_id=1, status="failed", reason="diverged", accuracy=None, polysemanticity=None)
        for record in (done, failed):
            tell_record(study, study.ask(), record, OBJECTIVES, constraints)
        a, b = study.trials
        assert a.state.name == "COMPLETE" and a.values == [0.7, 0.4]
        if constraints is None:
            assert b.state.name == "FAIL" and a.constraints == {}
        else:
            assert b.state.name == "COMPLETE" and b.values == [0.0, 1.0]
            assert a.constraints["trained"] == 0.0 and b.constraints["trained"] == 1.0
            assert -1.0 < a.constraints["macs"] < 0.0  # a relative margin below the ceiling


def test_pessimistic_values_of_unbounded_metrics_are_the_worst_seen() -> None:
    objectives = [Objective("accuracy", "maximize"), Objective("outliers", "minimize")]
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert pessimistic_values(study, objectives) == [0.0, 0.0]
    for values in ([0.5, 3.0], [0.6, 7.5]):
        study.tell(study.ask(), values)
    assert pessimistic_values(study, objectives) == [0.0, 7.5]


def test_search_with_a_macs_ceiling_trains_nothing_above_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ceiling = 1_500_000
    code = main(["search", *SYN, "--trials", "2", "--prescreen-pool", "3", "--run", "c", "--results-dir",
                 str(tmp_path), "--max-macs", "1.5M", "--max-activation-memory", "64k"])
    assert code == 0
    run = tmp_path / "c"
    config = yaml.safe_load((run / "run.yaml").read_text())
    assert config["constraints"] == {"trained": None, "macs": ceiling, "activation_memory": 64_000}
    import csv

    with open(run / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(int(r["macs"]) <= ceiling for r in rows if r["status"] == "complete")
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{run / 'study.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete and all(set(t.constraints) == {"trained", "macs", "activation_memory"} for t in complete)
    above = [t for t in complete if t.user_attrs.get("reason", "").startswith("above a ceiling")]
    assert all(t.constraints["macs"] > 0 or t.constraints["activation_memory"] > 0 for t in above)
    # without --tracking, Ray Tune's loggers write nothing beyond the run store
    for pattern in ("events.out.tfevents.*", "progress.csv", "result.json", "mlflow.db", "mlruns"):
        assert sorted(run.rglob(pattern)) == [], pattern
    # a resume may not change the ceilings
    code = main(["search", "--run", str(run), "--resume", "--max-macs", "2M"])
    assert code == 2
