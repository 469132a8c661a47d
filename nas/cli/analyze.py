"""`nas analyze RUN...`: Pareto front, hypervolume, design-choice statistics, plots and a report."""

from __future__ import annotations

import argparse

from nas.cli.options import make_console

HELP = "Pareto front, hypervolume, design-choice statistics, plots and a report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s), e.g. results/<run>")
    p.add_argument("--objectives", help="comma-separated (default: the run's), e.g. accuracy,interference")
    p.add_argument("--fidelity", help="analyse only this fidelity (default: each fidelity on its own)")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"], help="terminal output")
    p.add_argument("--out", help="report folder (default: RUN/report)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.analysis import analyze_runs

    objectives = None if args.objectives is None else [o for o in args.objectives.split(",") if o.strip()]
    analyze_runs([Path(r) for r in args.runs], objectives=objectives, fidelity=args.fidelity, fmt=args.format,
                 out_dir=None if args.out is None else Path(args.out), console=make_console(), plots=not args.no_plots)
    return 0

