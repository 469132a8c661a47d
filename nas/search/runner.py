"""`nas search`: check the options, set up or resume the run, drive the study on Ray Tune, return the front."""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.constraints import Constraints
from nas.errors import ConfigError
from nas.objectives import Objective
from nas.ray_session import exit_code, terminate_as_interrupt
from nas.run import RunConfig, RunStore, TrialRecord, pareto_front
from nas.sampling import Shape
from nas.search.prescreen import make_prescreen
from nas.search.progress import progress_line
from nas.search.samplers import make_sampler
from nas.search.searcher import SearchState, StudySearcher, tell_record
from nas.search.settings import SearchOptions, check_options, new_config, resume_config
from nas.search.tracking import tracking_callbacks
from nas.space import Space, parse_space
from nas.storage import describe, open_storage, storage_errors, study_lock


@dataclass
class SearchOutcome:
    run_dir: Path
    records: list[TrialRecord]
    front: list[TrialRecord]
    interrupted: bool
    wall_s: float
    objectives: list[Objective]
    exit_code: int = 0  # 130 after Ctrl-C, 143 after SIGTERM (the run is resumable)


def run_search(opts: SearchOptions, console: Any) -> SearchOutcome:
    """Run (or resume) a search and return its records and Pareto front.

    Start-up writes, in order: the folder and its lock, run.yaml (atomically), the study's lock in a
    shared storage, the storage's tables, the study, its objective names. A kill between any two leaves
    a folder that ``--resume`` continues (once run.yaml exists) or the same command starts again.
    """
    started = time.monotonic()
    check_options(opts)
    config, store = resume_config(opts) if opts.resume else new_config(opts)
    url = opts.storage if opts.storage is not None else config.storage  # None: study.db in the run folder
    space = Space(parse_space(config.space, config.space_file or "run.yaml"))
    data = load_search_data(config)
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    constraints = Constraints.of_run(config.constraints, shape)
    created = not opts.resume
    with ExitStack() as held:
        held.enter_context(terminate_as_interrupt())
        held.enter_context(storage_errors(url or f"sqlite:///{store.study_db}", lambda: how_to_continue(store)))
        study = _start(config, store, url, created, held, console)
        if config.warm_start:
            from nas.search.warm_start import already_told, open_sources, tell_earlier_trials

            if not already_told(study):  # a new run, or one killed before its study was told
                sources = open_sources(config.warm_start, config, opts.results_dir)
                told = tell_earlier_trials(study, space, config, sources, constraints)
                console.print(told.line(), soft_wrap=True)
        reran = reconcile(study, store, config.objectives, constraints) if opts.resume else 0
        records = store.records()
        state = SearchState(total=config.trials)
        state.carry(records, config.objectives)
        console.print(_header(config, store, space, data))
        if opts.resume:
            console.print(f"resuming: {len(records)} of {config.trials} trials kept, {reran} interrupted trial(s) "
                          "re-queued")
        signum = None
        if config.trials > len(records):
            signum = _drive(config, store, study, space, shape, data, state, console, constraints,
                            opts.tracking_uri or config.tracking_uri)
        records = store.records()
    first = config.objectives[0]
    front = sorted(pareto_front(records, config.objectives, config.fidelity.name),
                   key=lambda r: (first.to_loss(r.finite(first.name)), r.trial_id))  # best first objective first
    return SearchOutcome(store.root, records, front, signum is not None, time.monotonic() - started,
                         config.objectives, 0 if signum is None else 128 + signum)


def how_to_continue(store: RunStore) -> str:
    """The hint of a failure message: resume a run that exists, else run the command again."""
    if store.exists():
        return f"continue with `nas search --resume --run {store.root}`"
    return "run the same command again"


def _start(config: RunConfig, store: RunStore, url: str | None, created: bool, held: ExitStack,
           console: Any) -> Any:
    """Lock the run (and a shared study), write run.yaml, open the study; the locks stay held by ``held``."""
    if created:
        store.root.mkdir(parents=True, exist_ok=True)
    note = held.enter_context(store.lock(config.command))
    if note:
        console.print(note)
    fresh = False
    try:
        if created:
            store.check_can_start()
            fresh = True
        store.write_config(config)  # first (a kill after this leaves a resumable run); on --resume: new settings
        if url is not None:
            note = held.enter_context(study_lock(url, config.name, config.command))
            if note:
                console.print(note)
        return open_study(config, store, create=created, url=url)
    except BaseException:
        if fresh:
            shutil.rmtree(store.root, ignore_errors=True)  # a refused start leaves no run behind
        raise


def open_study(config: RunConfig, store: RunStore, *, create: bool, url: str | None = None) -> Any:
    """The run's Optuna study: created for a new run (a name the storage already holds is refused), loaded, or
    created if a kill came first, on --resume.

    A resumed study's sampler is seeded with ``seed + trials in the study``: a resumed search continues
    the search instead of replaying the proposals the run began with (the seed alone would repeat them).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url or f"sqlite:///{store.study_db}")
    if create and config.name in optuna.get_all_study_names(storage):
        raise ConfigError(f"{describe(url)} already holds a study named {config.name!r}; pick another --run"
                          if url else f"{store.study_db} already holds a study named {config.name!r}")
    population = config.population or 4
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=not create,
                                sampler=make_sampler(config.sampler, seed=config.seed, population=population),
                                directions=[o.direction for o in config.objectives])
    told = len(study.get_trials(deepcopy=False))
    if told:
        study.sampler = make_sampler(config.sampler, seed=resumed_seed(config.seed, told), population=population)
    names = [o.name for o in config.objectives]
    if study.metric_names != names:  # named at creation, or on the resume after a kill that came first
        import warnings

        with warnings.catch_warnings():  # experimental since Optuna 3.2; it names the objectives in the dashboard
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def resumed_seed(seed: int, told: int) -> int:
    """The sampler seed of a study that already holds ``told`` trials (the run's seed for a new study)."""
    return (seed + told) % 2**32


def reconcile(study: Any, store: RunStore, objectives: list[Objective], constraints: Constraints | None) -> int:
    """Tell the study what the run store holds for its RUNNING trials; re-queue the others (in flight when the
    driver stopped). Called on --resume after a kill, and at once after Ctrl-C or SIGTERM."""
    import optuna

    by_id = {r.trial_id: r for r in store.records()}
    rerun = 0
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        record = by_id.get(frozen.number)
        if record is not None:
            tell_record(study, trial, record, objectives, constraints)
            continue
        trial.set_user_attr("reason", "interrupted; re-queued")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if frozen.params:
            study.enqueue_trial(frozen.params, user_attrs={"rerun_of": frozen.number}, skip_if_exists=False)
        rerun += 1
    return rerun


def load_search_data(config: RunConfig) -> Any:
    """The run's data set without its test split (trials never see it)."""
    from nas.search.batch import load_trial_data

    return load_trial_data(config.dataset, config.data_dir, config.resolution)


def _header(config: RunConfig, store: RunStore, space: Space, data: Any) -> str:
    objectives = ", ".join(f"{o.name} ({o.direction[:3]})" for o in config.objectives)
    return (f"run {config.name} → {store.root}\n"
            f"space {config.space_name} ({space.size():,} architectures), budget "
            f"{config.budget.describe() if config.budget else 'none'}, sampler {config.sampler}, objectives "
            f"{objectives}\nfidelity {config.fidelity.describe()}; "
            f"data {data.name} ({len(data.train_y):,} train / {len(data.val_y):,} val)")


def _drive(config: RunConfig, store: RunStore, study: Any, space: Space, shape: Shape, data: Any,
           state: SearchState, console: Any, constraints: Constraints | None,
           tracking_uri: str | None = None) -> int | None:
    """Run the remaining trials on Ray Tune; the signal number when stopped by Ctrl-C or SIGTERM, else None.

    When stopped, the trials in flight are marked for re-run in the study at once (none stays RUNNING).
    """
    from nas.ray_session import cluster_resources, ray_session, trial_slots

    with ray_session(config.address):
        from ray import tune

        from nas.search.trainable import run_trial

        cpus, _ = cluster_resources()
        per, workers = trial_slots(config.cpus_per_trial, config.workers, cpus)
        gpus = config.gpus_per_trial
        trial_config = {
            "run_dir": str(store.root), "fidelity": config.fidelity.to_dict(), "seed": config.seed, "threads": per,
            "device": "cuda" if gpus > 0 else "cpu", "objectives": [o.name for o in config.objectives],
            "report_epochs": config.scheduler == "asha" or bool(config.tracking),  # ASHA, and per-epoch curves
            "latency": config.latency,
        }

        def on_record(record: TrialRecord, st: SearchState) -> None:
            console.print(progress_line(record, st, config.objectives), soft_wrap=True)

        searcher = StudySearcher(study=study, space=space, budget=config.budget, shape=shape, store=store,
                                 objectives=config.objectives, trial_config=trial_config,
                                 fidelity_name=config.fidelity.name, state=state, on_record=on_record,
                                 constraints=constraints,
                                 prescreen=make_prescreen(config, space=space, shape=shape, data=data, threads=per,
                                                          constraints=constraints))
        scheduler = None
        if config.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(metric="accuracy", mode="max", time_attr="epochs",
                                      max_t=config.fidelity.epochs, grace_period=1, reduction_factor=2)
        remaining = config.trials - state.done
        trainable = tune.with_resources(tune.with_parameters(run_trial, data=data), {"cpu": per, "gpu": gpus})
        attempt = len(list((store.root / "ray").glob("tune-*"))) if (store.root / "ray").exists() else 0
        console.print(f"Ray: {cpus} CPU(s); {workers} trial(s) at a time, {per} CPU(s) and {gpus:g} GPU(s) each; "
                      f"{remaining} trial(s) to run")
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=remaining,
                                        max_concurrent_trials=workers, reuse_actors=True),
            run_config=tune.RunConfig(name=f"tune-{attempt}", storage_path=str(store.root / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0),
                                      callbacks=tracking_callbacks(config.tracking or [], tracking_uri, store.root,
                                                                   config.name)),
        )
        try:
            tuner.fit()
        except KeyboardInterrupt as exc:
            searcher.closed = True
            reconcile(study, store, config.objectives, constraints)
            return exit_code(exc) - 128
        if searcher.fatal is not None:
            with suppress(Exception):  # the storage itself may be what failed
                reconcile(study, store, config.objectives, constraints)
            raise searcher.fatal
        return None
