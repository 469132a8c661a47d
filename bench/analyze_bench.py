"""Benchmark: `nas analyze` of a generated 1,000-trial run, plots included, against the 30 s target."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from nas.analysis import analyze_runs
from nas.testing import make_run

TARGET_S = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the run here and keep it (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        run_dir = make_run(root / f"bench_{args.trials}", args.trials, args.seed).root
        out = io.StringIO()
        start = time.perf_counter()
        summary = analyze_runs(
            [run_dir], objectives=None, fidelity=None, fmt="table", out_dir=None, console=Console(file=out, width=160)
        )
        wall = time.perf_counter() - start
        report = summary.runs[0]
        pngs = sum(1 for p in report.files if p.suffix == ".png")
        a = report.analyses[0]
        print(
            f"analyze {args.trials} trials ({a.counts.analysed} analysed, {pngs} PNGs, "
            f"importances: {a.importances.evaluator.split(' (')[0] if a.importances else 'none'}): "
            f"{wall:.2f} s; target {TARGET_S:.0f} s; ratio {wall / TARGET_S:.3f}"
        )
    return 0 if wall < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
