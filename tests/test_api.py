"""The Python API (`import nas`): typed values in, the same results as the command line out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import nas
from nas.errors import ConfigError, RunStoreError, SpaceError
from nas.fidelity import fidelity_from_options

ROOT = Path(__file__).resolve().parents[1]
NET = "stem_c16_k3_s1/basic_d2_s1_c32_k3_relu_bn/basic_d1_s2_c64_k3_relu_bn"
TINY = fidelity_from_options("quick", ["train_images=96", "val_images=60", "probe_images=60", "batch_size=32"],
                             epochs=1)


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def test_import_nas_is_light_and_exports_the_api() -> None:
    import subprocess

    code = "import nas, sys; print(sorted(m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    for name in ("create_model", "sample", "search", "open_run", "analyze", "retrain", "load", "Run"):
        assert callable(getattr(nas, name))


def test_create_model_from_a_string_and_a_baseline_file_with_a_budget() -> None:
    model = nas.create_model(NET)
    assert sum(p.numel() for p in model.parameters()) > 0
    scaled = nas.create_model(ROOT / "search_spaces" / "baselines" / "resnet18.yaml", budget=300_000)
    params = sum(p.numel() for p in scaled.parameters())
    assert 0.95 * 300_000 <= params <= 300_000
    assert sum(p.numel() for p in nas.create_model(NET, budget="200k").parameters()) <= 200_000
    with pytest.raises(SpaceError, match="not one"):
        nas.create_model(ROOT / "search_spaces" / "bottleneck.yaml")
    with pytest.raises(ConfigError):
        nas.create_model(NET, budget=[1])  # type: ignore[arg-type]


def test_sample_draws_distinct_budget_solved_architectures() -> None:
    drawn = nas.sample(budget=1_500_000, n=4, seed=3)
    assert len({d.arch.semantic_hash for d in drawn}) == 4
    assert all(0.95 * 1_500_000 <= d.params <= 1_500_000 for d in drawn)
    assert [str(d) for d in nas.sample(budget=1.5e6, n=4, seed=3)] == [str(d) for d in drawn]
    with pytest.raises(ConfigError, match="not a space"):
        nas.sample(NET)


def test_open_run_gives_config_trials_and_front(tmp_path: Path) -> None:
    from nas.testing import make_run

    make_run(tmp_path / "r", 12)
    run = nas.open_run(tmp_path / "r")
    assert run.config.kind == "search" and len(run.trials) == 12
    front = run.front()
    assert len(front) >= 1 and set(front["trial_id"]) <= set(run.trials["trial_id"])
    assert list(front["accuracy"]) == sorted(front["accuracy"], reverse=True)
    with pytest.raises(RunStoreError):
        nas.open_run(tmp_path / "missing")


@pytest.mark.slow  # the same flow runs in the default suite through examples/quickstart.ipynb (tests/test_notebook.py)
def test_search_analyze_retrain_load_from_python(tmp_path: Path) -> None:
    import torch

    run = nas.search(budget=20_000, trials=2, dataset="synthetic", fidelity=TINY, workers=1, cpus_per_trial=1,
                     run="api", results_dir=tmp_path, verbose=False)
    assert isinstance(run, nas.Run) and len(run.trials) == 2
    report = nas.analyze(run)
    assert report.is_file()
    rows = nas.retrain(run, top=1, fidelity=TINY, results_dir=tmp_path, verbose=False)
    assert len(rows) == 1 and 0 <= rows["test_accuracy"].iloc[0] <= 1
    model = nas.load(run.path / "retrain" / rows["arch_hash"].iloc[0])
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 4)  # the synthetic set: 3 x 16 px, 4 classes
