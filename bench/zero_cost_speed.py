"""Benchmark: seconds per zero-cost proxy on 1.5M-parameter networks of the default space, against a 2 s target.

Networks: the first sampled (seeded) network of each of ``--nets`` block families, solved to the default
space's 1.5M budget for 28 x 28 x 1 inputs and 10 classes. Batch: ``zero_cost_batch`` of Fashion-MNIST when
/usr/share/datasets/fashion-mnist exists, else the synthetic set at the same shape. Every proxy is timed by
``zero_cost_scores`` (fresh model per proxy, model construction included; snip and grad_norm share one
backward pass and are charged half of it each); the median over ``--repeats`` runs is reported with its
ratio to the target. The machine is shared, so beside the wall seconds the bench prints the load average
and the process CPU seconds divided by the thread count: the wall time an uncontended run would take if
its threads ran perfectly in parallel (under load, OpenMP threads that spin at barriers inflate it too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from nas.data import load_dataset
from nas.metrics.zero_cost import ZERO_COST_NAMES, zero_cost_batch, zero_cost_scores
from nas.models import build_model
from nas.sampling import Shape, sample_solved
from nas.space import Space

TARGET_S = 2.0  # seconds per proxy at 1.5M parameters, batch 64, 2 threads
SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "bottleneck.yaml"
FASHION = Path("/usr/share/datasets/fashion-mnist")
GROUPS = (("naswot",), ("synflow",), ("snip", "grad_norm"), ("jacob_cov",))  # snip + grad_norm share a pass
SHORT = {"naswot": "naswot", "synflow": "synflow", "snip": "snip", "grad_norm": "gradnorm", "jacob_cov": "jacob"}


def pick_networks(space: Space, n: int, seed: int) -> list:
    """The first solved network of each block family, in sampling order, until ``n`` families are covered."""
    sample = sample_solved(space, 60, seed=seed, budget=space.spec.budget, shape=Shape(1, 28, 10))
    chosen: dict[str, object] = {}
    for solved in sample.solved:
        family = solved.arch.stages[0].block
        if family not in chosen:
            chosen[family] = solved
        if len(chosen) == n:
            break
    return list(chosen.values())


def describe(arch) -> str:
    s = arch.stages[0].folded()
    depths = "".join(str(stage.depth) for stage in arch.stages)
    dw = "dw" if s.depthwise else "dense"
    return f"{s.block:<10} {s.activation:<9} {s.norm:<5} e{s.expansion} {dw:<5} k{s.kernel} d{depths}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=6, help="networks, one per block family (at most 7)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed and proxy seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if (FASHION / "train-images-idx3-ubyte.gz").exists():
        data = load_dataset("fashion-mnist", data_dir=FASHION)
    else:
        data = load_dataset("synthetic", channels=1, num_classes=10, resolution=28, train_size=2000)
    x, y = zero_cost_batch(data, batch_size=args.batch, seed=args.seed)
    nets = pick_networks(Space.from_file(str(SPACE_FILE)), args.nets, args.seed)
    print(f"data {data.name}, batch {args.batch}, {args.threads} threads, {args.repeats} repeats, target {TARGET_S} s")
    print(f"load average at start: {', '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    wall: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    values: dict[str, dict[str, float]] = {}
    for solved in nets:
        arch, name = solved.arch, f"{describe(solved.arch)} {solved.params / 1e6:.2f}M"

        def factory(arch=arch) -> torch.nn.Module:
            return build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes, resolution=28)

        walls: dict[str, list[float]] = {p: [] for p in ZERO_COST_NAMES}
        cpus: dict[str, list[float]] = {p: [] for p in ZERO_COST_NAMES}
        for _ in range(args.repeats):
            for group in GROUPS:
                c0 = time.process_time()
                out = zero_cost_scores(factory, x, y, proxies=group, seed=args.seed)
                spent = (time.process_time() - c0) / args.threads / len(group)
                for p in group:
                    walls[p].append(out[f"zc_{p}_s"])
                    cpus[p].append(spent)
                    values.setdefault(name, {})[p] = out[f"zc_{p}"]
        wall[name] = {p: statistics.median(v) for p, v in walls.items()}
        cpu[name] = {p: statistics.median(v) for p, v in cpus.items()}
        print(f"  timed {name}", file=sys.stderr, flush=True)

    head = f"{'network':<50}" + "".join(f"{SHORT[p]:>10}" for p in ZERO_COST_NAMES)
    worst = {}
    for title, table in (("wall seconds per proxy (median)", wall), ("CPU seconds / threads per proxy", cpu)):
        print(f"\n{title}\n{head}{'total':>8}{'worst/2s':>10}")
        for name, row in table.items():
            cells = "".join(f"{row[p]:>10.2f}" for p in ZERO_COST_NAMES)
            print(f"{name:<50}{cells}{sum(row.values()):>8.2f}{max(row.values()) / TARGET_S:>10.2f}")
        worst[title] = max(max(row.values()) for row in table.values()) / TARGET_S
    print(f"\nscores\n{'network':<50}" + "".join(f"{SHORT[p]:>11}" for p in ZERO_COST_NAMES))
    for name, row in values.items():
        print(f"{name:<50}" + "".join(f"{row[p]:>11.4g}" for p in ZERO_COST_NAMES))
    print(f"\nload average at end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for title, ratio in worst.items():
        verdict = "meets" if ratio <= 1.0 else "MISSES"
        print(f"slowest proxy / target by {title.split(' per')[0]}: {ratio:.2f} ({verdict} the {TARGET_S} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
