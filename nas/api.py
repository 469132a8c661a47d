"""The Python API: typed functions over the same code the `nas` command line runs (re-exported by ``nas``).

Every function takes Python values (numbers, sequences, paths), not command-line strings, and raises a
:class:`nas.errors.NASError` with one clear message for anything a user can get wrong. Heavy libraries
(torch, Ray, Optuna) are imported when a function runs, so ``import nas`` stays instant.

    >>> import nas
    >>> model = nas.create_model("stem_c16_k3_s1/basic_d2_s1_c32_k3_relu_bn", budget=300_000)
    >>> run = nas.search(budget=1_500_000, trials=20)          # doctest: +SKIP
    >>> run.trials.head(); run.front()                          # doctest: +SKIP
"""

from __future__ import annotations

import os
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from nas.fidelity import Fidelity
    from nas.run import RunConfig, TrialRecord
    from nas.space.architecture import Architecture

PathLike = str | os.PathLike[str]
Budget = int | float | str  # 1_500_000, 1.5e6 or "1.5M"


def _shape(dataset: str, resolution: int | None) -> Any:
    from nas.data import dataset_shape
    from nas.sampling import Shape

    channels, size, classes = dataset_shape(dataset, resolution=resolution)
    return Shape(channels, size, classes)


def _budget_text(budget: Budget | None) -> str | None:
    """A budget as the space language reads it (numbers are checked by the same rule as "1.5M")."""
    from nas.errors import ConfigError, shown

    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int | float | str):
        raise ConfigError(f"budget must be a number of parameters such as 1_500_000 or '1.5M', got {shown(budget)}")
    return repr(budget) if isinstance(budget, float) else str(budget)


def create_model(arch_or_file: str | PathLike, *, budget: Budget | None = None, dataset: str = "fashion-mnist",
                 resolution: int | None = None) -> nn.Module:
    """A freshly initialised network for ``dataset``'s input shape, from an architecture string or a file of one
    fixed architecture (``search_spaces/baselines/resnet18.yaml``); with ``budget``, its widths are scaled so its
    parameters land just under it (as the search does)."""
    from nas.models import build_model
    from nas.sampling import fit
    from nas.space import load_target

    shape = _shape(dataset, resolution)
    target = load_target(str(arch_or_file), budget=_budget_text(budget))
    solved = fit(target.single(), target.budget, shape)
    return build_model(solved.arch, in_channels=shape.in_channels, num_classes=shape.num_classes,
                       resolution=shape.resolution)


@dataclass(frozen=True)
class Sampled:
    """One architecture drawn from a space: absolute widths, and its exact parameter count."""

    arch: Architecture
    params: int

    def __str__(self) -> str:
        return self.arch.to_string()


def sample(space: PathLike | None = None, *, budget: Budget | None = None, n: int = 1, seed: int = 0,
           dataset: str = "fashion-mnist") -> list[Sampled]:
    """``n`` distinct architectures drawn from ``space`` (default: the packaged bottleneck space), seeded, each
    scaled to ``budget`` (default: the space file's own budget)."""
    from nas.errors import ConfigError, shown
    from nas.sampling import sample_solved
    from nas.search.settings import default_space
    from nas.space import load_target

    target = load_target(str(space) if space is not None else default_space(), budget=_budget_text(budget))
    if target.space is None:
        raise ConfigError(f"{shown(str(space))} is one architecture, not a space file; use create_model")
    drawn = sample_solved(target.space, n, seed=seed, budget=target.budget, shape=_shape(dataset, None))
    return [Sampled(s.arch, s.params) for s in drawn.solved]


class Run:
    """A run folder (search, study, audit or comparison), read through the run store."""

    def __init__(self, path: PathLike) -> None:
        from nas.run import RunStore

        self._store = RunStore.open(str(path))
        self.path = self._store.root

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> RunConfig:
        """run.yaml: space, budget, objectives, sampler, fidelity, seed, versions, …"""
        return self._store.read_config()

    @property
    def records(self) -> list[TrialRecord]:
        """Every trial's final record, in trial order."""
        return self._store.records()

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: the trials.csv columns and every extra measurement of metrics.json."""
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.records])

    def front(self) -> pd.DataFrame:
        """The Pareto front among complete trials at the run's own fidelity, best first objective first."""
        import pandas as pd

        from nas.retrain.select import sort_front
        from nas.run import pareto_front

        config = self.config
        front = sort_front(pareto_front(self.records, config.objectives, config.fidelity.name), config.objectives)
        return pd.DataFrame([r.to_dict() for r in front])


def open_run(path: PathLike) -> Run:
    """An existing run folder; a folder that is not a run is a RunStoreError."""
    return Run(path)


def _console(verbose: bool) -> Any:
    from rich.console import Console

    return Console(quiet=not verbose, soft_wrap=True)


def _fidelity(fidelity: str | Fidelity, epochs: int | None) -> Fidelity:
    from nas.fidelity import Fidelity, fidelity_from_options

    if isinstance(fidelity, Fidelity):
        return fidelity if epochs is None else fidelity_from_options(fidelity.name, [], epochs=epochs)
    return fidelity_from_options(str(fidelity), [], epochs=epochs)


def search(*, budget: Budget, trials: int | None = None, space: PathLike | None = None,
           objectives: Sequence[str] = ("accuracy", "interference"), interference: str | None = None,
           sampler: str | None = None, fidelity: str | Fidelity | None = None, epochs: int | None = None,
           dataset: str = "fashion-mnist", data_dir: PathLike | None = None, seed: int | None = None,
           run: str | None = None, results_dir: PathLike = "results", workers: int | None = None,
           cpus_per_trial: int | None = None, prescreen: str | None = None, prescreen_pool: int | None = None,
           storage: str | None = None, warm_start: Sequence[PathLike] = (), resume: bool = False,
           max_macs: int | None = None, max_activation_memory: int | None = None, tracking: Sequence[str] = (),
           tracking_uri: str | None = None, latency_threads: int | None = None, latency_batch: int | None = None,
           verbose: bool = True) -> Run:
    """Run (or, with ``resume`` and ``run``, continue) a search exactly as `nas search` does; returns its Run.

    ``None`` means the command line's default (20 trials, GP sampler, quick fidelity, synflow pre-screen of 8).
    ``max_macs`` and ``max_activation_memory`` (bytes) are ceilings, as ``--max-macs`` and
    ``--max-activation-memory``; ``tracking`` (``["tensorboard", "mlflow"]``) and ``tracking_uri`` as
    ``--tracking`` and ``--tracking-uri``; with ``"latency"`` among the objectives, ``latency_threads`` and
    ``latency_batch`` as ``--latency-threads`` and ``--latency-batch``.
    Progress is printed with rich (which renders in a notebook) unless ``verbose`` is False.
    """
    from nas.search.runner import run_search
    from nas.search.settings import SearchOptions

    opts = SearchOptions(
        space_file=None if space is None else str(space), budget=_budget_text(budget), trials=trials,
        objectives=",".join(objectives), interference=interference, sampler=sampler,
        fidelity=None if fidelity is None and epochs is None else _fidelity(fidelity or "quick", epochs),
        dataset=dataset, data_dir=None if data_dir is None else str(data_dir), seed=seed, run=run,
        results_dir=Path(results_dir), workers=workers, cpus_per_trial=cpus_per_trial, prescreen=prescreen,
        prescreen_pool=prescreen_pool, storage=storage, resume=resume,
        warm_start=[str(w) for w in warm_start] or None,
        max_macs=None if max_macs is None else str(max_macs),
        max_activation_memory=None if max_activation_memory is None else str(max_activation_memory),
        tracking=",".join(tracking) or None, tracking_uri=tracking_uri, latency_threads=latency_threads,
        latency_batch=latency_batch)
    outcome = run_search(opts, _console(verbose))
    if outcome.interrupted:
        raise KeyboardInterrupt(f"search interrupted; {len(outcome.records)} trial(s) kept in {outcome.run_dir}")
    return Run(outcome.run_dir)


def analyze(run: Run | PathLike, *, out: PathLike | None = None, plots: bool = True, verbose: bool = False) -> Path:
    """Write the run's report (as `nas analyze`; a study, audit or comparison gets its own) and return report.md."""
    from nas.analysis import analyze_runs
    from nas.analysis.designed import DESIGNED_KINDS, write_designed_report

    run = run if isinstance(run, Run) else Run(run)
    kind = run.config.kind
    folder = Path(out) if out is not None else run.path / "report"
    if kind == "compare":
        from nas.compare.report import write_compare_report

        write_compare_report(run._store, folder, plots=plots)
    elif kind in DESIGNED_KINDS:
        write_designed_report(run._store, folder, plots=plots)
    else:
        analyze_runs([run.path], objectives=None, fidelity=None, fmt="table", out_dir=None if out is None else folder,
                     console=_console(verbose), plots=plots)
    return folder / "report.md"


def retrain(run: Run | PathLike, *, top: int = 3, fidelity: str | Fidelity = "full", epochs: int | None = None,
            seed: int | None = None, device: str = "cpu", workers: int = 1, results_dir: PathLike = "results",
            resume: bool = False, verbose: bool = True) -> pd.DataFrame:
    """Retrain the top ``top`` of the run's front (spread along it) as `nas retrain` does; one row per network
    (test accuracy, interference, params, MACs, latency, the proxy's numbers). Load a model with :func:`nas.load`
    from ``<run>/retrain/<arch hash>``."""
    import pandas as pd

    from nas.devices import check_device
    from nas.retrain.drivers import run_retrain
    from nas.retrain.plan import RetrainOptions

    run = run if isinstance(run, Run) else Run(run)
    opts = RetrainOptions(fidelity=_fidelity(fidelity, epochs), run=str(run.path), top=top, seed=seed,
                          device=check_device(device), workers=workers, resume=resume,
                          results_dir=Path(results_dir))
    outcome = run_retrain(opts, _console(verbose))
    return pd.DataFrame(outcome.rows)


def callable_package(module: types.ModuleType, function: str) -> None:
    """Make ``module`` (a package) callable as the API function ``function`` of this module (``nas.search(...)``).

    The API's ``search`` and ``retrain`` share their names with the subpackages that implement them, and
    ``import nas.search.runner`` binds the package to ``nas.search``; so the package itself is the callable.
    Its imports, attributes and ``mock.patch`` paths stay those of an ordinary package.
    """
    import inspect

    target = globals()[function]

    class CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return target(*args, **kwargs)

    module.__class__ = CallablePackage
    module.__signature__ = inspect.signature(target)  # type: ignore[attr-defined]
