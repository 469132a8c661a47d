"""NSGA-II against random sampling: same space, budget, fidelity, trial count and seeds; hypervolume of each.

Hypervolume is computed by `nas analyze` with its fixed reference point (accuracy 1 → error 0..1,
polysemanticity 1), so the numbers are comparable across runs. A cheap fidelity keeps the bench
to a few minutes on 2 CPUs; pass --set to change it.

    .venv/bin/python bench/sampler_vs_random.py [--trials 16] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _search_runs import run_search

from nas.analysis import analyze_runs

CHEAP = ["train_images=640", "epochs=1", "val_images=500", "probe_images=300"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--budget", default="300k")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--set", dest="sets", action="append", default=None, help="fidelity overrides FIELD=VALUE")
    args = parser.parse_args()
    sets = [x for s in (args.sets or CHEAP) for x in ("--set", s)]
    hv: dict[str, list[float]] = {"nsga2": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        for seed in args.seeds:
            for sampler in hv:
                name = f"{sampler}-s{seed}"
                wall = run_search(results, name, "--sampler", sampler, "--seed", str(seed), "--trials",
                                  str(args.trials), "--budget", args.budget, "--population", str(args.population),
                                  *sets, "--workers", "2", "--cpus-per-trial", "1")
                summary = analyze_runs([results / name], objectives=None, fidelity=None, fmt="json", out_dir=None,
                                       console=None, plots=False)
                value = summary.runs[0].analyses[0].hypervolume
                hv[sampler].append(value)
                print(f"{name:12s} hypervolume {value:.4f}  ({wall:.0f} s)", flush=True)
    print(f"\n{args.trials} trials per run, budget {args.budget}, seeds {args.seeds}, NSGA-II population "
          f"{args.population}; fidelity {' '.join(args.sets or CHEAP)}")
    for sampler, values in hv.items():
        per_seed = [round(v, 4) for v in values]
        print(f"  {sampler:7s} mean hypervolume {statistics.mean(values):.4f}  per seed {per_seed}")
    ratio = statistics.mean(hv["nsga2"]) / statistics.mean(hv["random"])
    print(f"  NSGA-II / random = {ratio:.3f}")


if __name__ == "__main__":
    main()
