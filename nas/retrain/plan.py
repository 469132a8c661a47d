"""Options → Plan: the run, the data, the candidates and their folders, every user error raised before any work.

Planning reads the run through :class:`nas.run.RunStore` (a run.yaml off the schema is refused with the key
named), loads the data, selects and checks the candidates (parsed, in memory, parameter counts as recorded)
and checks every folder it will write; it creates nothing. A candidate already retrained at these settings
is kept; a partial checkpoint needs ``--resume`` and must belong to this candidate and these settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import CheckpointError, ConfigError, RunStoreError, shown
from nas.fidelity import Fidelity
from nas.objectives import DEFAULT_INTERFERENCE, Objective, interference_objective
from nas.retrain.select import Candidate
from nas.space.paths import display_path

if TYPE_CHECKING:
    from nas.data import DatasetSplits
    from nas.run import RunConfig, TrialRecord
    from nas.space import Budget

METRICS_NAME = "metrics.json"
CHECKPOINT_NAME = "checkpoint.pt"  # = nas.train.CHECKPOINT_NAME (kept here so planning imports no torch)


@dataclass
class RetrainOptions:
    """What `nas retrain` was asked for (None = the run's own value or the default)."""

    fidelity: Fidelity
    run: str | None = None
    top: int | None = None
    trials: list[int] | None = None
    archs: list[str] | None = None
    baselines: bool = False
    baseline_names: list[str] = field(default_factory=list)
    budget: str | None = None
    tolerance: float | None = None
    divisor: int | None = None
    dataset: str | None = None
    data_dir: str | None = None
    resolution: int | None = None
    seed: int | None = None
    resume: bool = False
    device: str = "cpu"
    threads: int | None = None
    workers: int = 1
    cpus_per_trial: int | None = None
    onnx: bool = False
    results_dir: Path = field(default_factory=lambda: Path("results"))


@dataclass(frozen=True)
class Job:
    """One candidate's retraining: everything the per-candidate function needs (picklable, for Ray)."""

    candidate: Candidate
    folder: Path
    fidelity: Fidelity
    seed: int
    device: str = "cpu"
    threads: int | None = None
    resume: bool = False
    onnx: bool = False


@dataclass
class Plan:
    """The resolved retraining: output folder, data, candidates, and which of them still need training."""

    out_dir: Path
    run_dir: Path | None
    config: RunConfig | None
    data: DatasetSplits
    fidelity: Fidelity
    seed: int
    candidates: list[Candidate]
    jobs: list[Job]  # candidates still to train (or to finish), in order
    done: list[Candidate]  # candidates already retrained at these settings (skipped)
    interference: list[str]  # the run's interference objective (none when it optimised none), shown and audited
    objectives: list[Objective] = field(default_factory=list)  # the run's objectives ([] without a run)

    @property
    def title(self) -> str:
        return self.run_dir.name if self.run_dir else self.out_dir.name


def plan_retrain(opts: RetrainOptions) -> Plan:
    """Resolve the run, data, candidates and folders; every user error is raised here, before anything is written."""
    from nas.data import load_dataset
    from nas.retrain import select
    from nas.run import RunStore
    from nas.sampling import Shape

    selecting = opts.top is not None or bool(opts.trials) or bool(opts.archs)
    want_baselines = opts.baselines or bool(opts.baseline_names)
    if opts.onnx:
        from nas.retrain.export import require_onnx

        require_onnx()
    config: RunConfig | None = None
    run_dir: Path | None = None
    records: list[TrialRecord] = []
    if opts.run is not None:
        store = RunStore.open(opts.run, opts.results_dir)
        config = store.read_config()
        records = store.records()
        run_dir = store.root.resolve()
    elif selecting:
        raise ConfigError("--top, --trial and --arch pick networks of a search run; pass its folder (results/<run>)")
    elif not want_baselines:
        raise ConfigError("nas retrain needs a run folder (nas retrain results/<run> --top 3) or --baselines --budget")
    if config is not None and not selecting and not want_baselines:
        opts.top = 3  # `nas retrain RUN`: the top 3 of the front

    # what needs no data first: the candidates of the run, the --arch strings, the baselines and their budget
    candidates: list[Candidate] = []
    if opts.top is not None:
        assert config is not None and run_dir is not None
        candidates += select.top_of_front(records, config, opts.top, run_dir)
    if opts.trials:
        assert run_dir is not None
        candidates += select.by_trial_ids(records, opts.trials, run_dir)
    archs = select.parse_arch_strings(opts.archs or [])
    budget = _baseline_budget(opts, config) if want_baselines else None
    if want_baselines:
        select.check_baseline_names(opts.baseline_names)
    if run_dir is not None:
        out_dir = run_dir / "retrain"
    else:
        from nas.space import format_count

        assert budget is not None
        out_dir = (opts.results_dir / f"baselines-{format_count(budget.params)}".replace(".", "_")).resolve()
    _check_folder(out_dir)

    data = load_dataset(
        opts.dataset or (config.dataset if config else "fashion-mnist"),
        data_dir=opts.data_dir if opts.data_dir is not None else config.data_dir if config else None,
        resolution=opts.resolution if opts.resolution is not None else config.resolution if config else None,
    )
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    seed = opts.seed if opts.seed is not None else config.seed if config else 0

    candidates += select.by_arch_strings(archs, records, shape)
    if budget is not None:
        candidates += select.baselines(opts.baseline_names or None, budget, shape)
    candidates = select.dedupe(candidates)
    select.verify(candidates, shape)

    jobs, done = [], []
    for c in candidates:
        job = Job(c, out_dir / c.arch_hash, opts.fidelity, seed, opts.device, opts.threads, opts.resume, opts.onnx)
        if preflight(job, data):
            done.append(c)
        else:
            jobs.append(job)
    if config is None:
        interference = [DEFAULT_INTERFERENCE]
    else:
        chosen = interference_objective(config.objectives)
        interference = [chosen.name] if chosen else []
    return Plan(out_dir, run_dir, config, data, opts.fidelity, seed, candidates, jobs, done, interference,
                list(config.objectives) if config else [])


def _baseline_budget(opts: RetrainOptions, config: RunConfig | None) -> Budget:
    """The budget the baselines are scaled to: --budget/--tolerance/--divisor, else the run's, else defaults."""
    from nas.space import Budget, parse_budget
    from nas.space.budget import check_divisor, check_tolerance

    base = config.budget if config is not None else None
    if opts.budget is not None:
        params = parse_budget(opts.budget)
    elif base is not None:
        params = base.params
    else:
        raise ConfigError("--baselines needs --budget (e.g. --budget 1.5M): there is no run budget to copy")
    return Budget(
        params,
        check_tolerance(opts.tolerance if opts.tolerance is not None else base.tolerance if base else 0.05),
        check_divisor(opts.divisor if opts.divisor is not None else base.divisor if base else 8),
    )


def _check_folder(path: Path) -> None:
    """A folder retrain will write into must be a folder or not exist yet (nothing is created here)."""
    from nas.space.paths import folder_blocker

    blocked = folder_blocker(path)
    if blocked is not None:
        raise RunStoreError(f"retrain writes its results in {display_path(path)}, which cannot be used: {blocked}")


def settings(job: Job, data: DatasetSplits) -> dict[str, Any]:
    """What makes two retrainings of one candidate the same: recorded in metrics.json, compared on re-runs."""
    return {"fidelity_config": job.fidelity.to_dict(), "seed": job.seed, "dataset": data.name,
            "resolution": data.resolution}


def preflight(job: Job, data: DatasetSplits) -> bool:
    """True when the candidate is already retrained at these settings; raise when its folder forbids training.

    A metrics.json at other settings, a checkpoint without ``--resume``, and (with ``--resume``) a checkpoint
    that is corrupt, from another architecture or from other settings are errors; nothing is written here.
    """
    folder = job.folder
    _check_folder(folder)
    metrics_path = folder / METRICS_NAME
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0][:120]
            raise RunStoreError(f"{metrics_path} cannot be read ({why}); move it away to retrain.") from None
        if not isinstance(metrics, dict):
            raise RunStoreError(f"{metrics_path} is not a retraining record; move it away to retrain.")
        want = settings(job, data)
        got = {k: metrics.get(k) for k in want}
        if got == want:
            return True
        differ = ", ".join(k.replace("_config", "") for k in want if got[k] != want[k])
        raise RunStoreError(
            f"{job.candidate.label} was already retrained in {folder} with a different {differ} "
            f"({shown(metrics.get('fidelity'))}, seed {shown(metrics.get('seed'))}, "
            f"{shown(metrics.get('dataset'))}); it is kept. Move that folder away to retrain it with these settings."
        )
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.exists():
        return False
    if not job.resume:
        raise CheckpointError(
            f"{folder} holds a partial retraining of {job.candidate.label} ({CHECKPOINT_NAME}); add --resume to "
            "continue it, or move the folder away to start over (nothing is overwritten)."
        )
    _check_checkpoint(job, data, checkpoint)
    return False


def _check_checkpoint(job: Job, data: DatasetSplits, path: Path) -> None:
    """CheckpointError unless ``path`` can resume this job (readable, same settings, same architecture)."""
    import torch

    from nas.models import build_model
    from nas.train import check_state_dict, load_checkpoint

    state = load_checkpoint(path)
    for key, value in (("fidelity", job.fidelity.to_dict()), ("seed", job.seed), ("dataset", data.name)):
        got = state.get(key)
        if got != value:
            name = got.get("name") if key == "fidelity" and isinstance(got, dict) else got
            raise CheckpointError(
                f"checkpoint {path} was written with a different {key} ({shown(name)}); resume with the original "
                "settings, or move the folder away to start over."
            )
    with torch.random.fork_rng():
        model = build_model(job.candidate.arch, in_channels=data.in_channels, num_classes=data.num_classes,
                            resolution=data.resolution)
    check_state_dict(model, state["model"], path)
