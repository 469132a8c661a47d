"""`nas search --warm-start RUN`: parameters recovered from architectures, earlier trials told to a new study,
mismatched runs refused by name."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nas.cli import main
from nas.run import RunStore
from nas.space import Space

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ["search", "--dataset", "synthetic", "--budget", "20k", "--set", "train_images=96", "--set", "val_images=60",
          "--set", "probe_images=60", "--set", "batch_size=32", "--epochs", "1", "--workers", "1",
          "--cpus-per-trial", "1", "--prescreen", "none"]


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def test_params_of_recovers_what_built_every_sampled_architecture() -> None:
    from nas.search.warm_start import params_of

    space = Space.from_file(str(ROOT / "search_spaces" / "bottleneck.yaml"))
    rng = random.Random(0)
    for _ in range(300):
        arch = space.sample(rng)
        scaled = arch.with_widths(arch.stem.width * 2, [s.width * 3 for s in arch.stages], arch.head.width, None)
        params = params_of(space, scaled)
        assert params is not None
        assert space.build(lambda key, values, p=params: p[key]) == arch  # the same network
    other = Space.from_file(str(ROOT / "search_spaces" / "baselines" / "resnet18.yaml"))
    assert params_of(other, arch) is None  # not a network of that space


def test_a_search_starts_from_an_earlier_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    assert main([*SEARCH, "--trials", "3", "--results-dir", str(tmp_path), "--run", "first"]) == 0
    first = RunStore(tmp_path / "first").records()
    complete = [r for r in first if r.complete]
    capsys.readouterr()
    assert main([*SEARCH, "--trials", "2", "--seed", "1", "--results-dir", str(tmp_path), "--run", "second",
                 "--warm-start", str(tmp_path / "first")]) == 0
    assert f"warm start: {len({r.arch_hash for r in complete})} finished trial(s) of first" in capsys.readouterr().out
    store = RunStore(tmp_path / "second")
    assert store.read_config().warm_start == [str(tmp_path / "first")]
    assert len(store.records()) == 2  # only what it trained
    study = optuna.load_study(study_name="second", storage=f"sqlite:///{store.study_db}")
    warm = [t for t in study.trials if "warm_start" in t.user_attrs]
    assert {t.user_attrs["arch_hash"] for t in warm} == {r.arch_hash for r in complete}
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in warm)
    by_hash = {r.arch_hash: r for r in complete}
    for t in warm:
        assert t.values[0] == pytest.approx(by_hash[t.user_attrs["arch_hash"]].accuracy)
    # a resume tells nothing twice
    assert main(["search", "--resume", "--run", str(tmp_path / "second"), "--trials", "3",
                 "--results-dir", str(tmp_path)]) == 0
    study = optuna.load_study(study_name="second", storage=f"sqlite:///{store.study_db}")
    assert len([t for t in study.trials if "warm_start" in t.user_attrs]) == len(warm)


@pytest.mark.parametrize(("extra", "needle"), [
    (["--budget", "30k"], "searched another budget"),
    (["--epochs", "2"], "searched another fidelity"),
    (["--space", str(ROOT / "search_spaces" / "baselines" / "convnext_atto.yaml")], "searched another space"),
])
def test_a_mismatched_run_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                             needle: str) -> None:
    from nas.space import Budget
    from nas.testing import make_run

    make_run(tmp_path / "earlier", 4, fidelities=("quick+batch_size=32,epochs=1,probe_images=60,train_images=96,"
                                                   "val_images=60",), dataset="synthetic", budget=Budget(20_000))
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [*SEARCH, "--trials", "2", "--results-dir", str(tmp_path), "--run", "new", "--warm-start",
            str(tmp_path / "earlier")]
    for i in range(0, len(extra), 2):  # replace an option's value, or add the option
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_warm_start_with_resume_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--resume", "--run", "x", "--warm-start", "y"]) == 2
    assert "--warm-start applies when a search starts" in capsys.readouterr().err
