"""`nas audit` and `nas study` drivers: plans, kill and resume, reuse, and bad input."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from nas.cli import main
from nas.run import RunStore
from nas.testing.process import kill_after

ROOT = Path(__file__).resolve().parents[1]
TINY = "train_images=96,val_images=60,probe_images=60,batch_size=32"
PANEL = [
    "stem_c16_k3_s1/basic_d1_s1_c16_k3_relu_bn/basic_d1_s2_c32_k3_relu_bn",
    "stem_c16_k3_s1/separable_d1_s1_c16_k3_gelu_bn/separable_d1_s2_c32_k3_gelu_bn",
    "stem_c8_k3_s1/inverted_d1_s1_c8_e2_k3_relu2_dw_ln/inverted_d1_s2_c16_e2_k3_relu2_dw_ln",
    "stem_c16_k3_s1/nodepth_d1_s1_c16_e2_k3_silu_bn/nodepth_d1_s2_c32_e2_k3_silu_bn",
]
AUDIT = ["--dataset", "synthetic", "--reference", f"quick:epochs=2,{TINY}", "--fidelity", f"quick:epochs=1,{TINY}",
         "--workers", "1", "--cpus-per-trial", "1"]
STUDY = ["--dataset", "synthetic", "--budget", "20k", "--factors", "block,norm", "--fix", "activation=relu",
         "--set", "train_images=96", "--set", "val_images=60", "--set", "probe_images=60", "--set", "batch_size=32",
         "--epochs", "1", "--workers", "1", "--cpus-per-trial", "1"]


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def _panel(tmp_path: Path, archs: list[str]) -> Path:
    path = tmp_path / "panel.txt"
    path.write_text("# a panel\n" + "\n".join(archs) + "\n")
    return path


def _kill_after(cmd: list[str], run: Path, records: int) -> None:
    kill_after(cmd, run, records, cwd=ROOT)


def _snapshot(store: RunStore) -> dict[int, dict]:
    return {r.trial_id: r.to_dict() for r in store.records()}


@pytest.mark.slow  # end-to-end runs under Ray (1-3 min each): make test-all
def test_audit_kill_and_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    run = tmp_path / "audit"
    cmd = [sys.executable, "-m", "nas.cli", "audit", str(_panel(tmp_path, PANEL)), *AUDIT, "--run", str(run)]
    _kill_after(cmd, run, 2)
    store = RunStore(run)
    before = _snapshot(store)
    assert 2 <= len(before) < 8
    assert main(["audit", "--run", str(run), "--resume"]) == 0
    after = _snapshot(store)
    assert sorted(after) == list(range(8))  # 4 members x 2 fidelities, each once
    for trial_id, record in before.items():
        assert after[trial_id] == record  # nothing kept was changed or retrained
    design = store.read_config().design
    assert design["reference"].startswith("quick+") and len(design["panel"]) == 4
    for r in store.records():
        assert r.extra["panel_index"] == r.trial_id % 4
        assert r.fidelity == design["fidelities"][r.trial_id // 4]["name"]
        assert r.zc_naswot is not None or r.status == "failed"


@pytest.mark.slow  # end-to-end runs under Ray (1-3 min each): make test-all
def test_audit_reuses_evaluations_of_another_run(tmp_path: Path) -> None:
    panel = _panel(tmp_path, PANEL[:3])
    assert main(["audit", str(panel), *AUDIT, "--run", str(tmp_path / "first")]) == 0
    assert main(["audit", str(panel), *AUDIT, "--run", str(tmp_path / "second"), "--reuse",
                 str(tmp_path / "first")]) == 0
    second = RunStore(tmp_path / "second").records()
    first = {r.trial_id: r for r in RunStore(tmp_path / "first").records()}
    assert all(r.reused for r in second if first[r.trial_id].complete)
    assert [r.accuracy for r in second] == [first[r.trial_id].accuracy for r in second]


@pytest.mark.slow  # end-to-end runs under Ray (1-3 min each): make test-all
def test_study_kill_and_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    run = tmp_path / "study"
    cmd = [sys.executable, "-m", "nas.cli", "study", *STUDY, "--run", str(run)]
    _kill_after(cmd, run, 3)
    store = RunStore(run)
    before = _snapshot(store)
    assert main(["study", "--run", str(run), "--resume"]) == 0
    after = _snapshot(store)
    design = store.read_config().design
    assert len(design["cells"]) == 14 and design["repeats"] == 2
    assert sorted(after) == list(range(28))
    for trial_id, record in before.items():
        assert after[trial_id] == record
    by_cell: dict[int, set[int]] = {}
    for r in store.records():
        assert "_relu_" in r.arch and "level_activation" not in r.extra
        assert set(r.extra) >= {"level_block", "level_norm"}
        assert r.seed == r.extra["replicate"]
        by_cell.setdefault(r.extra["cell"], set()).add(r.extra["replicate"])
    assert all(reps == {0, 1} for reps in by_cell.values())
    # convnext reads no norm: its two norm cells are one network, trained once per seed
    convnext = [r for r in store.records() if r.extra["level_block"] == "convnext"]
    assert len({r.arch_hash for r in convnext}) == 1 and sum(not r.reused for r in convnext) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["audit", "EMPTY", "--dataset", "synthetic"], "holds no architecture"),
        (["audit", "ONE", "--dataset", "synthetic"], "no rank correlation is possible"),
        (["audit", "BAD", "--dataset", "synthetic"], "architecture 2"),
        (["audit", "PANEL", "--dataset", "synthetic", "--reference", "nosuch"], "unknown fidelity 'nosuch'"),
        (["audit", "PANEL", "--dataset", "synthetic", "--reference", "quick:bogus=1"], "unknown fidelity field"),
        (["audit", "PANEL", "--dataset", "synthetic", "--fidelity", "quick", "--fidelity", "quick"], "named twice"),
        (["audit", "--dataset", "synthetic", "-n", "1"], "no rank correlation is possible"),
        (["audit", "--run", "nowhere", "--resume"], "does not exist"),
        (["study", "--dataset", "synthetic", "--factors", "colour"], "is not a choice"),
        (["study", "--dataset", "synthetic", "--factors", "block,block"], "names a choice twice"),
        (["study", "--dataset", "synthetic", "--repeats", "0"], "--repeats must be from 1 to 100"),
        (["study", "--dataset", "synthetic", "--fix", "colour=red"], "is not a choice"),
        (["study", "--dataset", "synthetic", "--fix", "kernel=4"], "the space allows kernel = 3, 5"),
        (["study", "--dataset", "synthetic", "--fix", "block=basic"], "it is a factor of the study"),
        (["study", "--dataset", "synthetic", "--budget", "10"], "budget"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").write_text("# nothing\n\n")
    (tmp_path / "ONE").write_text(PANEL[0] + "\n")
    (tmp_path / "BAD").write_text(PANEL[0] + "\nbasic_d1_s3\n" + PANEL[1] + "\n")
    _panel(tmp_path, PANEL).rename(tmp_path / "PANEL")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    started = time.monotonic()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err and needle in err, err
    assert time.monotonic() - started < 30
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing left behind
