"""`nas search` end to end: run store consistency, kill and resume, failures, determinism, dedup, bad input."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from nas.cli import main
from nas.search.prescreen import DEFAULT_POOL, DEFAULT_PROXY
from nas.search.settings import DEFAULT_SAMPLER

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "train_images=192", "--set", "epochs=1", "--set", "val_images=100", "--set", "probe_images=100",
        "--set", "batch_size=32"]
SYNTH = ["--dataset", "synthetic", "--budget", "20k", *TINY, "--workers", "1", "--cpus-per-trial", "1"]


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "trials.csv") as fh:
        return list(csv.DictReader(fh))


def _study(run: Path):
    import optuna

    config = yaml.safe_load((run / "run.yaml").read_text())
    return optuna.load_study(study_name=config["name"], storage=f"sqlite:///{run / 'study.db'}")


def _search(tmp_path: Path, name: str, *extra: str) -> int:
    return main(["search", "--results-dir", str(tmp_path), "--run", name, *extra])


def test_real_search_store_agrees_with_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real (small) search on Fashion-MNIST: run.yaml, study.db and trials.csv tell one story."""
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    code = _search(tmp_path, "real", "--budget", "60k", "--trials", "3", *TINY, "--workers", "1",
                   "--cpus-per-trial", "1")
    out = capsys.readouterr().out
    assert code == 0
    assert "Pareto front" in out and "nas analyze" in out
    run = tmp_path / "real"
    config = yaml.safe_load((run / "run.yaml").read_text())
    assert config["trials"] == 3 and config["dataset"] == "fashion-mnist"
    assert (config["sampler"], config["prescreen"], config["prescreen_pool"]) == (DEFAULT_SAMPLER, DEFAULT_PROXY,
                                                                                 DEFAULT_POOL)  # the defaults
    assert config["objectives"] == [{"name": "accuracy", "direction": "maximize"},
                                    {"name": "polysemanticity", "direction": "minimize"}]
    rows = _rows(run)
    assert len(rows) == 3
    study = _study(run)
    by_number = {t.number: t for t in study.trials}
    for row in rows:
        trial = by_number[int(row["trial_id"])]
        assert trial.user_attrs["arch_hash"] == row["arch_hash"]
        if row["status"] == "complete":
            assert trial.values == pytest.approx([float(row["accuracy"]), float(row["polysemanticity"])])
            assert 57_000 <= int(row["params"]) <= 60_000
            assert 0.0 <= float(row["accuracy"]) <= 1.0
    assert all(t.state.name != "RUNNING" for t in study.trials)
    assert any(r["status"] == "complete" for r in rows)
    assert (run / "trials" / f"{int(rows[0]['trial_id']):05d}" / "metrics.json").is_file()


def test_kill_and_resume_keeps_every_trial_once(tmp_path: Path) -> None:
    """SIGKILL the driver after some trials, resume: nothing lost, nothing twice, the count honoured."""
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--results-dir", str(tmp_path), "--run", "killed",
           "--trials", "5", "--seed", "3", *SYNTH]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (run / "trials.csv").exists() and len(_rows(run)) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail("the search ended before it could be killed")
            time.sleep(0.2)
        else:
            pytest.fail("no two trials finished in time")
        os.kill(proc.pid, signal.SIGKILL)  # the driver, hard
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # and whatever Ray left in its session
    before = {r["trial_id"]: r for r in _rows(run)}
    assert 2 <= len(before) < 5
    code = main(["search", "--results-dir", str(tmp_path), "--run", "killed", "--resume"])
    assert code == 0
    after = _rows(run)
    ids = [r["trial_id"] for r in after]
    assert len(after) == 5 and len(set(ids)) == 5
    for trial_id, row in before.items():  # kept exactly as they were
        assert next(r for r in after if r["trial_id"] == trial_id) == row
    study = _study(run)
    assert all(t.state.name != "RUNNING" for t in study.trials)
    told = {t.number for t in study.trials if t.state.name in ("COMPLETE", "FAIL", "PRUNED")
            and t.user_attrs.get("reason") != "interrupted; re-queued"}
    assert {int(i) for i in ids} <= told


def test_diverging_trials_fail_and_the_search_finishes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _search(tmp_path, "nan", "--trials", "2", *SYNTH, "--set", "lr=1e12", "--set", "grad_clip=null")
    assert code == 0
    rows = _rows(tmp_path / "nan")
    assert len(rows) == 2
    assert all(r["status"] == "failed" and r["reason"].startswith("diverged") for r in rows), rows
    study = _study(tmp_path / "nan")
    trained = [t for t in study.trials if "arch" in t.user_attrs]  # not the proposals the pre-screen replaced
    # told infeasible (so the sampler learns), with the worst values: accuracy 0, polysemanticity 1
    assert [t.state.name for t in trained] == ["COMPLETE", "COMPLETE"]
    assert all(t.constraints == {"trained": 1.0} and t.values == [0.0, 1.0] for t in trained)
    assert all(t.state.name == "FAIL" and t.user_attrs["reason"].startswith("prescreen:")
               for t in study.trials if t not in trained)
    assert "Pareto front is empty" in capsys.readouterr().out


def test_same_seed_same_architectures_in_the_same_order(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _search(tmp_path, name, "--trials", "3", "--seed", "11", "--sampler", "nsga2", "--prescreen", "none",
                       *SYNTH) == 0
    assert yaml.safe_load((tmp_path / "a" / "run.yaml").read_text())["prescreen"] is None  # turned off
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert [r["arch"] for r in a] == [r["arch"] for r in b]
    assert [r["accuracy"] for r in a] == [r["accuracy"] for r in b]  # CPU training is deterministic too


def test_duplicate_architectures_are_reused_not_retrained(tmp_path: Path) -> None:
    space = tmp_path / "two.yaml"
    space.write_text(yaml.safe_dump({
        "name": "two",
        "stages": [{"stride": 1, "depth": 1, "width": 8}, {"stride": 2, "depth": 1, "width": 16}],
        "choices": {"block": {"values": ["basic", "separable"], "per": "network"}},
    }))
    code = _search(tmp_path, "dedup", "--space", str(space), "--trials", "5", "--sampler", "random", *SYNTH)
    assert code == 0
    rows = _rows(tmp_path / "dedup")
    assert len(rows) == 5
    trained = [r for r in rows if r["reused"] == "False"]
    assert len({r["arch_hash"] for r in trained}) == len(trained) <= 2
    for r in rows:
        if r["reused"] == "True":
            source = next(t for t in trained if t["arch_hash"] == r["arch_hash"])
            assert r["accuracy"] == source["accuracy"] and "same architecture" in r["reason"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--sampler", "cmaes"], "unknown sampler 'cmaes'"),
        (["--objectives", "accuracy,beauty"], "unknown objective 'beauty'"),
        (["--address", "127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["--storage", "sqlite:////nonexistent/dir/study.db"], "cannot open the Optuna storage"),
        (["--budget", "abc"], "not a parameter count"),
        (["--trials", "0"], "--trials must be at least 1"),
    ],
)
def test_bad_search_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code = _search(tmp_path, "bad", "--trials", "2", "--dataset", "synthetic", "--budget", "20k", *args)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_resume_needs_a_run_and_names_are_not_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notarun").mkdir()
    assert main(["search", "--results-dir", str(tmp_path), "--run", "notarun", "--resume"]) == 2
    assert "is not a search run" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "run.yaml").write_text("name: taken\n")
    assert _search(tmp_path, "taken", "--dataset", "synthetic") == 2
    assert "already exists; add --resume" in capsys.readouterr().err


def test_asha_prunes_and_the_study_knows(tmp_path: Path) -> None:
    code = _search(tmp_path, "asha", "--trials", "6", "--dataset", "synthetic", "--budget", "20k", *TINY,
                   "--set", "epochs=3", "--workers", "2", "--cpus-per-trial", "1", "--scheduler", "asha")
    assert code == 0
    rows = _rows(tmp_path / "asha")
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"complete", "pruned"}
    states = {t.number: t.state.name for t in _study(tmp_path / "asha").trials}
    for r in rows:
        if r["status"] == "pruned":
            assert r["reason"].startswith("stopped by ASHA") and int(r["epochs"]) < 3
            assert states[int(r["trial_id"])] == "PRUNED"
        else:
            assert int(r["epochs"]) == 3 and states[int(r["trial_id"])] == "COMPLETE"


def test_resume_accepts_the_same_command_and_names_each_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users resume by repeating their command: equal options pass, conflicting ones are refused by name."""
    command = ["--trials", "1", "--sampler", "random", "--seed", "3", *SYNTH]
    assert _search(tmp_path, "again", *command) == 0
    same = [*command[2:], "--trials", "2", "--resume"]  # the very command, the count raised, --resume added
    assert _search(tmp_path, "again", *same) == 0
    assert len(_rows(tmp_path / "again")) == 2
    capsys.readouterr()
    conflicting = [*same, "--budget", "30k", "--set", "epochs=3", "--sampler", "tpe"]
    assert _search(tmp_path, "again", *conflicting) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert "--budget '30.0k' (the run has '20.0k')" in err
    assert "--sampler 'tpe' (the run has 'random')" in err
    assert "--fidelity" in err and "epochs=3" in err
    assert len(_rows(tmp_path / "again")) == 2  # nothing ran


def test_eta_after_resume_counts_only_this_process_trials() -> None:
    """24 records kept from a resume, 1 reused and 2 trained here in 100 s: ETA = 9 left × 50 s, not × 100/26 s."""
    from nas.objectives import parse_objectives
    from nas.run import TrialRecord
    from nas.search.progress import SearchState, progress_line

    objectives = parse_objectives("accuracy,interference", "polysemanticity")

    def record(i: int, reused: bool = False) -> TrialRecord:
        return TrialRecord(trial_id=i, status="complete", arch="a", arch_hash=f"{i:012x}", fidelity="quick",
                           accuracy=0.5, polysemanticity=0.5, reused=reused)

    state = SearchState(total=36)
    state.carry([record(i) for i in range(24)], objectives)
    assert "ETA –" in progress_line(record(99), state, objectives)  # nothing trained here yet: unknown
    state.started = time.monotonic() - 100.0
    state.add(record(24, reused=True), objectives)  # reused: costs nothing, does not count as trained
    state.add(record(25), objectives)
    state.add(record(26), objectives)
    line = progress_line(record(26), state, objectives)
    eta = line.rsplit("ETA ", 1)[1]
    minutes, seconds = eta.split(":")
    assert 445 <= int(minutes) * 60 + int(seconds) <= 455, line  # 9 left × 50 s


def test_eta_of_trials_that_differ_in_work_weighs_what_is_left() -> None:
    """An audit's reference trial takes 20× a cheap one: after one reference in 100 s, 1 reference + 2 cheap are
    left, 110 work units at 1 s each, not 3 trials × 100 s."""
    import torch

    from nas.fidelity import get_fidelity
    from nas.objectives import parse_objectives
    from nas.run import TrialRecord
    from nas.search.batch import image_passes
    from nas.search.progress import SearchState, progress_line

    objectives = parse_objectives("accuracy,interference", "polysemanticity")
    record = TrialRecord(trial_id=0, status="complete", arch="a", arch_hash="0" * 12, fidelity="ref", accuracy=0.5,
                         polysemanticity=0.5)
    state = SearchState(total=4, work={0: 100.0, 1: 100.0, 2: 5.0, 3: 5.0})
    state.carry([], objectives)
    state.started = time.monotonic() - 100.0
    state.add(record, objectives)
    eta = progress_line(record, state, objectives).rsplit("ETA ", 1)[1]
    minutes, seconds = eta.split(":")
    assert 105 <= int(minutes) * 60 + int(seconds) <= 115, eta

    data = SimpleNamespace(train_y=torch.zeros(1000))  # 1,000 training images
    assert image_passes(get_fidelity("quick", train_images=None, epochs=3), data) == 3000
    assert image_passes(get_fidelity("quick", train_images=400, epochs=2), data) == 800
    assert image_passes(get_fidelity("quick", train_images=5000, epochs=1), data) == 1000
