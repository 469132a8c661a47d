"""Engine overhead of `nas search`: wall time against the sum of its trials' training + measurement time.

Both come from one run: the driver's wall time (process start to exit: imports, Ray start-up,
sampling, budget solving, scheduling, writing the run store) and the per-trial wall times the
trials record themselves (build, train, measure). Target: overhead <= 10% at `quick`.

    .venv/bin/python bench/search_overhead.py [--trials 4] [--fidelity-set train_images=1280]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _search_runs import run_search, trial_records

TARGET = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--budget", default="1.5M")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="fidelity overrides FIELD=VALUE")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    extra = [x for s in args.sets for x in ("--set", s)]
    with tempfile.TemporaryDirectory() as tmp:
        wall = run_search(Path(tmp), "overhead", "--budget", args.budget, "--trials", str(args.trials),
                          "--fidelity", "quick", *extra, "--workers", str(args.workers), "--cpus-per-trial", "2")
        rows = trial_records(Path(tmp) / "overhead")
    trial_s = sum(r.wall_s or 0.0 for r in rows)
    busy = trial_s / args.workers
    overhead = (wall - busy) / wall
    print(f"search: {len(rows)} trials at quick, budget {args.budget}, {args.workers} worker(s)")
    print(f"  driver wall time          {wall:8.1f} s")
    print(f"  sum of trial times        {trial_s:8.1f} s  (per worker {busy:.1f} s)")
    print(f"  per trial (mean)          {trial_s / max(1, len(rows)):8.1f} s")
    print(f"  engine overhead           {overhead:8.1%}  "
          f"(target <= {TARGET:.0%}; ratio to target {overhead / TARGET:.2f})")


if __name__ == "__main__":
    main()
