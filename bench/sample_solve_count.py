"""Benchmark: sample → budget-solve → count for N architectures of the default space, against 20 ms each."""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

from nas.errors import BudgetError
from nas.sampling import Shape, fit
from nas.space import Budget, Space

TARGET_MS = 20.0
SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "bottleneck.yaml"
FASHION_MNIST = Shape(in_channels=1, resolution=28, num_classes=10)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by linear interpolation between order statistics."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every architecture is in the window and the median meets the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="architectures to sample (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default=str(SPACE_FILE), help="space file (default search_spaces/bottleneck.yaml)")
    parser.add_argument("--budget", type=int, default=1_500_000)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    start = time.perf_counter()
    import nas.models  # noqa: F401  (fit imports torch lazily; keep that one-off cost out of the per-arch times)

    import_s = time.perf_counter() - start
    space = Space.from_file(args.space)
    budget = Budget(params=args.budget, tolerance=0.05, divisor=8)
    rng = random.Random(args.seed)
    times_ms: list[float] = []
    params: list[int] = []
    hashes: set[str] = set()
    unsolved: list[str] = []  # the solver raised BudgetError (timed all the same)
    for _ in range(args.n):
        start = time.perf_counter()
        arch = space.sample(rng)
        try:
            solved = fit(arch, budget, FASHION_MNIST)
        except BudgetError as exc:
            times_ms.append((time.perf_counter() - start) * 1e3)
            found = re.search(r" is ([\d,]+ \([\d.]+% of it\))", str(exc))
            unsolved.append(f"{arch.to_string()}: " + (f"best {found.group(1)}" if found else str(exc)))
            hashes.add(arch.semantic_hash)
            continue
        times_ms.append((time.perf_counter() - start) * 1e3)
        params.append(solved.params)
        hashes.add(solved.arch.semantic_hash)

    median = statistics.median(times_ms)
    inside = sum(budget.lower <= p <= budget.params for p in params)
    ok = inside == args.n and median < TARGET_MS
    print(f"sample → solve → count, {args.n:,} architectures of {space.name!r} (seed {args.seed}, "
          f"{len(hashes):,} distinct), budget {budget.params:,} (tolerance {budget.tolerance:g}, "
          f"divisor {budget.divisor}), input 1x28x28, 10 classes")
    print(f"per architecture: median {median:.2f} ms | p95 {percentile(times_ms, 0.95):.2f} ms | "
          f"max {max(times_ms):.2f} ms | total {sum(times_ms) / 1e3:.2f} s "
          f"(one-off import of nas.models/torch before timing: {import_s:.2f} s)")
    print(f"target {TARGET_MS:.0f} ms per architecture: median / target = {median / TARGET_MS:.3f} "
          f"({'met' if median < TARGET_MS else 'MISSED'})")
    spread = f" (params {min(params):,} … {max(params):,})" if params else ""
    print(f"in the budget window [{budget.lower:,}, {budget.params:,}]: {inside:,} / {args.n:,}{spread}"
          + ("" if inside == args.n else f"  ← NOT ALL: {len(unsolved)} raised BudgetError, "
                                        f"{args.n - inside - len(unsolved)} solved outside the window"))
    for line in unsolved[:10]:
        print(f"  unsolved: {line}")
    if len(unsolved) > 10:
        print(f"  … and {len(unsolved) - 10} more")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
