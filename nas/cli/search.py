"""`nas search`: multi-objective architecture search on Ray Tune with Optuna."""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli.options import add_budget_options, add_data_options, add_fidelity_options, make_console

HELP = "multi-objective architecture search on Ray Tune with Optuna"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nas.objectives import INTERFERENCE_METRICS
    from nas.search.prescreen import DEFAULT_POOL, DEFAULT_PROXY, PROXIES
    from nas.search.samplers import SAMPLERS
    from nas.search.settings import DEFAULT_SAMPLER, DEFAULT_TRIALS

    p.add_argument("--space", default=None, help="search-space file (default: search_spaces/bottleneck.yaml)")
    add_budget_options(p)
    p.add_argument("--trials", type=int,
                   help=f"number of trials (default {DEFAULT_TRIALS}; on --resume: the run's own)")
    p.add_argument("--objectives", default=None,
                   help="comma-separated: accuracy, interference (= --interference), params, macs, latency (batch-1 "
                        "CPU latency of the trained network, measured), or a metric name "
                        "(default accuracy,interference)")
    p.add_argument("--interference", default=None, choices=INTERFERENCE_METRICS,
                   help="which interference metric is the objective (default polysemanticity)")
    p.add_argument("--sampler", default=None,
                   help=f"Optuna sampler: {', '.join(SAMPLERS)} (default {DEFAULT_SAMPLER})")
    p.add_argument("--population", type=int, help="NSGA-II population (default: trials/4, between 4 and 50)")
    p.add_argument("--prescreen", default=None, metavar="PROXY",
                   help="zero-cost pre-screen: per trial, score the sampler's proposal and N-1 random networks of "
                        f"the space with this proxy ({', '.join(PROXIES)}) and train only the best; none turns it "
                        f"off (default {DEFAULT_PROXY}, chosen by bench/search_quality.py)")
    p.add_argument("--prescreen-pool", type=int, default=None, metavar="N",
                   help=f"candidates scored per trial by the pre-screen (default {DEFAULT_POOL})")
    add_fidelity_options(p, None)
    add_data_options(p, run_default=True)
    p.add_argument("--workers", type=int, help="trials at a time (default: CPUs / cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=int,
                   help="CPUs (and torch threads) per trial (default 2, or CPUs / --workers when that is given)")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="GPUs per trial (default 0)")
    p.add_argument("--address", help="address of an existing Ray cluster (default: start Ray locally)")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://… (default: results/<run>/study.db)")
    p.add_argument("--run", help="run name or folder (default: <space>-<budget>-<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue the run named by --run")
    p.add_argument("--scheduler", choices=["asha"], help="stop weak trials early (ASHA on accuracy per epoch)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler and of training (default 0)")
    p.add_argument("--warm-start", nargs="+", default=None, metavar="RUN",
                   help="earlier runs of the same space, budget, fidelity and data set: their finished trials are "
                        "told to the new study (not retrained)")
    p.add_argument("--max-macs", default=None, metavar="COUNT",
                   help="ceiling on MACs at batch 1 (e.g. 50M): networks above it are not trained, and the sampler "
                        "is told they are infeasible")
    p.add_argument("--max-activation-memory", default=None, metavar="BYTES",
                   help="ceiling on the peak activation memory at batch 1 in bytes (e.g. 512k; float32, norms and "
                        "activations in place), enforced like --max-macs")
    p.add_argument("--latency-threads", type=int, default=None, metavar="N",
                   help="the latency objective: torch threads of the timed passes (default: the trial's)")
    p.add_argument("--latency-batch", type=int, default=None, metavar="B",
                   help="the latency objective: images per timed pass (default 1)")
    p.add_argument("--tracking", default=None, metavar="TRACKERS",
                   help="also log every trial's per-epoch validation accuracy, final metrics and configuration to "
                        "tensorboard (event files under <run>/ray/) and/or mlflow (comma-separated); off by default")
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="MLflow tracking URI: http(s)://HOST:PORT or sqlite:///PATH (default: <run>/mlflow.db)")
    p.add_argument("--results-dir", default="results", help="where run folders go (default results/)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.cli.options import fidelity_given, resolve_fidelity
    from nas.search.settings import SearchOptions, check_options

    opts = SearchOptions(
        space_file=args.space, budget=args.budget, tolerance=args.tolerance, divisor=args.divisor,
        trials=args.trials, objectives=args.objectives, interference=args.interference, sampler=args.sampler,
        population=args.population, fidelity=resolve_fidelity(args) if fidelity_given(args) else None,
        dataset=args.dataset, data_dir=args.data_dir, resolution=args.resolution, workers=args.workers,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, address=args.address,
        storage=args.storage, run=args.run, resume=args.resume, seed=args.seed, scheduler=args.scheduler,
        results_dir=Path(args.results_dir), prescreen=args.prescreen, prescreen_pool=args.prescreen_pool,
        warm_start=args.warm_start, max_macs=args.max_macs, max_activation_memory=args.max_activation_memory,
        tracking=args.tracking, tracking_uri=args.tracking_uri, latency_threads=args.latency_threads,
        latency_batch=args.latency_batch,
    )
    check_options(opts)  # before Ray is even imported: a refused option costs no second
    from nas.search.runner import run_search

    out = make_console()
    outcome = run_search(opts, out)
    print_front(out, outcome)
    if outcome.interrupted:
        out.print(f"[yellow]interrupted[/yellow]: {len(outcome.records)} trial(s) kept; continue with\n"
                  f"  nas search --resume --run {outcome.run_dir}")
        return outcome.exit_code or 130  # 143 after SIGTERM
    out.print(f"\nrun folder: {outcome.run_dir}\nnext:\n  nas analyze {outcome.run_dir}\n"
              f"  nas retrain {outcome.run_dir} --top 3")
    return 0


def print_front(out: Any, outcome: Any) -> None:
    """Counts, then the Pareto front as a table."""
    from rich.table import Table

    from nas.space import format_count

    records = outcome.records
    failed = sum(r.status == "failed" for r in records)
    pruned = sum(r.status == "pruned" for r in records)
    out.print(f"\n{len(records)} trial(s), {failed} failed, {pruned} pruned, wall {outcome.wall_s / 60:.1f} min")
    if not outcome.front:
        out.print("no complete trial: the Pareto front is empty")
        return
    names = [o.name for o in outcome.objectives]
    table = Table("trial", *names, "params", "MACs", title="Pareto front")
    table.add_column("architecture", overflow="fold")
    for r in outcome.front:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in (r.value(n) for n in names)]
        table.add_row(str(r.trial_id), *cells, f"{r.params or 0:,}", format_count(r.macs or 0), r.arch)
    out.print(table)
