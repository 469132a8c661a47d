"""A trial cut short (a killed run, a lost session) continues from its checkpoint when its run is resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nas.data import DatasetSplits, load_dataset
from nas.fidelity import get_fidelity
from nas.run import RunStore, TrialRecord
from nas.search.trainable import run_trial
from nas.space.architecture import Architecture

ARCH = "stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/basic_d1_s2_c16_k3_relu_bn"


class Killed(BaseException):
    """What a SIGKILL looks like from inside: nothing in the trial gets to handle it."""


@pytest.fixture(scope="module")
def data() -> DatasetSplits:
    return load_dataset("synthetic", train_size=480, test_size=80, num_classes=4, channels=3, resolution=12)


def trial(run_dir: Path, trial_id: int, **extra: Any) -> dict[str, Any]:
    fidelity = get_fidelity("quick", train_images=256, epochs=2, batch_size=32, val_images=100, probe_images=50)
    return {"trial_id": trial_id, "run_dir": str(run_dir), "threads": 1, "device": "cpu", "seed": 3,
            "fidelity": fidelity.to_dict(), "arch": ARCH, "params": 0, "objectives": ["accuracy", "polysemanticity"],
            "report_epochs": False, "checkpoint_every_s": 1e-9, **extra}


def run(config: dict[str, Any], data: DatasetSplits, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr("ray.tune.report", reports.append)
    run_trial(config, data)
    assert len(reports) == 1
    return reports[0]["record"]


def test_a_killed_trial_continues_from_its_checkpoint_and_ends_as_an_uncut_one(
    data: DatasetSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.train as train_module

    torch.set_num_threads(1)
    store = RunStore(tmp_path)
    uncut = run(trial(tmp_path, 9), data, monkeypatch)
    assert uncut["status"] == "complete" and store.resume_dir(9).is_dir()  # kept until the driver records it
    store.write_record(TrialRecord.from_dict(uncut))
    assert not store.resume_dir(9).exists()  # no checkpoint outlives its record

    real_save, saves = train_module.save_checkpoint, []

    def kill_on_the_fifth(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        saves.append(state["epoch_step"])
        if len(saves) == 5:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "save_checkpoint", kill_on_the_fifth)
        with pytest.raises(Killed):
            run(trial(tmp_path, 5), data, patch)
    arch_hash = Architecture.parse(ARCH).semantic_hash
    left = store.resume_dir(5) / arch_hash / train_module.CHECKPOINT_NAME
    assert left.exists() and train_module.load_checkpoint(left)["epoch_step"] == 5

    # the search re-queues the cut trial under a new number; an audit reruns the same trial id (tested below)
    steps_after: list[int] = []  # one checkpoint per step (checkpoint_every_s ~ 0): the steps trained after resuming
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "save_checkpoint", lambda p, s: (steps_after.append(1), real_save(p, s)))
        resumed = run(trial(tmp_path, 7, resume_from=5), data, patch)
    assert len(steps_after) == 16 - 5  # 8 steps per epoch, 2 epochs, 5 done before the kill
    log = (store.trial_dir(7) / "trial.log").read_text()
    assert "resuming from" in log
    assert resumed["status"] == "complete"
    for key in ("accuracy", "polysemanticity", "final_loss", "epochs"):
        assert resumed[key] == uncut[key], key
    assert not store.resume_dir(5).exists()  # taken over by trial 7
    store.write_record(TrialRecord.from_dict(resumed))
    assert not store.resume_dir(7).exists()


def test_a_checkpoint_of_other_settings_or_another_network_is_not_used(
    data: DatasetSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.train as train_module

    torch.set_num_threads(1)
    uncut = run(trial(tmp_path / "a", 1), data, monkeypatch)

    real_save = train_module.save_checkpoint

    def kill(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "save_checkpoint", kill)
        with pytest.raises(Killed):
            run(trial(tmp_path / "b", 1, seed=4), data, patch)  # cut at another seed
    store = RunStore(tmp_path / "b")
    other = store.resume_dir(1) / ("0" * 16)
    other.mkdir(parents=True)  # a folder another network left under this trial id

    again = run(trial(tmp_path / "b", 1), data, monkeypatch)  # seed 3 now: the seed-4 checkpoint is refused
    log = (store.trial_dir(1) / "trial.log").read_text()
    assert "checkpoint not used" in log and "seed" in log
    assert again["accuracy"] == uncut["accuracy"] and again["final_loss"] == uncut["final_loss"]
    assert not other.exists()
