"""The `nas retrain` subcommand: ``add_parser(subparsers)`` registers it on the `nas` parser."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = (
    "Retrain networks at full fidelity (checkpoint every epoch, --resume after a kill), measure test accuracy, "
    "interference, params, MACs and latency, export them (safetensors + arch.json, optional ONNX), and audit "
    "the search's proxy. Pick the top K of the run's Pareto front (spread along it), trial ids, architecture "
    "strings, and/or the fixed baselines scaled to the budget."
)


def add_parser(subparsers: Any) -> None:
    """Register ``retrain`` on an ``argparse`` subparsers object (handler: ``cmd_retrain``)."""
    from nas.cli import _add_fidelity_options

    p = subparsers.add_parser("retrain", help="full training of Pareto winners (and baselines), test metrics, export",
                              description=DESCRIPTION)
    p.add_argument("run", nargs="?", metavar="RUN",
                   help="the search run folder, results/<run> (optional with --baselines)")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--top", type=int, metavar="K", help="K networks spread along the Pareto front (default 3)")
    pick.add_argument("--trial", type=int, nargs="+", metavar="ID", help="these trial ids of the run")
    pick.add_argument("--arch", action="append", metavar="STRING", help="an architecture string (repeatable)")
    p.add_argument("--baselines", action="store_true",
                   help="also retrain the fixed baselines (search_spaces/baselines/) scaled to the budget")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME",
                   help="only this baseline, e.g. resnet18 or mobilenet_v2 (repeatable; implies --baselines)")
    p.add_argument("--budget", help="budget the baselines are scaled to: 1.5M, 1500k, … (default: the run's)")
    p.add_argument("--tolerance", type=float, help="budget tolerance (default: the run's, else 0.05)")
    p.add_argument("--divisor", type=int, help="channel divisor (default: the run's, else 8)")
    _add_fidelity_options(p, "full")
    p.add_argument("--dataset", help="data set (default: the run's, else fashion-mnist)")
    p.add_argument("--data-dir", help="folder of the data set (default: the run's)")
    p.add_argument("--resolution", type=int, help="resize images to this many pixels (default: the run's)")
    p.add_argument("--seed", type=int, help="training seed (default: the run's, else 0)")
    p.add_argument("--resume", action="store_true", help="continue partial retrainings from their checkpoints")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (default cpu)")
    p.add_argument("--threads", type=int, help="torch threads when training in-process (default: torch's choice)")
    p.add_argument("--workers", type=int, default=1,
                   help="networks trained at a time as Ray Tune trials (default 1: in-process, with a progress bar)")
    p.add_argument("--cpus-per-trial", type=int, help="CPUs (and threads) per Ray trial (default: CPUs / workers)")
    p.add_argument("--onnx", action="store_true", help="also export model.onnx and check it with ONNX Runtime")
    p.add_argument("--results-dir", default="results",
                   help="where run names are looked up and baselines-<budget>/ goes (default results/)")
    p.add_argument("--json", action="store_true", help="print the rows and the audit as JSON")
    p.set_defaults(handler=cmd_retrain)


def options_from_args(args: argparse.Namespace) -> Any:
    """RetrainOptions from parsed arguments."""
    from nas.cli import resolve_fidelity
    from nas.retrain.runner import RetrainOptions

    return RetrainOptions(
        fidelity=resolve_fidelity(args), run=args.run, top=args.top, trials=args.trial, archs=args.arch,
        baselines=args.baselines, baseline_names=list(args.baseline), budget=args.budget, tolerance=args.tolerance,
        divisor=args.divisor, dataset=args.dataset, data_dir=args.data_dir, resolution=args.resolution,
        seed=args.seed, resume=args.resume, device=args.device, threads=args.threads, workers=args.workers,
        cpus_per_trial=args.cpus_per_trial, onnx=args.onnx, results_dir=Path(args.results_dir),
    )


def cmd_retrain(args: argparse.Namespace) -> int:
    """Run `nas retrain`; 0 when every network trained, 1 when one diverged (recorded), NASError otherwise."""
    from nas.cli import _console, _print_json
    from nas.retrain.runner import run_retrain

    console = _console()
    if args.json:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    outcome = run_retrain(options_from_args(args), console)
    if args.json:
        _print_json({"out_dir": str(outcome.out_dir),
                     "rows": [{k: v for k, v in r.items() if k != "layers"} for r in outcome.rows],
                     "audit": [c.to_dict() for c in outcome.audit]})
    else:
        print_outcome(console, outcome)
    return 1 if outcome.failed else 0


def print_outcome(console: Any, outcome: Any) -> None:
    """The results table, the proxy audit and where the files are."""
    from rich.table import Table

    from nas.retrain.runner import _num, _row_label
    from nas.space import format_count

    inter = outcome.interference
    table = Table("network", "test acc", *inter, "params", "MACs", "latency ms", "proxy acc",
                  *(f"proxy {m}" for m in inter), "hash", title="Retrained (test split)")
    for r in outcome.rows:
        ok = r.get("status") == "complete"
        table.add_row(_row_label(r), _num(r.get("test_accuracy"), ".4f") if ok else "[red]failed[/red]",
                      *(_num(r.get(m), ".4f") for m in inter), f"{r['params']:,}",
                      format_count(r.get("macs") or 0), _num(r.get("latency_ms"), ".2f"),
                      _num(r.get("proxy_accuracy"), ".4f"), *(_num(r.get(f"proxy_{m}"), ".4f") for m in inter),
                      str(r["arch_hash"]))
    console.print(table)
    if all(c.n == 0 for c in outcome.audit):
        console.print("proxy audit: none of these networks comes from the search (no proxy to compare)")
    else:
        _print_audit(console, outcome.audit)
    for r in outcome.rows:
        if r.get("status") != "complete":
            console.print(f"[yellow]{_row_label(r)} failed:[/yellow] {r.get('reason')}")
    console.print(f"{outcome.trained} trained, {outcome.skipped} kept from before, {outcome.failed} failed; "
                  f"wall {outcome.wall_s / 60:.1f} min\nresults: {outcome.out_dir / 'retrain.csv'}, "
                  f"{outcome.out_dir / 'report.md'}; load a model with nas.load('{outcome.out_dir}/<hash>')")


def _print_audit(console: Any, correlations: Any) -> None:
    from rich.table import Table

    audit = Table("full-training metric", "predictor", "n", "Kendall τ (p)", "Spearman ρ (p)", title="Proxy audit")
    notes = []
    for c in correlations:
        tau, rho = c.cells()
        audit.add_row(c.target, c.predictor, str(c.n), tau, rho)
        if c.note:
            notes.append(f"n/a: {c.note}")
    console.print(audit)
    for note in dict.fromkeys(notes):
        console.print(f"  [dim]{note}[/dim]")
