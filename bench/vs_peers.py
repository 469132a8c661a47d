"""`nas search` against the route a user takes without it: Ray Tune's own OptunaSearch driving a plain trainable.

Same space (search_spaces/bottleneck.yaml), budget, fidelity, trial count, seed and sampler (NSGA-II, same
population) on both sides, one trial at a time with the same CPUs, each side in its own process:

(a) `nas search` (budget solver, reuse of duplicates by semantic hash, failures told to the study as FAIL), with
    the peer's NSGA-II and no pre-screen, and once more as shipped (its default sampler and pre-screen);
(b) what a user writes with our library as a model zoo: ``OptunaSearch(space=define_by_run, metric=[accuracy,
    polysemanticity], mode=[max, min], sampler=NSGAIISampler(seed, population))``, where the define-by-run
    function is ``Space.suggest`` (the same categoricals), and a function trainable that builds the network at
    the space's reference widths times ONE width multiplier (calibrated once, by solving the budget for one
    network drawn from the space: what a user tuning widths by hand would reach), trains it with
    ``nas.evaluate.evaluate`` and reports accuracy and polysemanticity (NaN when they are not finite; a
    diverged training raises, as a plain training loop would).
    With Optuna 5.1 ``tune.Tuner`` cannot pickle NSGAIISampler (it holds a lock); the bench says so and runs
    the peer with :class:`PicklableNSGAII`, the same sampler minus its lock when pickled.

Printed for each: wall time (process start to exit), engine overhead share ((wall − Σ trial time) / wall),
trials spent on networks outside the budget window [(1 − tolerance)·budget, budget], duplicate
architectures trained twice, trials left RUNNING in the Optuna study (a NaN told to Optuna raises inside
OptunaSearch, which logs it and moves on), and hypervolume (accuracy 0 / polysemanticity 1 reference, complete
trials; for (b) also counting only the networks inside the budget window).

    .venv/bin/python bench/vs_peers.py [--trials 12] [--budget 500k] [--set train_images=1280 ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import optuna

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SETS = ["train_images=1280", "val_images=1000", "probe_images=500"]
OBJECTIVES = ("accuracy", "polysemanticity")


def _fidelity(sets: list[str]) -> Any:
    from nas.fidelity import fidelity_from_options

    return fidelity_from_options("quick", sets)


# ---- (b) the peer route, run in its own process --------------------------------------------------------------


def width_multiplier(space: Any, budget: Any, seed: int, in_channels: int, num_classes: int) -> float:
    """One multiplier of every reference width: the budget solver's mean scale for one network of the space."""
    import random

    from nas.models import solve_budget

    ref = space.sample(random.Random(seed))
    solved = solve_budget(ref, budget=budget.params, tolerance=budget.tolerance, divisor=budget.divisor,
                          in_channels=in_channels, num_classes=num_classes)
    ratios = [s.width / r.width for s, r in zip(solved.stages, ref.stages, strict=True)]
    return sum(ratios) / len(ratios)


class DefineBySpace:
    """OptunaSearch's define-by-run space: the same categoricals as `nas search` (a class, so Tune can pickle it)."""

    def __init__(self, space: Any) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        self.space.suggest(trial)


class PicklableNSGAII(optuna.samplers.NSGAIISampler):
    """NSGA-II as a user must write it for ``tune.Tuner``: the same sampler, minus its lock when pickled.

    ``tune.Tuner`` pickles its search algorithm at construction (and ``OptunaSearch.save`` with the standard
    pickle at every checkpoint); Optuna 5.1's GA samplers hold a ``threading.Lock`` and define no
    ``__getstate__``, so ``OptunaSearch(sampler=NSGAIISampler(...))`` fails with "cannot pickle
    '_thread.lock' object". Defined at module level so that the standard pickle finds it.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_thread_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def pickling_problem(sampler: Any) -> str:
    """What stops Tune from pickling the sampler ('' when nothing does)."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(sampler)
    except TypeError as exc:
        return f"{type(sampler).__name__} does not pickle ({exc})"
    return ""


def peer_main(args: argparse.Namespace) -> None:
    """Run route (b) and write peer.json into ``args.peer_out``."""
    import math
    from collections import Counter

    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from nas.data import load_dataset
    from nas.models import count_params
    from nas.models.budget import round_to_divisor
    from nas.search.settings import default_space
    from nas.space import load_target

    target = load_target(default_space(), budget=args.budget)
    space, budget = target.space, target.budget
    fidelity = _fidelity(args.sets)
    data = load_dataset("fashion-mnist")
    multiplier = width_multiplier(space, budget, args.seed, data.in_channels, data.num_classes)
    seed, threads = args.seed, args.cpus

    def trainable(config: dict[str, Any], data: Any = None) -> None:
        import torch

        from nas.evaluate import evaluate

        started = time.perf_counter()
        torch.set_num_threads(threads)
        ref = space.build(lambda key, _values: config[key])
        arch = ref.with_widths(round_to_divisor(ref.stem.width * multiplier, budget.divisor),
                               [round_to_divisor(s.width * multiplier, budget.divisor) for s in ref.stages],
                               None if ref.head.width is None else round_to_divisor(ref.head.width * multiplier,
                                                                                    budget.divisor))
        params = count_params(arch, in_channels=data.in_channels, num_classes=data.num_classes)
        result = evaluate(arch, data, fidelity, seed=seed, threads=threads)  # a diverged training raises
        metrics = result.metrics
        values = {k: float(metrics[k]) if isinstance(metrics.get(k), int | float) and math.isfinite(metrics[k])
                  else float("nan") for k in OBJECTIVES}
        tune.report({**values, "params": params, "arch_hash": arch.semantic_hash, "arch": arch.to_string(),
                     "trial_s": time.perf_counter() - started})

    population = args.population
    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    problem = pickling_problem(sampler)
    if problem:
        sampler = PicklableNSGAII(seed=seed, population_size=population)
    searcher = OptunaSearch(space=DefineBySpace(space), metric=list(OBJECTIVES), mode=["max", "min"],
                            sampler=sampler)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, data=data), {"cpu": args.cpus}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=args.trials, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(Path(args.peer_out) / "ray"), verbose=0),
    )
    grid = tuner.fit()
    rows = []
    for result in grid:
        m = result.metrics or {}
        rows.append({"error": result.error is not None, "params": m.get("params"), "arch_hash": m.get("arch_hash"),
                     "trial_s": m.get("trial_s"), **{k: m.get(k) for k in OBJECTIVES}})
    states = Counter(t.state.name for t in searcher._ot_study.trials)  # the study OptunaSearch keeps
    ray.shutdown()
    (Path(args.peer_out) / "peer.json").write_text(json.dumps({"rows": rows, "states": dict(states),
                                                               "multiplier": multiplier, "problem": problem}))


# ---- (a) nas search, and the comparison ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled"}


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    return time.perf_counter() - started, done


def _hypervolume(points: list[tuple[float, float]]) -> float:
    import numpy as np

    from nas.analysis.pareto import hypervolume

    losses = np.array([(1.0 - a, p) for a, p in points]) if points else np.zeros((0, 2))
    return hypervolume(losses, np.array([1.0, 1.0])) if len(losses) else 0.0


def _finite(*values: Any) -> bool:
    import math

    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def ours(args: argparse.Namespace, tmp: Path, *, defaults: bool = False) -> dict[str, Any]:
    """Route (a): `nas search` with the peer's sampler (NSGA-II, no pre-screen), or with its own defaults."""
    import csv

    name = "defaults" if defaults else "ours"
    sets = [x for s in args.sets for x in ("--set", s)]
    sampler = [] if defaults else ["--sampler", "nsga2", "--population", str(args.population), "--prescreen", "none"]
    wall, done = _timed([sys.executable, "-m", "nas.cli", "search", "--results-dir", str(tmp), "--run", name,
                         "--budget", args.budget, "--trials", str(args.trials), "--seed", str(args.seed),
                         *sampler, *sets, "--workers", "1", "--cpus-per-trial", str(args.cpus)])
    if done.returncode != 0:
        sys.exit(f"nas search failed ({done.returncode}):\n{done.stderr[-3000:]}")
    with open(tmp / name / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    trained = [r for r in rows if r["reused"] == "False"]
    budget = _budget(args.budget)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / name / 'study.db'}")
    states = {s.name: 0 for s in optuna.trial.TrialState}
    for t in study.trials:
        states[t.state.name] += 1
    points = [(float(r["accuracy"]), float(r["polysemanticity"])) for r in rows
              if r["status"] == "complete" and r["accuracy"] and r["polysemanticity"]]
    return {
        "route": "nas search (defaults)" if defaults else "nas search", "wall_s": wall,
        "trial_s": sum(float(r["wall_s"] or 0) for r in trained),
        "trials": len(rows), "trained": len(trained),
        "outside": sum(not budget.lower <= int(r["params"] or 0) <= budget.params for r in trained),
        "duplicates": len(trained) - len({r["arch_hash"] for r in trained}),
        "failed": sum(r["status"] != "complete" for r in rows), "running": states["RUNNING"],
        "hv": _hypervolume(points), "hv_window": _hypervolume(points),
    }


def peer(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out = tmp / "peer"
    out.mkdir()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--peer-out", str(out), "--budget", args.budget,
           "--trials", str(args.trials), "--seed", str(args.seed), "--population", str(args.population),
           "--cpus", str(args.cpus), *[x for s in args.sets for x in ("--set", s)]]
    wall, done = _timed(cmd)
    if done.returncode != 0 or not (out / "peer.json").exists():
        sys.exit(f"the OptunaSearch route failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data = json.loads((out / "peer.json").read_text())
    rows = data["rows"]
    budget = _budget(args.budget)
    ran = [r for r in rows if r["arch_hash"] is not None]
    inside = [r for r in ran if r["params"] is not None and budget.lower <= r["params"] <= budget.params]
    points = [(r["accuracy"], r["polysemanticity"]) for r in ran if _finite(r["accuracy"], r["polysemanticity"])]
    window = [(r["accuracy"], r["polysemanticity"]) for r in inside if _finite(r["accuracy"], r["polysemanticity"])]
    return {
        "route": "Ray Tune OptunaSearch", "wall_s": wall, "trial_s": sum(r["trial_s"] or 0 for r in ran),
        "trials": len(rows), "trained": len(ran), "outside": len(ran) - len(inside),
        "duplicates": len(ran) - len({r["arch_hash"] for r in ran}),
        "failed": sum(r["error"] or not _finite(r["accuracy"], r["polysemanticity"]) for r in rows),
        "running": data["states"].get("RUNNING", 0), "hv": _hypervolume(points), "hv_window": _hypervolume(window),
        "multiplier": data["multiplier"], "problem": data.get("problem", ""),
    }


def _budget(text: str) -> Any:
    from nas.search.settings import default_space
    from nas.space import load_target

    return load_target(default_space(), budget=text).budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--budget", default="500k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=4, help="NSGA-II population on both sides (default 4)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs (and torch threads) per trial on both sides")
    parser.add_argument("--set", dest="sets", action="append", default=None,
                        help=f"fidelity overrides of quick (default {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--peer-out", default=None, help=argparse.SUPPRESS)  # internal: run route (b) only
    args = parser.parse_args()
    args.sets = DEFAULT_SETS if args.sets is None else args.sets
    if args.peer_out:
        peer_main(args)
        return
    fidelity = _fidelity(args.sets)
    print(f"space search_spaces/bottleneck.yaml, budget {args.budget}, {args.trials} trials, seed {args.seed}, "
          f"NSGA-II population {args.population}, {args.cpus} CPU(s) per trial, one trial at a time; fidelity "
          f"{fidelity.name}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = [ours(args, Path(tmp)), peer(args, Path(tmp)), ours(args, Path(tmp), defaults=True)]
    print("(a) and (b) drive the same NSGA-II; the third row is `nas search` as shipped (its default sampler and "
          "zero-cost pre-screen), what a user gets by not choosing")
    print(f"(b) builds every network at the reference widths × {results[1]['multiplier']:.2f} (one multiplier, "
          "calibrated by solving the budget for one network of the space)")
    if results[1]["problem"]:
        print(f"(b) out of the box: tune.Tuner failed at construction, {results[1]['problem']}; run here with a "
              "subclass that drops the lock when pickled (bench/vs_peers.py: PicklableNSGAII)")
    print()
    head = (f"{'route':24s} {'wall':>8s} {'overhead':>9s} {'trials':>6s} {'trained':>7s} {'outside budget':>14s} "
            f"{'dup. trained':>12s} {'failed':>6s} {'RUNNING':>7s} {'hypervolume':>11s} {'HV in budget':>12s}")
    print(head)
    for r in results:
        overhead = (r["wall_s"] - r["trial_s"]) / r["wall_s"]
        print(f"{r['route']:24s} {r['wall_s']:7.1f}s {overhead:9.1%} {r['trials']:6d} {r['trained']:7d} "
              f"{r['outside']:14d} {r['duplicates']:12d} {r['failed']:6d} {r['running']:7d} {r['hv']:11.4f} "
              f"{r['hv_window']:12.4f}")


if __name__ == "__main__":
    main()
