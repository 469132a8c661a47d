"""`nas search`: set up or resume a run, start Ray, drive the study, print progress and the Pareto front."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, RunStoreError
from nas.fidelity import Fidelity
from nas.sampling import Shape
from nas.search.objectives import SAMPLERS, default_population, make_sampler, resolve_objectives
from nas.search.searcher import SearchState, StudySearcher, interference_objective, tell_record
from nas.search.store import RunStore
from nas.space import Budget, Space, format_count, load_target, parse_space

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SearchOptions:
    """Everything `nas search` was asked for (command-line values; None = default or the run's own)."""

    space_file: str = str(PROJECT_ROOT / "search_spaces" / "bottleneck.yaml")
    budget: str | None = None
    tolerance: float | None = None
    divisor: int | None = None
    trials: int | None = None
    objectives: str = "accuracy,interference"
    interference: str = "polysemanticity"
    sampler: str = "nsga2"
    population: int | None = None
    fidelity: Fidelity | None = None
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    resolution: int | None = None
    workers: int | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float = 0.0
    address: str | None = None
    storage: str | None = None
    run: str | None = None
    resume: bool = False
    seed: int = 0
    scheduler: str | None = None
    results_dir: Path = field(default_factory=lambda: Path("results"))


@dataclass
class SearchOutcome:
    run_dir: Path
    records: list[dict[str, Any]]
    front: list[dict[str, Any]]
    interrupted: bool
    wall_s: float
    objectives: list[dict[str, str]]


DEFAULT_TRIALS = 12


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str]:
    import optuna
    import ray
    import torch

    import nas

    return {"nas": nas.__version__, "torch": str(torch.__version__), "optuna": optuna.__version__,
            "ray": ray.__version__, "python": platform.python_version()}


def _run_name(space: str, budget: Budget | None) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{space}-{format_count(budget.params) if budget else 'nobudget'}-{stamp}".replace(".", "_")


def _open_storage(url: str) -> Any:
    import optuna

    try:
        engine = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use this storage"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open the Optuna storage {url!r}: {first}") from None


def _resources(opts: SearchOptions, cpus: int) -> tuple[int, int]:
    """(cpus per trial, concurrent trials): explicit values win; by default one trial per 2 CPUs."""
    per = opts.cpus_per_trial or min(2, cpus)
    if per < 1:
        raise ConfigError("--cpus-per-trial must be at least 1")
    workers = opts.workers or max(1, cpus // per)
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    return per, workers


def run_search(opts: SearchOptions, console: Any) -> SearchOutcome:
    """Run (or resume) a search and return its records and Pareto front."""
    started = time.monotonic()
    if opts.sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {opts.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if opts.scheduler not in (None, "asha"):
        raise ConfigError(f"unknown scheduler {opts.scheduler!r}; the only one is asha")
    if opts.trials is not None and opts.trials < 1:
        raise ConfigError("--trials must be at least 1")
    if opts.address:
        _check_reachable(opts.address)
    resume = opts.resume
    if resume:
        if not opts.run:
            raise ConfigError("--resume needs --run NAME (or the run folder's path)")
        store = RunStore(_run_path(opts))
        if not store.exists():
            raise RunStoreError(f"{store.root} is not a search run (no run.yaml); nothing to resume")
        config = store.read_config()
        if opts.trials is not None:
            config["trials"] = opts.trials
        # Execution settings not given again are the run's own.
        opts.workers = opts.workers or config.get("workers")
        opts.cpus_per_trial = opts.cpus_per_trial or config.get("cpus_per_trial")
        opts.gpus_per_trial = opts.gpus_per_trial or config.get("gpus_per_trial") or 0.0
    else:
        config, store = _new_run(opts)

    space = Space(parse_space(config["space"], config["space_file"]))
    budget = None if config["budget"] is None else Budget(**config["budget"])
    fidelity = Fidelity.from_dict(config["fidelity"])
    objectives = config["objectives"]
    total = int(config["trials"])
    from nas.data import load_dataset

    data = load_dataset(config["dataset"], data_dir=config.get("data_dir"), resolution=config.get("resolution"))
    import dataclasses

    data = dataclasses.replace(data, test_x=data.test_x[:0], test_y=data.test_y[:0])  # trials never see the test split
    shape = Shape(data.in_channels, data.resolution, data.num_classes)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _open_storage(config["storage"] or f"sqlite:///{store.study_db}")
    sampler = make_sampler(config["sampler"], seed=int(config["seed"]), population=int(config["population"]))
    directions = [o["direction"] for o in objectives]
    existing = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if not resume and config["name"] in existing:
        raise ConfigError(f"the storage already holds a study named {config['name']!r}; pick another --run name")
    if not resume:
        store.write_config(config)
    study = optuna.create_study(study_name=config["name"], storage=storage, directions=directions,
                                sampler=sampler, load_if_exists=True)
    reran = _reconcile(study, store, objectives) if resume else 0

    state = SearchState(total=total)
    records = store.records()
    for record in records:
        state.add(record, interference_objective(objectives))
    remaining = total - len(records)
    header = (f"run {config['name']} → {store.root}\n"
              f"space {config['space_name']} ({space.size():,} architectures), budget "
              f"{budget.describe() if budget else 'none'}, sampler {config['sampler']}, "
              f"objectives {', '.join(o['name'] + ' (' + o['direction'][:3] + ')' for o in objectives)}\n"
              f"fidelity {fidelity.describe()}; "
              f"data {data.name} ({len(data.train_y):,} train / {len(data.val_y):,} val)")
    console.print(header)
    if resume:
        console.print(f"resuming: {len(records)} of {total} trials kept, {reran} interrupted trial(s) re-queued")
    interrupted = False
    if remaining > 0:
        interrupted = _drive(opts, config, store, study, space, budget, shape, fidelity, objectives, data, state,
                             remaining, console)
    records = store.records()
    front = _front(study, records)
    return SearchOutcome(store.root, records, front, interrupted, time.monotonic() - started, objectives)


def _run_path(opts: SearchOptions) -> Path:
    assert opts.run
    given = Path(opts.run)
    return given if given.is_absolute() or given.parent != Path(".") else opts.results_dir / opts.run


def _new_run(opts: SearchOptions) -> tuple[dict[str, Any], RunStore]:
    target = load_target(opts.space_file, budget=opts.budget, tolerance=opts.tolerance, divisor=opts.divisor)
    if target.space is None:
        raise ConfigError(f"--space must be a space file, got {opts.space_file!r}")
    objectives = resolve_objectives(opts.objectives, opts.interference)
    from nas.fidelity import get_fidelity

    fidelity = opts.fidelity or get_fidelity("quick")
    trials = opts.trials or DEFAULT_TRIALS
    name = opts.run or _run_name(target.space.name, target.budget)
    store = RunStore(_run_path(opts) if opts.run else opts.results_dir / name)
    if store.root.exists() and any(store.root.iterdir()):
        raise RunStoreError(
            f"run folder {store.root} already exists; add --resume to continue it, or pick another --run"
        )
    budget = target.budget
    config = {
        "name": store.root.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "space_file": opts.space_file,
        "space_name": target.space.name,
        "space": target.space.spec.raw,
        "budget": None if budget is None else {"params": budget.params, "tolerance": budget.tolerance,
                                               "divisor": budget.divisor},
        "objectives": [o.to_dict() for o in objectives],
        "sampler": opts.sampler,
        "population": opts.population or default_population(trials),
        "fidelity": fidelity.to_dict(),
        "scheduler": opts.scheduler,
        "workers": opts.workers,
        "cpus_per_trial": opts.cpus_per_trial,
        "gpus_per_trial": opts.gpus_per_trial,
        "dataset": opts.dataset,
        "data_dir": opts.data_dir,
        "resolution": opts.resolution,
        "trials": trials,
        "seed": opts.seed,
        "storage": opts.storage,
        "versions": _versions(),
        "git_sha": _git_sha(),
        "command": " ".join(sys.argv),
    }
    store.root.mkdir(parents=True, exist_ok=True)
    return config, store


def _reconcile(study: Any, store: RunStore, objectives: list[dict[str, str]]) -> int:
    """After a kill: tell the study what the run store already holds; re-queue trials that were in flight."""
    import optuna

    by_id = {int(r["trial_id"]): r for r in store.records()}
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


def _drive(opts: SearchOptions, config: dict[str, Any], store: RunStore, study: Any, space: Space,
           budget: Budget | None, shape: Shape, fidelity: Fidelity, objectives: list[dict[str, str]], data: Any,
           state: SearchState, remaining: int, console: Any) -> bool:
    """Run the remaining trials on Ray Tune; True when interrupted by Ctrl-C."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C: stop at once, in-flight trials re-run on resume
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # failed trials report no accuracy
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import logging

    import ray
    from ray import tune

    from nas.search.trainable import run_trial

    started_ray = False
    if not ray.is_initialized():
        try:
            if opts.address:
                ray.init(address=opts.address, logging_level=logging.ERROR, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, num_gpus=None, include_dashboard=False,
                         logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Ray cluster at {opts.address or 'localhost'}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        started_ray = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        per, workers = _resources(opts, cpus)
        gpus = opts.gpus_per_trial
        device = "cuda" if gpus > 0 else "cpu"
        trial_config = {
            "run_dir": str(store.root),
            "fidelity": fidelity.to_dict(),
            "seed": int(config["seed"]),
            "threads": per,
            "device": device,
            "objectives": [o["name"] for o in objectives],
            "report_epochs": config.get("scheduler") == "asha",
        }

        def on_record(record: dict[str, Any], st: SearchState) -> None:
            console.print(_progress_line(record, st, objectives), soft_wrap=True)

        searcher = StudySearcher(study=study, space=space, budget=budget, shape=shape, store=store,
                                 objectives=objectives, trial_config=trial_config, fidelity_name=fidelity.name,
                                 state=state, on_record=on_record)
        scheduler = None
        if config.get("scheduler") == "asha":
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(metric="accuracy", mode="max", time_attr="epochs", max_t=fidelity.epochs,
                                      grace_period=1, reduction_factor=2)
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
    finally:
        if started_ray:
            ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an unreachable cluster address (ray.init would retry for minutes)."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else "–"


def _progress_line(record: dict[str, Any], st: SearchState, objectives: list[dict[str, str]]) -> str:
    elapsed = time.monotonic() - st.started
    ran = max(1, st.done - st.reused)
    eta = elapsed / ran * max(0, st.total - st.done) if st.done else float("nan")
    inter = interference_objective(objectives)
    status = record["status"] + (" (reused)" if record.get("reused") else "")
    what = (f"acc {_fmt(record.get('accuracy'))}" + (f" {inter} {_fmt(record.get(inter))}" if inter else "")
            if record["status"] == "complete" else record.get("reason", "")[:90])
    return (f"[{st.done}/{st.total}] trial {record['trial_id']} {status}: {what} | "
            f"{format_count(record.get('params') or 0)} params {record['arch']}\n"
            f"    running {st.running}, failed {st.failed}, pruned {st.pruned}, reused {st.reused} | "
            f"best acc {_fmt(st.best_accuracy)}"
            + (f", lowest {inter} {_fmt(st.lowest_interference)}" if inter else "")
            + f" | elapsed {_clock(elapsed)}, ETA {_clock(eta)}")


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "–"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _front(study: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Pareto front read from the study, joined with the run store's records."""
    by_id = {int(r["trial_id"]): r for r in records}
    try:
        best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:  # no complete trial
        return []
    front = list({by_id[t.number]["arch_hash"]: by_id[t.number] for t in reversed(best) if t.number in by_id}.values())
    return sorted(front, key=lambda r: -(r.get("accuracy") or 0.0))
