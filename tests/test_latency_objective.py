"""The latency objective: each trained network's CPU latency, measured after training, as a search objective."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from nas.cli import main
from nas.errors import ConfigError
from nas.objectives import parse_objectives

SYN = ["--dataset", "synthetic", "--budget", "60k", "--set", "train_images=96", "--set", "epochs=1", "--set",
       "val_images=60", "--set", "probe_images=60", "--set", "batch_size=32", "--workers", "1", "--cpus-per-trial",
       "1", "--trials", "2", "--prescreen", "none"]


def test_latency_is_an_objective_name() -> None:
    objectives = parse_objectives("accuracy,interference,latency", "polysemanticity")
    assert [(o.name, o.direction) for o in objectives] == [
        ("accuracy", "maximize"), ("polysemanticity", "minimize"), ("latency_ms", "minimize")]
    with pytest.raises(ConfigError, match=r"twice|repeat"):
        parse_objectives("accuracy,latency,latency_ms", "polysemanticity")


def test_a_three_objective_search_measures_latency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    code = main(["search", *SYN, "--run", "lat", "--results-dir", str(tmp_path), "--objectives",
                 "accuracy,interference,latency", "--latency-batch", "2"])
    assert code == 0
    run = tmp_path / "lat"
    config = yaml.safe_load((run / "run.yaml").read_text())
    assert config["latency"] == {"threads": None, "batch": 2}
    assert [o["name"] for o in config["objectives"]] == ["accuracy", "polysemanticity", "latency_ms"]
    latencies = [json.loads(p.read_text())["latency_ms"] for p in sorted(run.glob("trials/*/metrics.json"))]
    assert len(latencies) == 2 and all(0 < v < 10_000 for v in latencies)
    study = optuna.load_study(study_name="lat", storage=f"sqlite:///{run / 'study.db'}")
    told = sorted(t.values[2] for t in study.trials if t.state.name == "COMPLETE")
    assert told == pytest.approx(sorted(latencies))
    assert main(["analyze", str(run)]) == 0 and "latency_ms" in (run / "report" / "report.md").read_text()
