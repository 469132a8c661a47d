"""Opt-in experiment tracking: TensorBoard event files and an MLflow store through Ray Tune's callbacks."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.errors import ConfigError
from nas.search.tracking import parse_tracking

SYN = ["--dataset", "synthetic", "--budget", "60k", "--set", "train_images=96", "--set", "epochs=2", "--set",
       "val_images=60", "--set", "probe_images=60", "--set", "batch_size=32", "--workers", "1", "--cpus-per-trial",
       "1", "--trials", "2", "--prescreen", "none"]


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def _files(run: Path, pattern: str) -> list[Path]:
    return sorted(run.rglob(pattern))


def test_tensorboard_and_mlflow_get_per_epoch_curves_and_final_metrics(tmp_path: Path) -> None:
    assert main(["search", *SYN, "--run", "t", "--results-dir", str(tmp_path), "--tracking", "tensorboard,mlflow"]) == 0
    run = tmp_path / "t"
    assert yaml.safe_load((run / "run.yaml").read_text())["tracking"] == ["tensorboard", "mlflow"]
    events = _files(run / "ray", "events.out.tfevents.*")
    assert len(events) == 2
    assert all(b"ray/tune/accuracy" in e.read_bytes() and b"record/polysemanticity" in e.read_bytes()
               for e in events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("t")
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 2
        for r in runs:
            assert [m.step for m in client.get_metric_history(r.info.run_id, "accuracy")] == [1, 2]
            assert "record/polysemanticity" in r.data.metrics and r.data.params["arch"].startswith("stem_")


@pytest.mark.parametrize(
    ("text", "uri", "needle"),
    [
        ("wandb", None, "unknown tracker 'wandb'"),
        ("", None, "names no tracker"),
        ("mlflow,,tensorboard", None, "names no tracker"),
        ("mlflow,mlflow", None, "names a tracker twice"),
        ("tensorboard", "http://127.0.0.1:5000", "give it with --tracking mlflow"),
        ("mlflow", "http://127.0.0.1:9", "cannot be reached"),
        ("mlflow", "http://", "names no host"),
        ("mlflow", "http://127.0.0.1:99999", "cannot be reached"),
        ("mlflow", "sqlite:////no/such/folder/m.db", "a folder that exists"),
        ("mlflow", "sqlite://", "a folder that exists"),
        ("mlflow", "ftp://host/x", "use http"),
        ("mlflow", "./mlruns", "use http"),
    ],
)
def test_bad_tracking_options(text: str, uri: str | None, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_tracking(text, uri)


def test_tracking_names_are_read_leniently() -> None:
    assert parse_tracking(" MLflow , tensorboard", None) == ["mlflow", "tensorboard"]
    assert parse_tracking(None, None) == []
