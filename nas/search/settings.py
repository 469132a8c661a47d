"""What `nas search` was asked for, and the RunConfig it makes: a new run's, or a resumed run's after a check.

Every option is checked here, before a folder is created or Ray starts. On ``--resume`` the stored
run.yaml is the truth: an option given again with the stored value is accepted (users resume by
repeating their command), an option that conflicts is refused with the stored value named; only the
trial count and the execution settings (workers, CPUs and GPUs per trial, cluster address) may change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.constraints import TRAINED, parse_ceilings
from nas.errors import ConfigError, RunStoreError, shown
from nas.fidelity import Fidelity
from nas.objectives import DEFAULT_INTERFERENCE, parse_objectives
from nas.run import RunConfig, RunStore
from nas.search.prescreen import check_prescreen
from nas.search.run_options import EXECUTION, RunOptions
from nas.search.samplers import check_sampler, default_population
from nas.search.tracking import parse_tracking
from nas.space import Budget, format_count, load_target
from nas.storage import mask_url

DEFAULT_SPACE = "search_spaces/bottleneck.yaml"
DEFAULT_FIDELITY = "quick"  # the training proxy of every trial; `nas audit` reports how well it ranks
DEFAULT_TRIALS = 20  # ~10–11 min with the pre-screen on this 2-core machine (the main job's ≤ 15 min)
DEFAULT_OBJECTIVES = "accuracy,interference"
# From bench/search_quality.py (results/bench/search_quality): with the synflow pre-screen every sampler is within
# noise of every other; GP's mean hypervolume is the highest at 20 and 40 trials, NSGA-II at population 4 (the
# old default) is below random without it. GP asks cost ~0.1 s, nothing beside a trial.
DEFAULT_SAMPLER = "gp"
SCHEDULERS = ("asha",)
MAX_TRIALS = 1_000_000  # trials (and NSGA-II population) one run asks for
MAX_WORKERS = 100_000  # trials at a time, more than any cluster runs


@dataclass
class SearchOptions(RunOptions):
    """Command-line values of `nas search`; None = not given (the default, or the run's own on --resume)."""

    trials: int | None = None
    objectives: str | None = None
    sampler: str | None = None
    population: int | None = None
    fidelity: Fidelity | None = None
    storage: str | None = None
    scheduler: str | None = None
    prescreen: str | None = None  # zero-cost proxy of the pre-screen (nas.search.prescreen)
    prescreen_pool: int | None = None  # candidates per trial (default DEFAULT_POOL when prescreen is given)
    warm_start: list[str] | None = None  # earlier runs whose finished trials the new study is told
    max_macs: str | None = None  # ceilings (nas.constraints): MACs at batch 1 ...
    max_activation_memory: str | None = None  # ... and peak activation bytes at batch 1, as typed (50M, 256k)
    tracking: str | None = None  # trackers, comma-separated (nas.search.tracking); may change on --resume
    tracking_uri: str | None = None  # MLflow tracking URI (default: the run's mlflow.db)
    latency_threads: int | None = None  # the latency objective: torch threads (default: the trial's) ...
    latency_batch: int | None = None  # ... and images per timed pass (default 1)


def check_options(opts: SearchOptions) -> None:
    """Checks that need nothing but the options themselves (before any file, data set or Ray)."""
    from nas.cli.options import check_local_resources, check_seed, positive

    positive("--trials", opts.trials, maximum=MAX_TRIALS)
    positive("--population", opts.population, minimum=2, maximum=MAX_TRIALS)
    positive("--workers", opts.workers, maximum=MAX_WORKERS)
    positive("--cpus-per-trial", opts.cpus_per_trial)
    positive("--resolution", opts.resolution)
    check_seed("--seed", opts.seed)
    check_folders(opts)
    check_gpus(opts.gpus_per_trial)
    if not opts.address:
        check_local_resources(opts.cpus_per_trial, opts.gpus_per_trial)
    if opts.sampler is not None:
        check_sampler(opts.sampler)
    check_prescreen(opts.prescreen, opts.prescreen_pool)
    parse_ceilings(opts.max_macs, opts.max_activation_memory)
    parse_tracking(opts.tracking, opts.tracking_uri)
    positive("--latency-threads", opts.latency_threads, maximum=1024)
    positive("--latency-batch", opts.latency_batch, maximum=4096)
    if opts.scheduler not in (None, *SCHEDULERS):
        raise ConfigError(f"unknown scheduler {shown(opts.scheduler)}; the only one is asha")
    if opts.storage is not None:
        check_storage_url(opts.storage)
        check_sqlite_folder(opts.storage)
    if opts.resume and not opts.run:
        raise ConfigError("--resume needs --run NAME (or the run folder's path)")
    if opts.resume and opts.warm_start:
        raise ConfigError("--warm-start applies when a search starts; a resumed run keeps what its study was told")
    if opts.address:
        from nas.ray_session import check_reachable

        check_reachable(opts.address)


def check_folders(opts: SearchOptions) -> None:
    """--results-dir and --run can be folders: paths, not files nor under one, and --run ends in a name."""
    from nas.cli.options import check_path
    from nas.space.paths import display_path, folder_blocker

    check_path("--results-dir", opts.results_dir)
    check_path("--run", opts.run)
    if opts.run is not None and Path(opts.run).name in ("", ".", ".."):
        raise ConfigError(f"--run {shown(opts.run)} names no run folder; give a name (e.g. my-run) or a path whose "
                          "last part is the run's name")
    for option, path in (("--results-dir", opts.results_dir), ("--run", run_path(opts) if opts.run else None)):
        blocked = None if path is None else folder_blocker(path)
        if blocked is not None:
            raise ConfigError(f"{option}: a run folder cannot be made at {display_path(path)}: {blocked}")


def check_gpus(gpus: float | None) -> None:
    """A GPU share Ray can schedule: a finite number, 0 or more; above 1, a whole number of GPUs."""
    if gpus is None:
        return
    if not math.isfinite(gpus) or gpus < 0:
        raise ConfigError(f"--gpus-per-trial must be a finite number, 0 or more, got {shown(gpus)}")
    if gpus > 1 and not float(gpus).is_integer():
        raise ConfigError(f"--gpus-per-trial above 1 must be a whole number of GPUs (Ray shares only one GPU), got "
                          f"{shown(gpus)}")


def check_storage_url(url: str) -> None:
    """A URL SQLAlchemy can parse, with a dialect Optuna can use (checked before anything is created)."""
    from nas.storage import check_url

    check_url(url)


def check_sqlite_folder(url: str) -> None:
    """A SQLite storage's folder must exist: SQLite creates the file, never its folder."""
    from sqlalchemy.engine import make_url

    from nas.space.paths import display_path, path_kind, path_problem

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    problem = path_problem(parsed.database)
    folder = Path(parsed.database).parent if problem is None else None
    if folder is None or path_kind(folder) != "dir":
        why = problem if folder is None else f"the folder {display_path(folder)} does not exist; create it first"
        raise ConfigError(f"cannot open the Optuna storage {display_path(str(mask_url(url)))}: {why}")


def run_path(opts: SearchOptions) -> Path:
    """The run folder: --run as a path when it has a folder part, else a name under --results-dir."""
    assert opts.run
    given = Path(opts.run)
    return given if given.is_absolute() or given.parent != Path(".") else opts.results_dir / opts.run


def new_config(opts: SearchOptions) -> tuple[RunConfig, RunStore]:
    """The RunConfig of a new run and its (not yet created) store; nothing is written here."""
    from nas.data import DATASETS

    target = load_target(opts.space_file or default_space(), budget=opts.budget, tolerance=opts.tolerance,
                         divisor=opts.divisor)
    if target.space is None:
        raise ConfigError(f"--space must be a space file, got {shown(opts.space_file)}")
    objectives = parse_objectives(opts.objectives or DEFAULT_OBJECTIVES, opts.interference or DEFAULT_INTERFERENCE)
    from nas.fidelity import get_fidelity

    fidelity = opts.fidelity or get_fidelity(DEFAULT_FIDELITY)
    trials = opts.trials or DEFAULT_TRIALS
    dataset = opts.dataset or "fashion-mnist"
    if dataset not in DATASETS:
        raise ConfigError(f"unknown data set {shown(dataset)}; choose one of {', '.join(DATASETS)}")
    name = opts.run or _run_name(target.space.name, target.budget)
    store = RunStore(run_path(opts) if opts.run else opts.results_dir / name)
    store.check_can_start()
    ceilings = parse_ceilings(opts.max_macs, opts.max_activation_memory)
    check_feasible(target.space, target.budget, dataset, opts, ceilings)
    config = RunConfig(
        kind="search", space_file=opts.space_file or default_space(), space_name=target.space.name,
        space=target.space.spec.raw, budget=target.budget, objectives=objectives,
        sampler=opts.sampler or DEFAULT_SAMPLER, population=opts.population or default_population(trials),
        fidelity=fidelity, scheduler=opts.scheduler, trials=trials, seed=opts.seed or 0,
        storage=mask_url(opts.storage), **opts.config_fields(store),
    )
    config.prescreen, config.prescreen_pool = check_prescreen(opts.prescreen, opts.prescreen_pool)
    config.constraints = {TRAINED: None, **ceilings}
    config.latency = latency_setting(opts, objectives)
    config.tracking = parse_tracking(opts.tracking, opts.tracking_uri) or None
    config.tracking_uri = mask_url(opts.tracking_uri)
    if opts.warm_start:
        from nas.search.warm_start import open_sources

        config.warm_start = [str(s.root) for s in open_sources(opts.warm_start, config, opts.results_dir)]
    return config, store


def latency_setting(opts: SearchOptions, objectives: list[Any]) -> dict[str, int | None] | None:
    """How the latency objective is measured ({threads, batch}); None without it (its options are then refused)."""
    if not any(o.name == "latency_ms" for o in objectives):
        if opts.latency_threads is not None or opts.latency_batch is not None:
            raise ConfigError("--latency-threads and --latency-batch set how the latency objective is measured; "
                              "add latency to --objectives (e.g. accuracy,latency)")
        return None
    return {"threads": opts.latency_threads, "batch": opts.latency_batch or 1}


CEILING_DRAWS = 40  # networks drawn to find one within the ceilings before the search is refused


def check_feasible(space: Any, budget: Budget | None, dataset: str, opts: SearchOptions,
                   ceilings: dict[str, int] | None = None) -> None:
    """Refuse, before a folder or Ray, a space none of whose networks can be built for the data and budget,
    or, with ceilings, none of ``CEILING_DRAWS`` drawn networks meets them (naming the smallest value reached).

    The data set's shape is read without loading it; networks are drawn and fitted as the searcher does
    until one fits (a BudgetError after 20 draws in a row that cannot meet the budget, and at once for a
    budget or a network larger than this machine's memory).
    """
    from nas.constraints import CEILINGS, Constraints
    from nas.data import dataset_shape
    from nas.errors import BudgetError
    from nas.sampling import Shape, sample_solved

    channels, resolution, classes = dataset_shape(dataset, data_dir=opts.data_dir, resolution=opts.resolution)
    shape = Shape(channels, resolution, classes)
    sample_solved(space, 1, seed=opts.seed or 0, budget=budget, shape=shape)
    if not ceilings:
        return
    constraints = Constraints(ceilings, shape)
    draws = min(CEILING_DRAWS, space.size())
    smallest: dict[str, float] = {}
    for solved in sample_solved(space, draws, seed=opts.seed or 0, budget=budget, shape=shape).solved:
        if constraints.broken(solved.arch) is None:
            return
        for name, value in constraints.values(solved.arch).items():
            smallest[name] = min(value, smallest.get(name, value))
    over = [f"{CEILINGS[n][0]} {ceilings[n]:,} (the smallest reaches {smallest[n]:,.0f} {CEILINGS[n][1]}s)"
            for n in ceilings if smallest[n] > ceilings[n]]
    raise BudgetError(f"none of {draws} networks drawn from {shown(space.name)} at this budget meets "
                      f"{'; '.join(over) or 'every ceiling at once'}; raise the ceiling or lower the budget")


def resume_config(opts: SearchOptions) -> tuple[RunConfig, RunStore]:
    """The stored RunConfig of the run to resume, with the options that may change applied; conflicts refused."""
    store = RunStore(run_path(opts))
    if not store.exists():
        raise RunStoreError(f"{store.root} is not a search run (no run.yaml); nothing to resume")
    stored = store.read_config()
    store.records()  # an unreadable trial record is refused (naming it) before the study or Ray is touched
    if stored.kind != "search":
        raise RunStoreError(f"{store.root} is a `nas {stored.kind}` run; resume it with `nas {stored.kind} --resume`")
    conflicts = [f"{option} {shown(given, 160)} (the run has {shown(had, 160)})"
                 for option, given, had in _given(opts, stored) if given != had]
    if conflicts:
        raise ConfigError(f"--resume continues run {stored.name} with its own settings, and these options differ "
                          f"from them: {'; '.join(conflicts)}. Drop them, or start a new run.")
    changes: dict[str, Any] = {k: getattr(opts, k) for k in EXECUTION if getattr(opts, k) is not None}
    if opts.trials is not None:
        changes["trials"] = opts.trials
    if opts.tracking is not None:  # tracking is how a run is watched, not what it finds: it may change
        changes["tracking"] = parse_tracking(opts.tracking, opts.tracking_uri) or None
        changes["tracking_uri"] = mask_url(opts.tracking_uri)
    return dataclasses.replace(stored, **changes), store


def _given(opts: SearchOptions, stored: RunConfig) -> list[tuple[str, Any, Any]]:
    """(option, value given again, stored value) for every result-shaping option given on --resume."""
    out: list[tuple[str, Any, Any]] = []
    if opts.space_file is not None or any(v is not None for v in (opts.budget, opts.tolerance, opts.divisor)):
        target = load_target(opts.space_file or stored.space_file or default_space(), budget=opts.budget,
                             tolerance=opts.tolerance, divisor=opts.divisor)
        if opts.space_file is not None and target.space is not None:
            out.append(("--space", opts.space_file if target.space.spec.raw != stored.space else stored.space_file,
                        stored.space_file))
        if target.budget is not None and stored.budget is not None:
            for option, attr in (("--budget", "params"), ("--tolerance", "tolerance"), ("--divisor", "divisor")):
                if getattr(opts, attr if attr != "params" else "budget") is not None:
                    given, had = getattr(target.budget, attr), getattr(stored.budget, attr)
                    out.append((option, format_count(given) if attr == "params" else given,
                                format_count(had) if attr == "params" else had))
        elif opts.budget is not None:
            out.append(("--budget", opts.budget, None))
    if opts.objectives is not None or opts.interference is not None:
        interference = opts.interference or next((o.name for o in stored.objectives if o.kind == "interference"),
                                                 DEFAULT_INTERFERENCE)
        given = parse_objectives(opts.objectives or DEFAULT_OBJECTIVES, interference)
        out.append(("--objectives", ",".join(o.name for o in given), ",".join(o.name for o in stored.objectives)))
    if opts.fidelity is not None:
        out.append(("--fidelity", opts.fidelity.name if opts.fidelity != stored.fidelity else stored.fidelity.name,
                    stored.fidelity.name))
    for option, attr in (("--sampler", "sampler"), ("--population", "population"), ("--dataset", "dataset"),
                         ("--data-dir", "data_dir"), ("--resolution", "resolution"), ("--seed", "seed"),
                         ("--scheduler", "scheduler")):
        value = getattr(opts, attr)
        if value is not None:
            out.append((option, value, getattr(stored, attr)))
    if opts.prescreen is not None or opts.prescreen_pool is not None:
        proxy, pool = check_prescreen(opts.prescreen, opts.prescreen_pool)
        out.append(("--prescreen", proxy, stored.prescreen))
        if opts.prescreen_pool is not None:
            out.append(("--prescreen-pool", pool, stored.prescreen_pool))
    if opts.latency_threads is not None or opts.latency_batch is not None:
        given = {"threads": opts.latency_threads, "batch": opts.latency_batch or 1}
        out.append(("--latency-threads/--latency-batch", given, stored.latency))
    if opts.max_macs is not None or opts.max_activation_memory is not None:
        ceilings = parse_ceilings(opts.max_macs, opts.max_activation_memory)
        had = {k: v for k, v in (stored.constraints or {}).items() if k != TRAINED}
        out.append(("--max-macs/--max-activation-memory", ceilings, had))
    if opts.storage is not None:  # compared (and shown) with passwords masked: run.yaml keeps none
        out.append(("--storage", mask_url(opts.storage), mask_url(stored.storage)))
    return out


def default_space() -> str:
    """search_spaces/bottleneck.yaml of the working folder when there is one (a checkout), else the packaged one."""
    from nas.space.paths import packaged_space

    local = Path(DEFAULT_SPACE)
    return str(local) if local.is_file() else str(packaged_space(Path(DEFAULT_SPACE).name))


def _run_name(space: str, budget: Budget | None) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{space}-{format_count(budget.params) if budget else 'nobudget'}-{stamp}".replace(".", "_")
