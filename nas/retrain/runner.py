"""`nas retrain`: resolve the candidates, check their folders, train each at full fidelity, measure, export, report.

Layout of the output folder (``results/<run>/retrain/``, or ``results/baselines-<budget>/`` without a run)::

    <arch-hash>/checkpoint.pt      Trainer checkpoint, written at every epoch end (resume point)
    <arch-hash>/metrics.json       final metrics; its presence marks the candidate done (written last)
    <arch-hash>/model.safetensors  weights (no pickle) + arch.json: ``nas.load(folder)`` rebuilds the model
    <arch-hash>/model.onnx         with --onnx, checked against PyTorch with ONNX Runtime
    retrain.csv                    one row per candidate in the folder
    report.md                      table + proxy audit for the candidates at this fidelity

Nothing trained is ever overwritten: a finished candidate (metrics.json at the same fidelity, seed and data)
is skipped; a partial checkpoint needs ``--resume``; checkpoints are checked before anything trains.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.atomic import atomic_write_json, atomic_write_text
from nas.errors import CheckpointError, ConfigError, Diverged, NASError, RunStoreError
from nas.fidelity import Fidelity
from nas.retrain.select import Candidate, param_mismatch
from nas.sampling import Shape

if TYPE_CHECKING:
    from nas.data import DatasetSplits
    from nas.retrain.audit import Correlation

METRICS_NAME = "metrics.json"
CHECKPOINT_NAME = "checkpoint.pt"  # = nas.train.CHECKPOINT_NAME (kept here so this module imports no torch)
INTERFERENCE = ("polysemanticity", "overlap", "outliers", "dead_fraction")
RETRAIN_COLUMNS: tuple[str, ...] = (
    "kind", "source", "status", "reason", "arch", "arch_hash", "params", "macs", "latency_ms", "test_accuracy",
    *INTERFERENCE, "proxy_fidelity", "proxy_accuracy", *(f"proxy_{m}" for m in INTERFERENCE),
    "fidelity", "epochs", "seed", "dataset", "train_s", "wall_s",
)
_KIND_ORDER = {"trial": 0, "arch": 1, "baseline": 2}


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
    config: dict[str, Any] | None
    data: DatasetSplits
    fidelity: Fidelity
    seed: int
    candidates: list[Candidate]
    jobs: list[Job]  # candidates still to train (or to finish), in order
    done: list[Candidate]  # candidates already retrained at these settings (skipped)
    interference: list[str]


@dataclass
class RetrainOutcome:
    out_dir: Path
    rows: list[dict[str, Any]]  # retrain.csv rows at this fidelity
    audit: list[Correlation]
    trained: int
    skipped: int
    failed: int
    wall_s: float
    interference: list[str]  # the interference metrics the run optimised (shown and audited)


# ---- planning ------------------------------------------------------------------------------------------------


def resolve_run_dir(run: str, results_dir: Path) -> Path:
    """A run folder given as a path, or as a name under ``results_dir``."""
    given = Path(run)
    for path in (given, results_dir / run):
        if (path / "run.yaml").is_file():
            return path.resolve()
    raise RunStoreError(f"{run} is not a run folder (no run.yaml there or under {results_dir}/); pass results/<run>.")


def plan_retrain(opts: RetrainOptions) -> Plan:
    """Resolve the run, data, candidates and folders; every user error is raised here, before any training."""
    from nas.data import load_dataset
    from nas.retrain import select
    from nas.search.store import RunStore
    from nas.space import Budget, format_count, parse_budget
    from nas.space.budget import check_divisor, check_tolerance

    selecting = opts.top is not None or bool(opts.trials) or bool(opts.archs)
    want_baselines = opts.baselines or bool(opts.baseline_names)
    if opts.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if opts.device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {opts.device!r}")
    if opts.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but CUDA is not available here; use --device cpu.")
    if opts.onnx:
        from nas.retrain.export import require_onnx

        require_onnx()
    config: dict[str, Any] | None = None
    run_dir: Path | None = None
    records: list[dict[str, Any]] = []
    if opts.run is not None:
        run_dir = resolve_run_dir(opts.run, opts.results_dir)
        store = RunStore(run_dir)
        config = store.read_config()
        for key in ("name", "dataset"):
            if key not in config:
                raise RunStoreError(f"{store.run_yaml} lacks {key!r}; it was not written by `nas search`.")
        records = store.records()
    elif selecting:
        raise ConfigError("--top, --trial and --arch pick networks of a search run; pass its folder (results/<run>)")
    elif not want_baselines:
        raise ConfigError("nas retrain needs a run folder (nas retrain results/<run> --top 3) or --baselines --budget")
    if config is not None and not selecting and not want_baselines:
        opts.top = 3  # `nas retrain RUN`: the top 3 of the front

    cfg = config or {}
    data = load_dataset(
        opts.dataset or cfg.get("dataset") or "fashion-mnist",
        data_dir=opts.data_dir if opts.data_dir is not None else cfg.get("data_dir"),
        resolution=opts.resolution if opts.resolution is not None else cfg.get("resolution"),
    )
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    seed = opts.seed if opts.seed is not None else int(cfg.get("seed") or 0)
    objectives = cfg.get("objectives") or [{"name": "accuracy", "direction": "maximize"},
                                           {"name": "polysemanticity", "direction": "minimize"}]
    interference = [o["name"] for o in objectives if o["name"] in INTERFERENCE] or ["polysemanticity"]

    candidates: list[Candidate] = []
    if opts.top is not None:
        assert run_dir is not None and config is not None
        front = select.read_front(run_dir, config, records)
        if not front:
            raise RunStoreError(f"run {run_dir} has no complete trial, so its Pareto front is empty.")
        candidates += select.from_records(select.spread_front(front, objectives, opts.top))
    if opts.trials:
        assert run_dir is not None
        candidates += select.by_trial_ids(records, opts.trials, run_dir)
    if opts.archs:
        candidates += select.by_arch_strings(opts.archs, records, shape)
    budget: Budget | None = None
    if want_baselines:
        base = cfg.get("budget") or {}
        if opts.budget is None and not base:
            raise ConfigError("--baselines needs --budget (e.g. --budget 1.5M): there is no run budget to copy")
        budget = Budget(
            parse_budget(opts.budget) if opts.budget is not None else int(base["params"]),
            check_tolerance(opts.tolerance if opts.tolerance is not None else base.get("tolerance", 0.05)),
            check_divisor(opts.divisor if opts.divisor is not None else base.get("divisor", 8)),
        )
        candidates += select.baselines(opts.baseline_names or None, budget, shape)
    candidates = select.dedupe(candidates)
    select.verify_params(candidates, shape)

    if run_dir is not None:
        out_dir = run_dir / "retrain"
    else:
        assert budget is not None
        out_dir = (opts.results_dir / f"baselines-{format_count(budget.params)}".replace(".", "_")).resolve()
    jobs, done = [], []
    for c in candidates:
        job = Job(c, out_dir / c.arch_hash, opts.fidelity, seed, opts.device, opts.threads, opts.resume, opts.onnx)
        if preflight(job, data):
            done.append(c)
        else:
            jobs.append(job)
    return Plan(out_dir, run_dir, config, data, opts.fidelity, seed, candidates, jobs, done, interference)


def _settings(job: Job, data: DatasetSplits) -> dict[str, Any]:
    return {"fidelity_config": job.fidelity.to_dict(), "seed": job.seed, "dataset": data.name,
            "resolution": data.resolution}


def preflight(job: Job, data: DatasetSplits) -> bool:
    """True when the candidate is already retrained at these settings; raise when its folder forbids training.

    A metrics.json at other settings, a checkpoint without ``--resume``, and (with ``--resume``) a checkpoint
    that is corrupt, from another architecture or from other settings are errors; nothing is written here.
    """
    folder = job.folder
    metrics_path = folder / METRICS_NAME
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunStoreError(f"{metrics_path} cannot be read ({exc}); move it away to retrain.") from None
        want = _settings(job, data)
        got = {k: metrics.get(k) for k in want}
        if got == want:
            return True
        differ = ", ".join(k.replace("_config", "") for k in want if got[k] != want[k])
        raise RunStoreError(
            f"{job.candidate.label} was already retrained in {folder} with a different {differ} "
            f"({metrics.get('fidelity')}, seed {metrics.get('seed')}, {metrics.get('dataset')}); it is kept. "
            "Move that folder away to retrain it with these settings."
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
        if state.get(key) != value:
            shown = state.get(key, {}).get("name") if key == "fidelity" and isinstance(state.get(key), dict) else None
            raise CheckpointError(
                f"checkpoint {path} was written with a different {key} ({shown or state.get(key)!r}); resume with "
                "the original settings, or move the folder away to start over."
            )
    with torch.random.fork_rng():
        model = build_model(job.candidate.arch, in_channels=data.in_channels, num_classes=data.num_classes,
                            resolution=data.resolution)
    check_state_dict(model, state["model"], path)


# ---- one candidate -------------------------------------------------------------------------------------------


def retrain_one(
    job: Job,
    data: DatasetSplits,
    *,
    progress: bool = False,
    epoch_callback: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """Train one candidate (checkpoint every epoch), measure it on the test split, export it, write metrics.json.

    A diverging candidate is recorded as failed (status, reason) rather than raised.
    """
    import torch

    from nas.complexity import count_macs, latency_ms
    from nas.evaluate import measure_trained
    from nas.models import build_model
    from nas.retrain.export import ONNX_NAME, export_onnx, save_export
    from nas.train import Trainer

    started = time.perf_counter()
    c, folder, fidelity = job.candidate, job.folder, job.fidelity
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    model = build_model(c.arch, in_channels=shape.in_channels, num_classes=shape.num_classes,
                        resolution=shape.resolution)
    params = sum(p.numel() for p in model.parameters())
    if params != c.params:
        raise RunStoreError(param_mismatch(c, params, shape))
    example = torch.zeros(1, shape.in_channels, shape.resolution, shape.resolution)
    macs, _, _ = count_macs(model, example)
    base: dict[str, Any] = {
        "kind": c.kind, "source": c.source, "arch": c.arch.to_string(), "arch_hash": c.arch_hash,
        "params": params, "macs": macs, "fidelity": fidelity.name, **_settings(job, data), **_proxy(c.record),
        "device": job.device,
    }
    trainer = Trainer(device=job.device, threads=job.threads, progress=progress)
    fit_started = time.perf_counter()
    try:
        result = trainer.fit(model, data, fidelity, seed=job.seed, checkpoint_dir=folder, resume=job.resume,
                             epoch_callback=epoch_callback)
    except Diverged as exc:
        metrics = {**base, "status": "failed", "reason": f"diverged: {exc}", "epochs": None,
                   "wall_s": time.perf_counter() - started}
        atomic_write_json(folder / METRICS_NAME, metrics)
        return metrics
    fit_ended = time.perf_counter()
    measured = measure_trained(model, data, fidelity, device=trainer.device, split="test")
    model = model.to("cpu").float().eval()
    onnx_input = data.normalize(data.test_x[:8].to("cpu"))
    lat = latency_ms(model, torch.randn(1, shape.in_channels, shape.resolution, shape.resolution), repeats=50,
                     warmup=10)
    save_export(model, c.arch, folder, in_channels=shape.in_channels, num_classes=shape.num_classes,
                resolution=shape.resolution,
                extra={"dataset": data.name, "class_names": list(data.class_names), "mean": list(data.mean),
                       "std": list(data.std), "fidelity": fidelity.name, "seed": job.seed})
    onnx_diff = export_onnx(model, folder / ONNX_NAME, onnx_input) if job.onnx else None
    metrics = {
        **base,
        "status": "complete",
        "reason": "",
        "test_accuracy": measured["accuracy"],
        **{m: measured[m] for m in INTERFERENCE},
        "activations_finite": measured["activations_finite"],
        "interference_reason": measured["interference_reason"],
        "layers": measured["layers"],
        "latency_ms": lat,
        "epochs": result.epochs,
        "train_s": result.wall_s,
        "train_images_per_s": result.images_per_s,
        "final_loss": result.final_loss,
        "export": {"weights": "model.safetensors", "arch": "arch.json",
                   "onnx": ONNX_NAME if job.onnx else None, "onnx_max_abs_diff": onnx_diff},
    }
    # training summed over resumed sessions, plus this session's set-up, measurement and export
    metrics["wall_s"] = result.wall_s + (fit_started - started) + (time.perf_counter() - fit_ended)
    atomic_write_json(folder / METRICS_NAME, metrics)
    return metrics


def _proxy(record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"trial_id": None, "proxy_fidelity": None, "proxy_accuracy": None,
                **{f"proxy_{m}": None for m in INTERFERENCE}}
    return {"trial_id": record.get("trial_id"), "proxy_fidelity": record.get("fidelity"),
            "proxy_accuracy": record.get("accuracy"), **{f"proxy_{m}": record.get(m) for m in INTERFERENCE}}


# ---- summary ------------------------------------------------------------------------------------------------


def read_rows(out_dir: Path) -> list[dict[str, Any]]:
    """Every candidate's metrics.json in ``out_dir``, ordered trials, strings, baselines."""
    rows = []
    for path in sorted(out_dir.glob(f"*/{METRICS_NAME}")):
        try:
            row = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # written atomically: anything unreadable is not ours
        if isinstance(row, dict) and "arch_hash" in row:
            rows.append(row)

    def key(r: dict[str, Any]) -> tuple[int, int, str]:
        src = str(r.get("source", ""))
        return _KIND_ORDER.get(str(r.get("kind")), 3), int(src) if src.isdigit() else 0, src

    return sorted(rows, key=key)


def write_csv(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """retrain.csv (atomic), one row per candidate."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(RETRAIN_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in RETRAIN_COLUMNS})
    path = out_dir / "retrain.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def write_report(out_dir: Path, plan: Plan, rows: list[dict[str, Any]], audit: list[Correlation]) -> Path:
    """report.md: settings, the results table, the proxy audit (atomic)."""
    from nas.retrain.audit import audit_markdown
    from nas.space import format_count

    inter = plan.interference
    head = ["network", "status", "test acc", *inter, "params", "MACs", "latency ms", "proxy acc",
            *(f"proxy {m}" for m in inter), "epochs", "hash"]
    lines = [
        f"# Retraining: {plan.run_dir.name if plan.run_dir else out_dir.name}",
        "",
        f"- data: {plan.data.name} ({len(plan.data.train_y):,} train / {len(plan.data.test_y):,} test images, "
        f"{plan.data.in_channels}×{plan.data.resolution}×{plan.data.resolution}, {plan.data.num_classes} classes)",
        f"- fidelity: {plan.fidelity.describe()}; seed {plan.seed}",
        "- test accuracy is measured on the test split (used nowhere else); interference on the fixed, "
        "class-balanced probe set from the validation split; latency is the median CPU time at batch 1",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [
            _row_label(r), str(r.get("status")), _num(r.get("test_accuracy"), ".4f"),
            *(_num(r.get(m), ".4f") for m in inter), f"{r['params']:,}", format_count(r.get("macs") or 0),
            _num(r.get("latency_ms"), ".2f"), _num(r.get("proxy_accuracy"), ".4f"),
            *(_num(r.get(f"proxy_{m}"), ".4f") for m in inter), _num(r.get("epochs"), "d"), str(r["arch_hash"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Architectures:", ""]
    lines += [f"- {_row_label(r)} (`{r['arch_hash']}`): `{r['arch']}`" for r in rows]
    failed = [r for r in rows if r.get("status") != "complete"]
    if failed:
        lines += ["", "Failed:", ""] + [f"- {_row_label(r)}: {r.get('reason')}" for r in failed]
    lines += [
        "",
        "## Proxy audit",
        "",
        "Rank correlation, over the retrained networks that come from the search, between what the search "
        "measured (proxy) and what full training gives, next to parameter count and MACs as trivial predictors. "
        "For interference, a positive correlation means the proxy ranks networks like full training does.",
        "",
        audit_markdown(audit),
    ]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _row_label(r: dict[str, Any]) -> str:
    if r.get("kind") == "trial":
        return f"trial {r.get('source')}"
    if r.get("kind") == "baseline":
        return f"{r.get('source')} (baseline)"
    return "architecture"


def summarize(plan: Plan) -> tuple[list[dict[str, Any]], list[Correlation]]:
    """Rewrite retrain.csv (every candidate) and report.md (this fidelity); return this fidelity's rows and audit."""
    from nas.retrain.audit import proxy_audit

    everything = read_rows(plan.out_dir)
    write_csv(plan.out_dir, everything)
    current = plan.fidelity.to_dict()
    rows = [r for r in everything if r.get("fidelity_config") == current]
    audit = proxy_audit([r for r in rows if r.get("status") == "complete"], plan.interference)
    write_report(plan.out_dir, plan, rows, audit)
    return rows, audit


# ---- driving -------------------------------------------------------------------------------------------------


def run_retrain(opts: RetrainOptions, console: Any) -> RetrainOutcome:
    """Plan, train what is left (in-process, or on Ray Tune with ``workers`` > 1), summarize."""
    started = time.monotonic()
    plan = plan_retrain(opts)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    console.print(
        f"retraining {len(plan.candidates)} network(s) → {plan.out_dir}\n"
        f"data {plan.data.name} ({len(plan.data.train_y):,} train / {len(plan.data.test_y):,} test); "
        f"fidelity {plan.fidelity.describe()}; seed {plan.seed}; device {opts.device}"
    )
    for c in plan.done:
        console.print(f"  {c.label} ({c.arch_hash}): already retrained at these settings, kept")
    failed = 0
    if plan.jobs and opts.workers > 1 and len(plan.jobs) > 1:
        results = _run_on_ray(plan, opts, console)
    else:
        results = _run_in_process(plan, console)
    failed = sum(m.get("status") != "complete" for m in results)
    rows, audit = summarize(plan)
    return RetrainOutcome(plan.out_dir, rows, audit, len(results), len(plan.done), failed,
                          time.monotonic() - started, plan.interference)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "–"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _done_line(i: int, n: int, job: Job, m: dict[str, Any], elapsed: float) -> str:
    eta = elapsed / i * (n - i)
    if m.get("status") == "complete":
        what = f"test acc {m['test_accuracy']:.4f}, polysemanticity {_num(m.get('polysemanticity'), '.4f')}"
    else:
        what = f"failed: {m.get('reason')}"
    return f"[{i}/{n}] {job.candidate.label} ({job.candidate.arch_hash}) {what} | elapsed {_clock(elapsed)}, " \
           f"ETA {_clock(eta)}"


def _run_in_process(plan: Plan, console: Any) -> list[dict[str, Any]]:
    results = []
    t0 = time.monotonic()
    n = len(plan.jobs)
    for i, job in enumerate(plan.jobs, 1):
        c = job.candidate
        console.print(f"[{i}/{n}] {c.label} ({c.arch_hash}, {c.params:,} params): {c.arch}")
        try:
            metrics = retrain_one(job, plan.data, progress=True)
        finally:
            summarize(plan)  # keep retrain.csv/report.md current, also when stopped
        results.append(metrics)
        console.print(_done_line(i, n, job, metrics, time.monotonic() - t0))
    return results


def _ray_trial(config: dict[str, Any], data: Any = None, jobs: Any = None) -> None:
    """Ray Tune function trainable: retrain ``jobs[config['index']]``; user errors are reported, not raised."""
    from ray import tune

    job = jobs[int(config["index"])]
    try:
        metrics = retrain_one(job, data, progress=False)
        tune.report({"index": config["index"], "status": metrics["status"], "reason": metrics.get("reason", "")})
    except NASError as exc:
        tune.report({"index": config["index"], "status": "error", "reason": str(exc),
                     "error_type": type(exc).__name__})


def _run_on_ray(plan: Plan, opts: RetrainOptions, console: Any) -> list[dict[str, Any]]:
    """Each job as one Ray Tune trial (``workers`` at a time, ``cpus_per_trial`` CPUs and threads each)."""
    import dataclasses
    import logging

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    started_ray = False
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
        started_ray = True
    try:
        resources = ray.cluster_resources()
        cpus, n_gpus = int(resources.get("CPU", 1)), float(resources.get("GPU", 0))
        workers = min(opts.workers, len(plan.jobs))
        per = opts.cpus_per_trial or max(1, cpus // workers)
        gpus = min(1.0, n_gpus / workers) if opts.device == "cuda" else 0.0
        if opts.device == "cuda" and gpus <= 0:
            raise ConfigError("--device cuda, but the Ray cluster has no GPU")
        jobs = [dataclasses.replace(j, threads=per) for j in plan.jobs]
        t0 = time.monotonic()
        done: list[int] = []

        class Progress(tune.Callback):
            def on_trial_result(
                self, iteration: int, trials: Any, trial: Any, result: dict[str, Any], **info: Any
            ) -> None:
                i = int(result["index"])
                done.append(i)
                m = {"status": result["status"], "reason": result.get("reason")}
                metrics_path = jobs[i].folder / METRICS_NAME
                if result["status"] != "error" and metrics_path.is_file():
                    m = json.loads(metrics_path.read_text())
                # print(), not the rich console: Tune pickles its callbacks, and a Console holds a lock
                print(_done_line(len(done), len(jobs), jobs[i], m, time.monotonic() - t0), flush=True)

        console.print(f"Ray: {cpus} CPU(s); {workers} candidate(s) at a time, {per} CPU(s) and {gpus:g} GPU(s) each")
        attempt = len(list((plan.out_dir / "ray").glob("tune-*"))) if (plan.out_dir / "ray").exists() else 0
        trainable = tune.with_resources(tune.with_parameters(_ray_trial, data=plan.data, jobs=jobs),
                                        {"cpu": per, "gpu": gpus})
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(list(range(len(jobs))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers, reuse_actors=False),
            run_config=tune.RunConfig(name=f"tune-{attempt}", storage_path=str(plan.out_dir / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0), callbacks=[Progress()]),
        )
        grid = tuner.fit()
    finally:
        if started_ray:
            ray.shutdown()
    results, errors = [], []
    for r in grid:
        metrics = r.metrics or {}
        if r.error is not None or metrics.get("status") in (None, "error"):
            reason = metrics.get("reason") or (str(r.error).strip().splitlines()[0] if r.error else "trial crashed")
            errors.append((metrics.get("error_type"), reason))
            continue
        results.append(json.loads((jobs[int(metrics["index"])].folder / METRICS_NAME).read_text()))
    if errors:
        summarize(plan)
        import nas.errors

        kind, reason = errors[0]
        cls = getattr(nas.errors, str(kind), None)
        cls = cls if isinstance(cls, type) and issubclass(cls, NASError) and cls is not Diverged else NASError
        more = f" ({len(errors) - 1} more candidate(s) failed too; see {plan.out_dir / 'ray'})" if errors[1:] else ""
        raise cls(reason + more)
    return results
