"""Drive a retraining plan: in-process (one candidate at a time, progress bar) or as Ray Tune trials.

Both run the same per-candidate function (:func:`nas.retrain.job.retrain_one`) and rebuild retrain.csv and
report.md as candidates finish; Ray is started (or joined) through :func:`nas.ray_session.ray_session`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, Diverged, NASError
from nas.objectives import Objective
from nas.retrain.job import resume_note, retrain_one
from nas.retrain.plan import METRICS_NAME, Job, Plan, RetrainOptions, plan_retrain
from nas.retrain.report import num, summarize

if TYPE_CHECKING:
    from nas.analysis.stats import Correlation


@dataclass
class RetrainOutcome:
    out_dir: Path
    rows: list[dict[str, Any]]  # retrain.csv rows at this fidelity
    audit: list[Correlation]
    trained: int
    skipped: int
    failed: int
    wall_s: float
    interference: list[str]  # the interference objective of the run (shown and audited); [] when it had none
    objectives: list[Objective] = dataclasses.field(default_factory=list)  # the run's objectives
    unreadable: list[str] = dataclasses.field(default_factory=list)  # metrics.json files left out, with why


def run_retrain(opts: RetrainOptions, console: Any) -> RetrainOutcome:
    """Plan (every check first), train what is left (in-process, or on Ray Tune with ``workers`` > 1), summarize."""
    started = time.monotonic()
    plan = plan_retrain(opts)
    console.print(
        f"retraining {len(plan.candidates)} network(s) → {plan.out_dir}\n"
        f"data {plan.data.name} ({len(plan.data.train_y):,} train / {len(plan.data.test_y):,} test); "
        f"fidelity {plan.fidelity.describe()}; seed {plan.seed}; device {opts.device}"
    )
    for c in plan.done:
        console.print(f"  {c.label} ({c.arch_hash}): already retrained at these settings, kept")
    for job in plan.jobs:
        note = resume_note(job)
        if note:
            console.print(f"  {job.candidate.label} ({job.candidate.arch_hash}): {note}")
    if plan.jobs and opts.workers > 1 and len(plan.jobs) > 1:
        results = _run_on_ray(plan, opts, console)
    else:
        results = _run_in_process(plan, console)
    failed = sum(m.get("status") != "complete" for m in results)
    summary = summarize(plan)
    return RetrainOutcome(plan.out_dir, summary.rows, summary.audit, len(results), len(plan.done), failed,
                          time.monotonic() - started, plan.interference, plan.objectives, summary.unreadable)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "–"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _done_line(i: int, n: int, job: Job, m: dict[str, Any], elapsed: float, interference: list[str]) -> str:
    eta = elapsed / i * (n - i)
    if m.get("status") == "complete":
        what = ", ".join([f"test acc {num(m.get('test_accuracy'), '.4f')}",
                          *(f"{name} {num(m.get(name), '.4f')}" for name in interference)])
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
        console.print(_done_line(i, n, job, metrics, time.monotonic() - t0, plan.interference))
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
    from nas.ray_session import cluster_resources, ray_session, trial_slots

    with ray_session():
        from ray import tune

        cpus, n_gpus = cluster_resources()
        per, workers = trial_slots(opts.cpus_per_trial, min(opts.workers, len(plan.jobs)), cpus)
        gpus = min(1.0, n_gpus / workers) if opts.device == "cuda" else 0.0
        if opts.device == "cuda" and gpus <= 0:
            raise ConfigError("--device cuda, but the Ray cluster has no GPU")
        jobs = [dataclasses.replace(j, threads=per) for j in plan.jobs]
        t0 = time.monotonic()
        done: list[int] = []
        interference = plan.interference

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
                print(_done_line(len(done), len(jobs), jobs[i], m, time.monotonic() - t0, interference), flush=True)

        console.print(f"Ray: {cpus} CPU(s); {workers} candidate(s) at a time, {per} CPU(s) and {gpus:g} GPU(s) each")
        ray_dir = plan.out_dir / "ray"
        attempt = len(list(ray_dir.glob("tune-*"))) if ray_dir.exists() else 0
        trainable = tune.with_resources(tune.with_parameters(_ray_trial, data=plan.data, jobs=jobs),
                                        {"cpu": per, "gpu": gpus})
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(list(range(len(jobs))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers, reuse_actors=False),
            run_config=tune.RunConfig(name=f"tune-{attempt}", storage_path=str(ray_dir), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0), callbacks=[Progress()]),
        )
        grid = tuner.fit()
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
        raise _trial_error(errors, ray_dir)
    return results


def _trial_error(errors: list[tuple[Any, str]], ray_dir: Path) -> NASError:
    """The first failed trial's error, as the NASError class it raised (a plain NASError for anything else)."""
    import nas.errors

    kind, reason = errors[0]
    cls = getattr(nas.errors, str(kind), None)
    cls = cls if isinstance(cls, type) and issubclass(cls, NASError) and cls is not Diverged else NASError
    more = f" ({len(errors) - 1} more candidate(s) failed too; see {ray_dir})" if errors[1:] else ""
    return cls(reason + more)
