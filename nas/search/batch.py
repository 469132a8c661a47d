"""A fixed list of evaluations run as Ray Tune trials into one run store: the engine of `nas audit` and `nas study`.

Each :class:`Job` is one architecture at one fidelity and seed, with a trial id fixed by the plan
(its position), so a resumed run skips exactly the jobs whose records exist and repeats none. A job
whose (architecture hash, fidelity, seed) was already evaluated — in this run or in another run
given for reuse — is recorded as reused instead of trained. The trial function is the search's own
(:func:`nas.search.trainable.run_trial`): zero-cost scores, training, metrics, failures as results.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nas.fidelity import Fidelity
from nas.run import RunConfig, RunStore, TrialRecord
from nas.search.progress import SearchState, progress_line


@dataclass(frozen=True)
class Job:
    """One planned evaluation: an architecture (absolute widths) at a fidelity and seed, and its own record keys."""

    trial_id: int
    arch: str
    arch_hash: str
    params: int
    fidelity: Fidelity
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.arch_hash, self.fidelity.name, self.seed)


def load_trial_data(dataset: str, data_dir: str | None, resolution: int | None) -> Any:
    """A data set as trials see it: without its test split (only retraining measures on it)."""
    import dataclasses

    from nas.data import load_dataset

    data = load_dataset(dataset, data_dir=data_dir, resolution=resolution)
    return dataclasses.replace(data, test_x=data.test_x[:0], test_y=data.test_y[:0])


def evaluated(records: Iterable[TrialRecord]) -> dict[tuple[str, str, int], TrialRecord]:
    """Complete, trained (not reused) records by (architecture hash, fidelity, seed)."""
    out: dict[tuple[str, str, int], TrialRecord] = {}
    for r in records:
        if r.complete and not r.reused and r.seed is not None:
            out.setdefault((r.arch_hash, r.fidelity, r.seed), r)
    return out


def reuse_record(job: Job, source: TrialRecord, where: str) -> TrialRecord:
    """The record of ``job`` copied from an identical evaluation (same architecture, fidelity and seed)."""
    return source.replace(trial_id=job.trial_id, reused=True, wall_s=0.0, **job.extra,
                          reason=f"same architecture, fidelity and seed as trial {source.trial_id}{where}")


def run_jobs(config: RunConfig, store: RunStore, jobs: list[Job], data: Any, *, console: Any,
             reuse_from: Iterable[RunStore] = ()) -> bool:
    """Run every job that has no record yet; True when interrupted by Ctrl-C (a resumable state)."""
    done = {r.trial_id for r in store.records()}
    known = evaluated(store.records())
    outside: dict[tuple[str, str, int], tuple[TrialRecord, str]] = {}
    for other in reuse_from:
        for key, record in evaluated(other.records()).items():
            outside.setdefault(key, (record, f" of run {other.name}"))
    state = SearchState(total=len(jobs))
    for record in store.records():
        state.add(record, config.objectives)
    pending: list[Job] = []
    waiting: list[Job] = []  # identical to a pending job: recorded from its result
    for job in jobs:
        if job.trial_id in done:
            continue
        if job.key in known:
            _write(store, reuse_record(job, known[job.key], ""), state, config, console)
        elif job.key in outside:
            source, where = outside[job.key]
            _write(store, reuse_record(job, source, where), state, config, console)
        elif any(p.key == job.key for p in pending):
            waiting.append(job)
        else:
            pending.append(job)
    interrupted = False
    if pending:
        interrupted = _drive(config, store, pending, data, state, console)
    if not interrupted:
        known = evaluated(store.records())
        for job in waiting:
            source = known.get(job.key)
            if source is not None:
                _write(store, reuse_record(job, source, ""), state, config, console)
    return interrupted


def _write(store: RunStore, record: TrialRecord, state: SearchState, config: RunConfig, console: Any) -> None:
    store.write_record(record)
    state.add(record, config.objectives)
    console.print(progress_line(record, state, config.objectives), soft_wrap=True)


def job_trial(config: dict[str, Any], data: Any = None, jobs: dict[int, dict[str, Any]] | None = None) -> None:
    """Ray Tune trainable: the search's trial function on the job named by ``config['job']``."""
    from nas.search.trainable import run_trial

    assert jobs is not None
    run_trial({**config["common"], **jobs[int(config["job"])]}, data)


def _drive(config: RunConfig, store: RunStore, pending: list[Job], data: Any, state: SearchState,
           console: Any) -> bool:
    from nas.ray_session import cluster_resources, ray_session, trial_slots

    with ray_session(config.address):
        from ray import tune

        from nas.search.trainable import record_from_result

        cpus, _ = cluster_resources()
        per, workers = trial_slots(config.cpus_per_trial, config.workers, cpus)
        gpus = config.gpus_per_trial
        common = {"run_dir": str(store.root), "threads": per, "device": "cuda" if gpus > 0 else "cpu",
                  "objectives": [o.name for o in config.objectives], "report_epochs": False}
        by_id = {j.trial_id: j for j in pending}
        specs = {j.trial_id: {"trial_id": j.trial_id, "arch": j.arch, "params": j.params, "seed": j.seed,
                              "fidelity": j.fidelity.to_dict()} for j in pending}
        started = time.monotonic()
        state.started = started

        class Recorder(tune.Callback):
            """Writes each finished job's record in the driver (so a kill loses nothing finished)."""

            def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict[str, Any],
                                **info: Any) -> None:
                data = record_from_result(result)
                if data.get("status") in (None, "running"):
                    return
                job = by_id[int(data["trial_id"])]
                record = TrialRecord.from_dict({**data, **job.extra, "fidelity": job.fidelity.name},
                                               where=f"trial {job.trial_id}'s result")
                store.write_record(record)
                state.add(record, config.objectives)
                print(progress_line(record, state, config.objectives), flush=True)

            def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
                job = by_id[int(trial.config["job"])]
                record = TrialRecord(trial_id=job.trial_id, status="failed", arch=job.arch, arch_hash=job.arch_hash,
                                     fidelity=job.fidelity.name, params=job.params, seed=job.seed,
                                     reason="trial process crashed (see the Ray log in ray/)", extra=dict(job.extra))
                store.write_record(record)
                state.add(record, config.objectives)
                print(progress_line(record, state, config.objectives), flush=True)

        console.print(f"Ray: {cpus} CPU(s); {workers} trial(s) at a time, {per} CPU(s) and {gpus:g} GPU(s) each; "
                      f"{len(pending)} trial(s) to run")
        trainable = tune.with_resources(tune.with_parameters(job_trial, data=data, jobs=specs),
                                        {"cpu": per, "gpu": gpus})
        attempt = len(list((store.root / "ray").glob("tune-*"))) if (store.root / "ray").exists() else 0
        tuner = tune.Tuner(
            trainable,
            param_space={"job": tune.grid_search([j.trial_id for j in pending]), "common": common},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers, reuse_actors=True),
            run_config=tune.RunConfig(name=f"tune-{attempt}", storage_path=str(store.root / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0), callbacks=[Recorder()]),
        )
        try:
            tuner.fit()
        except KeyboardInterrupt:
            return True
        return False
