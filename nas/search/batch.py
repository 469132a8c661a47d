"""A fixed list of evaluations run as Ray Tune trials into one run store: the engine of `nas audit` and `nas study`.

Each :class:`Job` is one architecture at one fidelity and seed, with a trial id fixed by the plan
(its position), so a resumed run skips exactly the jobs whose records exist and repeats none. A job
whose (architecture hash, fidelity, seed) was already evaluated — in this run or in another run
given for reuse — is recorded as reused instead of trained. The trial function is the search's own
(:func:`nas.search.trainable.run_trial`): zero-cost scores, training, metrics, failures as results.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.fidelity import Fidelity
from nas.run import RunConfig, RunStore, TrialRecord
from nas.search.progress import SearchState, progress_line
from nas.search.run_options import EXECUTION, RunOptions

if TYPE_CHECKING:
    from nas.sampling import Shape


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


def load_trial_data(dataset: str, data_dir: str | None, resolution: int | None, *, test: bool = False) -> Any:
    """A data set as trials see it: without its test split unless ``test`` (a comparison measures on it once)."""
    import dataclasses

    from nas.data import load_dataset

    data = load_dataset(dataset, data_dir=data_dir, resolution=resolution)
    return data if test else dataclasses.replace(data, test_x=data.test_x[:0], test_y=data.test_y[:0])


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


@dataclass
class DesignedOptions(RunOptions):
    """The shared options of a designed run (`nas audit`, `nas study`), and --report."""

    report_only: bool = False


def new_store(run: str | None, results_dir: Path, kind: str) -> RunStore:
    """The folder of a new designed run: --run as a path or a name under results_dir (default KIND-<time>)."""
    import datetime as dt


    name = run or f"{kind}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    given = Path(name)
    store = RunStore(given if given.is_absolute() or given.parent != Path(".") else results_dir / name)
    store.check_can_start()
    return store


def open_designed(run: str | None, results_dir: Path, kind: str) -> RunStore:
    """An existing run of ``kind`` (for --resume and --report)."""
    from nas.errors import ConfigError, RunStoreError

    if not run:
        raise ConfigError(f"--resume and --report need --run NAME (or the {kind} folder's path)")
    store = RunStore.open(run, results_dir)
    found = store.read_config().kind
    if found != kind:
        raise RunStoreError(f"{store.root} is a `nas {found}` run, not a {kind}")
    return store


def resumed(stored: RunConfig, fresh: RunConfig | None, design_keys: tuple[str, ...], opts: Any) -> RunConfig:
    """The stored run with the execution settings given again; a ``fresh`` plan that differs is refused."""
    from nas.errors import ConfigError

    if fresh is not None:
        differ = [k for k in design_keys if (stored.design or {}).get(k) != (fresh.design or {}).get(k)]
        differ += [k for k in ("fidelity", "seed", "objectives") if getattr(stored, k) != getattr(fresh, k)]
        if differ:
            raise ConfigError(f"--resume continues {stored.kind} {stored.name} with its own plan, and the options "
                              f"given change its {', '.join(differ)}; drop them, or start a new {stored.kind}")
    changes = {k: getattr(opts, k) for k in EXECUTION if getattr(opts, k) is not None}
    return dataclasses.replace(stored, **changes)


@contextmanager
def driving(store: RunStore, config: RunConfig, *, new: bool) -> Iterator[str | None]:
    """Hold the run for this driver (SIGTERM as Ctrl-C, the run's lock) and write run.yaml first.

    A new run may start only in a folder that does not exist or holds nothing but start-up leftovers.
    Yields the note about a dead driver's lock taken over, if any.
    """
    from nas.ray_session import terminate_as_interrupt

    store.root.mkdir(parents=True, exist_ok=True)
    with terminate_as_interrupt(), store.lock(config.command) as note:
        if new:
            store.check_can_start()  # again under the lock: another driver may have started it since the plan
        store.write_config(config)
        yield note


def run_jobs(config: RunConfig, store: RunStore, jobs: list[Job], data: Any, *, console: Any,
             reuse_from: Iterable[RunStore] = (), final: bool = False) -> int:
    """Run every job that has no record yet; 0 when all ran, else 130 (Ctrl-C) or 143 (SIGTERM): resumable.

    ``final``: each trained network is also measured on the test split, timed at batch 1 and exported
    (:func:`nas.search.trainable.final_measurements`); reuse then only takes records that hold those.
    """
    done = {r.trial_id for r in store.records()}
    known = evaluated(store.records())
    outside: dict[tuple[str, str, int], tuple[TrialRecord, str]] = {}
    for other in reuse_from:
        for key, record in evaluated(other.records()).items():
            outside.setdefault(key, (record, f" of run {other.name}"))
    if final:
        known = {k: r for k, r in known.items() if r.value("test_accuracy") is not None}
        outside = {k: v for k, v in outside.items() if v[0].value("test_accuracy") is not None}
    state = SearchState(total=len(jobs), work={j.trial_id: image_passes(j.fidelity, data) for j in jobs})
    state.carry(store.records(), config.objectives)
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
    stopped = 0
    if pending:
        stopped = _drive(config, store, pending, data, state, console, final)
    if not stopped:
        known = evaluated(store.records())
        for job in waiting:
            source = known.get(job.key)
            if source is not None:
                _write(store, reuse_record(job, source, ""), state, config, console)
    return stopped


def image_passes(fidelity: Fidelity, data: Any) -> float:
    """Training images × epochs of one trial at ``fidelity``: its share of a batch's work, for the ETA."""
    available = int(data.train_y.numel())
    images = available if fidelity.train_images is None else min(fidelity.train_images, available)
    return float(images * fidelity.epochs)


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
           console: Any, final: bool) -> int:
    from nas.ray_session import cluster_resources, exit_code, ray_session, trial_slots

    with ray_session(config.address):
        from ray import tune

        from nas.search.trainable import record_from_result

        cpus, _ = cluster_resources()
        per, workers = trial_slots(config.cpus_per_trial, config.workers, cpus)
        gpus = config.gpus_per_trial
        common = {"run_dir": str(store.root), "threads": per, "device": "cuda" if gpus > 0 else "cpu",
                  "objectives": [o.name for o in config.objectives], "report_epochs": False, "final": final}
        by_id = {j.trial_id: j for j in pending}
        specs = {j.trial_id: {"trial_id": j.trial_id, "arch": j.arch, "params": j.params, "seed": j.seed,
                              "fidelity": j.fidelity.to_dict()} for j in pending}
        started = time.monotonic()
        state.started = started

        class Recorder(tune.Callback):
            """Writes each finished job's record in the driver (so a kill loses nothing finished); counts running."""

            def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
                state.running += 1

            def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict[str, Any],
                                **info: Any) -> None:
                data = record_from_result(result)
                if data.get("status") in (None, "running"):
                    return
                job = by_id[int(data["trial_id"])]
                record = TrialRecord.from_dict({**data, **job.extra, "fidelity": job.fidelity.name},
                                               where=f"trial {job.trial_id}'s result")
                store.write_record(record)
                state.running = max(0, state.running - 1)
                state.add(record, config.objectives)
                print(progress_line(record, state, config.objectives), flush=True)

            def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
                job = by_id[int(trial.config["job"])]
                record = TrialRecord(trial_id=job.trial_id, status="failed", arch=job.arch, arch_hash=job.arch_hash,
                                     fidelity=job.fidelity.name, params=job.params, seed=job.seed,
                                     reason="trial process crashed (see the Ray log in ray/)", extra=dict(job.extra))
                store.write_record(record)
                state.running = max(0, state.running - 1)
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
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under terminate_as_interrupt
            return exit_code(exc)
        return 0


def run_designed(
    opts: DesignedOptions,
    kind: str,
    *,
    plan: Callable[[Shape], tuple[RunConfig, RunStore]],
    replan: Callable[[RunStore, Shape], RunConfig],
    execute: Callable[[RunConfig, RunStore, Any], int],
    report: Callable[[RunStore, Path], None],
    console: Any,
    test_split: bool = False,
) -> tuple[RunStore, int]:
    """The life of a designed run (`nas audit`, `nas study`): plan or resume it, run what is missing, report.

    ``plan`` makes a new run's config and folder, ``replan`` re-reads a stored one for --resume (refusing
    options that change its design), ``execute`` runs its jobs (0, or 130/143 when stopped: resumable) and
    ``report`` writes its report folder. With --report only the report is written. ``test_split``: the trials
    get the data set's test split (a comparison's). Returns (store, status).
    """
    from nas.sampling import Shape
    from nas.search.settings import SearchOptions, check_options

    check_options(SearchOptions(workers=opts.workers, cpus_per_trial=opts.cpus_per_trial,
                                gpus_per_trial=opts.gpus_per_trial, address=opts.address, resolution=opts.resolution,
                                seed=opts.seed, run=opts.run, results_dir=opts.results_dir))
    if opts.report_only or opts.resume:
        store = open_designed(opts.run, opts.results_dir, kind)
        if opts.report_only:
            write_report(store, report, console)
            return store, 0
        stored = store.read_config()
        data = load_trial_data(stored.dataset, stored.data_dir, stored.resolution, test=test_split)
        config = replan(store, Shape(data.in_channels, data.resolution, data.num_classes))
    else:
        data = load_trial_data(opts.dataset or "fashion-mnist", opts.data_dir, opts.resolution, test=test_split)
        config, store = plan(Shape(data.in_channels, data.resolution, data.num_classes))
    with driving(store, config, new=not opts.resume) as note:
        if note:
            console.print(note)
        stopped = execute(config, store, data)
    if not stopped:
        write_report(store, report, console)
    return store, stopped


def write_report(store: RunStore, report: Callable[[RunStore, Path], None], console: Any) -> None:
    """Write a designed run's report into ``<run>/report`` and say where."""
    out = store.root / "report"
    report(store, out)
    console.print(f"report: {out / 'report.md'}")
