"""`nas search`: check the options, set up or resume the run, drive the study on Ray Tune, return the front."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.objectives import Objective
from nas.run import RunConfig, RunStore, TrialRecord, pareto_front
from nas.sampling import Shape
from nas.search.progress import progress_line
from nas.search.samplers import make_sampler
from nas.search.searcher import SearchState, StudySearcher, tell_record
from nas.search.settings import SearchOptions, check_options, new_config, resume_config
from nas.space import Space, parse_space


@dataclass
class SearchOutcome:
    run_dir: Path
    records: list[TrialRecord]
    front: list[TrialRecord]
    interrupted: bool
    wall_s: float
    objectives: list[Objective]


def run_search(opts: SearchOptions, console: Any) -> SearchOutcome:
    """Run (or resume) a search and return its records and Pareto front."""
    started = time.monotonic()
    check_options(opts)
    config, store = resume_config(opts) if opts.resume else new_config(opts)
    space = Space(parse_space(config.space, config.space_file or "run.yaml"))
    data = load_search_data(config)
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    created = not opts.resume
    if created:
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_config(config)  # the run description first: a kill after this leaves a resumable run
    try:
        study = open_study(config, store, create=created)
    except BaseException:
        if created:
            shutil.rmtree(store.root, ignore_errors=True)  # a refused start leaves the folder as it found it
        raise
    if not created:
        store.write_config(config)  # execution settings and trial count given on --resume
    reran = reconcile(study, store, config.objectives) if opts.resume else 0
    records = store.records()
    state = SearchState(total=config.trials)
    for record in records:
        state.add(record, config.objectives)
    console.print(_header(config, store, space, data))
    if opts.resume:
        console.print(f"resuming: {len(records)} of {config.trials} trials kept, {reran} interrupted trial(s) "
                      "re-queued")
    interrupted = False
    if config.trials > len(records):
        interrupted = _drive(config, store, study, space, shape, data, state, console)
    records = store.records()
    first = config.objectives[0]
    front = sorted(pareto_front(records, config.objectives, config.fidelity.name),
                   key=lambda r: (first.to_loss(r.finite(first.name)), r.trial_id))  # best first objective first
    return SearchOutcome(store.root, records, front, interrupted, time.monotonic() - started, config.objectives)


def load_search_data(config: RunConfig) -> Any:
    """The run's data set without its test split (trials never see it)."""
    from nas.search.batch import load_trial_data

    return load_trial_data(config.dataset, config.data_dir, config.resolution)


def open_storage(url: str) -> Any:
    import optuna

    try:
        engine = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use this storage"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open the Optuna storage {url}: {first[:200]}") from None


def open_study(config: RunConfig, store: RunStore, *, create: bool) -> Any:
    """The run's Optuna study (created for a new run; a name already in the storage is refused)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(config.storage or f"sqlite:///{store.study_db}")
    if create and config.name in [s.study_name for s in optuna.get_all_study_summaries(storage)]:
        raise ConfigError(f"the storage already holds a study named {config.name!r}; pick another --run name")
    sampler = make_sampler(config.sampler, seed=config.seed, population=config.population or 4)
    study = optuna.create_study(study_name=config.name, storage=storage, sampler=sampler, load_if_exists=not create,
                                directions=[o.direction for o in config.objectives])
    if create:
        import warnings

        with warnings.catch_warnings():  # experimental since Optuna 3.2; it names the objectives in the dashboard
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.name for o in config.objectives])
    return study


def reconcile(study: Any, store: RunStore, objectives: list[Objective]) -> int:
    """After a kill: tell the study what the run store already holds; re-queue trials that were in flight."""
    import optuna

    by_id = {r.trial_id: r for r in store.records()}
    rerun = 0
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        record = by_id.get(frozen.number)
        if record is not None:
            tell_record(study, trial, record, objectives)
            continue
        trial.set_user_attr("reason", "interrupted; re-queued")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if frozen.params:
            study.enqueue_trial(frozen.params, user_attrs={"rerun_of": frozen.number}, skip_if_exists=False)
        rerun += 1
    return rerun


def _header(config: RunConfig, store: RunStore, space: Space, data: Any) -> str:
    objectives = ", ".join(f"{o.name} ({o.direction[:3]})" for o in config.objectives)
    return (f"run {config.name} → {store.root}\n"
            f"space {config.space_name} ({space.size():,} architectures), budget "
            f"{config.budget.describe() if config.budget else 'none'}, sampler {config.sampler}, objectives "
            f"{objectives}\nfidelity {config.fidelity.describe()}; "
            f"data {data.name} ({len(data.train_y):,} train / {len(data.val_y):,} val)")


def resources(config: RunConfig, cpus: int) -> tuple[int, int]:
    """(CPUs per trial, concurrent trials): explicit values win; by default one trial per 2 CPUs."""
    per = config.cpus_per_trial or min(2, cpus)
    if per > cpus:
        raise ConfigError(f"--cpus-per-trial {per} is more than the {cpus} CPU(s) Ray has")
    return per, config.workers or max(1, cpus // per)


def _drive(config: RunConfig, store: RunStore, study: Any, space: Space, shape: Shape, data: Any,
           state: SearchState, console: Any) -> bool:
    """Run the remaining trials on Ray Tune; True when interrupted by Ctrl-C."""
    from nas.ray_session import cluster_resources, ray_session

    with ray_session(config.address):
        from ray import tune

        from nas.search.trainable import run_trial

        cpus, _ = cluster_resources()
        per, workers = resources(config, cpus)
        gpus = config.gpus_per_trial
        trial_config = {
            "run_dir": str(store.root), "fidelity": config.fidelity.to_dict(), "seed": config.seed, "threads": per,
            "device": "cuda" if gpus > 0 else "cpu", "objectives": [o.name for o in config.objectives],
            "report_epochs": config.scheduler == "asha",
        }

        def on_record(record: TrialRecord, st: SearchState) -> None:
            console.print(progress_line(record, st, config.objectives), soft_wrap=True)

        searcher = StudySearcher(study=study, space=space, budget=config.budget, shape=shape, store=store,
                                 objectives=config.objectives, trial_config=trial_config,
                                 fidelity_name=config.fidelity.name, state=state, on_record=on_record)
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
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        try:
            tuner.fit()
        except KeyboardInterrupt:
            searcher.closed = True
            return True
        if searcher.fatal is not None:
            raise searcher.fatal
        return False
