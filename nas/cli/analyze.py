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
    p.add_argument("--noise-from", metavar="RUN",
                   help="a study (or a run with repeated seeds) whose seed noise marks front members that differ by "
                        "less than it (default: the run's own repeats, if any)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.analysis import analyze_runs
    from nas.analysis.designed import DESIGNED_KINDS, summary_lines, write_designed_report
    from nas.errors import ConfigError
    from nas.run import RunStore

    console = make_console()
    stores = [RunStore.open(r) for r in args.runs]
    kinds = [s.read_config().kind for s in stores]
    if "compare" in kinds:
        if len(stores) > 1 or args.objectives or args.fidelity or args.noise_from or args.format != "table":
            raise ConfigError("a comparison is analysed alone, with its own report; --objectives, --fidelity, "
                              "--noise-from and --format apply to search runs")
        from nas.compare.report import summary_lines as compare_lines
        from nas.compare.report import write_compare_report

        out = Path(args.out) if args.out else stores[0].root / "report"
        result = write_compare_report(stores[0], out, plots=not args.no_plots)
        for line in compare_lines(stores[0].root.name, result):
            console.print(line, soft_wrap=True)
        console.print(f"report: {out / 'report.md'}")
        return 0
    if any(k in DESIGNED_KINDS for k in kinds):
        if len(stores) > 1 or args.objectives or args.fidelity or args.noise_from or args.format != "table":
            raise ConfigError("a study or audit run is analysed alone, with its own report; --objectives, --fidelity, "
                              "--noise-from and --format apply to search runs")
        out = Path(args.out) if args.out else stores[0].root / "report"
        analysis = write_designed_report(stores[0], out, plots=not args.no_plots)
        for line in summary_lines(kinds[0], analysis):
            console.print(line, soft_wrap=True)
        console.print(f"report: {out / 'report.md'}")
        return 0
    objectives = None if args.objectives is None else [o for o in args.objectives.split(",") if o.strip()]
    analyze_runs([s.root for s in stores], objectives=objectives, fidelity=args.fidelity, fmt=args.format,
                 out_dir=None if args.out is None else Path(args.out), console=console, plots=not args.no_plots,
                 noise_from=None if args.noise_from is None else Path(args.noise_from))
    return 0
