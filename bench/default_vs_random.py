"""The README's main job against random sampling, for real: `nas search --budget 1.5M` as shipped vs. `--sampler random
--prescreen none`, same space, budget, fidelity, trial count (the default) and seeds, trained on this machine.

bench/search_quality.py chose the defaults by replaying searches against the study's recorded results; this
checks the choice with real training. Printed per run: hypervolume with `nas analyze`'s fixed reference point
(accuracy 0, polysemanticity 1; comparable across runs), the best accuracy found, trials that failed, and the
wall time of the whole command (the main job's ≤ 15 min target). Two seeds cannot give an interval; the
replayed benchmark gives those.

Run folders are kept under ``--out`` (small files committed: run.yaml, trials.csv, metrics.json); a run that is
already complete there is read back, an unfinished one is continued with ``--resume``, so a killed bench loses
at most the trial in flight.

    .venv/bin/python bench/default_vs_random.py [--seeds 0 1] [--out results/bench/default_vs_random]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _search_runs import run_search

from nas.analysis import analyze_runs
from nas.run import RunStore

ROUTES = {  # name -> options added to `nas search --budget 1.5M`
    "default": [],
    "random": ["--sampler", "random", "--prescreen", "none"],
}


def _run(out: Path, name: str, seed: int, extra: list[str], budget: str) -> tuple[float | None, bool]:
    """Run (or continue) one search; its wall time, None when it was already complete, and whether it resumed."""
    store = RunStore(out / name)
    if store.exists():
        config = store.read_config()
        if len(store.records()) >= config.trials:
            return None, False
        return run_search(out, name, "--resume"), True
    return run_search(out, name, "--budget", budget, "--seed", str(seed), *extra), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--budget", default="1.5M")
    parser.add_argument("--out", default=None, help="folder for the run folders (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        hv: dict[str, list[float]] = {route: [] for route in ROUTES}
        for seed in args.seeds:
            for route, extra in ROUTES.items():
                name = f"{route}-s{seed}"
                started = time.perf_counter()
                wall, resumed = _run(out, name, seed, extra, args.budget)
                summary = analyze_runs([out / name], objectives=None, fidelity=None, fmt="json", out_dir=None,
                                       console=None, plots=False)
                value = summary.runs[0].analyses[0].hypervolume
                hv[route].append(value)
                store = RunStore(out / name)
                records, config = store.records(), store.read_config()
                accuracy = [r.finite("accuracy") for r in records if r.complete]
                best = max((a for a in accuracy if a is not None), default=float("nan"))
                failed = sum(not r.complete for r in records)
                timing = ("recorded earlier" if wall is None else
                          f"{wall / 60:.1f} min{' (resumed; this part only)' if resumed else ''}")
                print(f"{name:10s} sampler {config.sampler:6s} pre-screen {config.prescreen or 'off':8s} "
                      f"{len(records)} trials ({failed} failed)  hypervolume {value:.4f}  best accuracy {best:.3f}  "
                      f"wall {timing}  [{time.perf_counter() - started:.0f} s here]", flush=True)
        print(f"\nbudget {args.budget}, default trial count and fidelity, seeds {args.seeds}")
        for route, values in hv.items():
            per_seed = [round(v, 4) for v in values]
            print(f"  {route:8s} mean hypervolume {statistics.mean(values):.4f}  per seed {per_seed}")
        ratio = statistics.mean(hv["default"]) / statistics.mean(hv["random"])
        print(f"  default / random = {ratio:.3f}")


if __name__ == "__main__":
    main()
