"""`nas retrain [RUN]`: full training of Pareto winners (and baselines), test metrics, export, proxy audit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.cli.options import (
    add_fidelity_options,
    check_local_resources,
    check_path,
    check_seed,
    check_threads,
    make_console,
    positive,
    print_json,
    resolve_fidelity,
)
from nas.devices import check_device

HELP = "full training of Pareto winners (and baselines), test metrics, export"
DESCRIPTION = (
    "Retrain networks at full fidelity (checkpoint every epoch, --resume after a kill), measure test accuracy, "
    "interference, params, MACs and latency, export them (safetensors + arch.json, optional ONNX), and audit "
    "the search's proxy. Pick the top K of the run's Pareto front (spread along it), trial ids, architecture "
    "strings, and/or the fixed baselines scaled to the budget."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    add_fidelity_options(p, "full")
    p.add_argument("--dataset", help="data set (default: the run's, else fashion-mnist)")
    p.add_argument("--data-dir", help="folder of the data set (default: the run's)")
    p.add_argument("--resolution", type=int, help="resize images to this many pixels (default: the run's)")
    p.add_argument("--seed", type=int, help="training seed (default: the run's, else 0)")
    p.add_argument("--resume", action="store_true", help="continue partial retrainings from their checkpoints")
    p.add_argument("--device", default="cpu", help="training device: cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch threads when training in-process (default: torch's choice)")
    p.add_argument("--workers", type=int, default=1,
                   help="networks trained at a time as Ray Tune trials (default 1: in-process, with a progress bar)")
    p.add_argument("--cpus-per-trial", type=int, help="CPUs (and threads) per Ray trial (default: CPUs / workers)")
    p.add_argument("--onnx", action="store_true", help="also export model.onnx and check it with ONNX Runtime")
    p.add_argument("--results-dir", default="results",
                   help="where run names are looked up and baselines-<budget>/ goes (default results/)")
    p.add_argument("--json", action="store_true", help="print the rows and the audit as JSON")


def options_from_args(args: argparse.Namespace) -> Any:
    """RetrainOptions from parsed arguments; option values are checked here, before anything is read or started."""
    from nas.retrain.plan import RetrainOptions

    for name in ("top", "workers", "cpus_per_trial", "resolution"):
        positive(f"--{name.replace('_', '-')}", getattr(args, name))
    check_threads(args.threads)
    check_seed("--seed", args.seed)
    check_local_resources(args.cpus_per_trial, None, cluster=False)
    check_path("--results-dir", args.results_dir)
    return RetrainOptions(
        fidelity=resolve_fidelity(args, "full"), run=args.run, top=args.top, trials=args.trial, archs=args.arch,
        baselines=args.baselines, baseline_names=list(args.baseline), budget=args.budget, tolerance=args.tolerance,
        divisor=args.divisor, dataset=args.dataset, data_dir=args.data_dir, resolution=args.resolution,
        seed=args.seed, resume=args.resume, device=check_device(args.device), threads=args.threads,
        workers=args.workers, cpus_per_trial=args.cpus_per_trial, onnx=args.onnx,
        results_dir=Path(args.results_dir),
    )


def run(args: argparse.Namespace) -> int:
    """Run `nas retrain`; 0 when every network trained, 1 when one diverged (recorded), NASError otherwise."""
    from nas.retrain.drivers import run_retrain

    opts = options_from_args(args)
    out = make_console(stderr=args.json)
    outcome = run_retrain(opts, out)
    if args.json:
        print_json({"out_dir": str(outcome.out_dir),
                    "rows": [{k: v for k, v in r.items() if k != "layers"} for r in outcome.rows],
                    "audit": [c.to_dict() for c in outcome.audit], "unreadable": outcome.unreadable})
    else:
        print_outcome(out, outcome)
    return 1 if outcome.failed else 0


def print_outcome(out: Any, outcome: Any) -> None:
    """The results table, the proxy audit and where the files are."""
    from rich.table import Table

    from nas.retrain.report import interference_note, num, row_label
    from nas.space import format_count

    inter = outcome.interference
    table = Table("network", "test acc", *inter, "params", "MACs", "latency ms", "proxy acc",
                  *(f"proxy {m}" for m in inter), "hash", title="Retrained (test split)")
    for r in outcome.rows:
        ok = r.get("status") == "complete"
        table.add_row(row_label(r), num(r.get("test_accuracy"), ".4f") if ok else "[red]failed[/red]",
                      *(num(r.get(m), ".4f") for m in inter), num(r.get("params"), ","),
                      format_count(r.get("macs") or 0), num(r.get("latency_ms"), ".2f"),
                      num(r.get("proxy_accuracy"), ".4f"), *(num(r.get(f"proxy_{m}"), ".4f") for m in inter),
                      str(r["arch_hash"]))
    out.print(table)
    note = interference_note(inter, outcome.objectives)
    if note:
        out.print(f"note: {note}")
    if all(c.n == 0 for c in outcome.audit):
        out.print("proxy audit: none of these networks comes from the search (no proxy to compare)")
    else:
        _print_audit(out, outcome.audit)
    for r in outcome.rows:
        if r.get("status") != "complete":
            out.print(f"[yellow]{row_label(r)} failed:[/yellow] {r.get('reason')}")
    for what in outcome.unreadable:
        out.print(f"[yellow]left out, unreadable:[/yellow] {what}")
    out.print(f"{outcome.trained} trained, {outcome.skipped} kept from before, {outcome.failed} failed; "
              f"wall {outcome.wall_s / 60:.1f} min\nresults: {outcome.out_dir / 'retrain.csv'}, "
              f"{outcome.out_dir / 'report.md'}; load a model with nas.load('{outcome.out_dir}/<hash>')")


def _print_audit(out: Any, correlations: Any) -> None:
    from rich.table import Table

    audit = Table("full-training metric", "predictor", "n", "Kendall τ (p)", "Spearman ρ (p)", title="Proxy audit")
    notes = []
    for c in correlations:
        tau, rho = c.cells()
        audit.add_row(c.target, c.predictor, str(c.n), tau, rho)
        if c.note:
            notes.append(f"n/a: {c.note}")
    out.print(audit)
    for note in dict.fromkeys(notes):
        out.print(f"  [dim]{note}[/dim]")
