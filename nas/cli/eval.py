"""`nas eval ARCH|FILE`: train one architecture at a fidelity and print every metric."""

from __future__ import annotations

import argparse

from nas.cli.options import (
    add_budget_options,
    add_data_options,
    add_fidelity_options,
    check_seed,
    check_threads,
    load_data,
    make_console,
    print_json,
    resolve_fidelity,
    resolve_target,
)
from nas.devices import check_device

HELP = "train one architecture at a fidelity and print every metric"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="ARCH|FILE", help="an architecture string or a one-point space file")
    add_budget_options(p)
    add_fidelity_options(p, "quick")
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from nas.sampling import Shape, fit

    check_device(args.device)
    check_threads(args.threads)
    check_seed("--seed", args.seed)
    fidelity = resolve_fidelity(args)
    target = resolve_target(args, args.target)
    written = target.single()
    data = load_data(args)
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    solved = fit(written, target.budget, shape)
    from nas.evaluate import evaluate

    result = evaluate(solved.arch, data, fidelity, seed=args.seed, device=args.device, threads=args.threads,
                      progress=not args.json)
    m = {k: v for k, v in result.metrics.items() if k != "layers"}
    m["dataset"] = data.name
    if args.json:
        print_json({**m, "layers": result.metrics["layers"]})
        return 0
    from rich.table import Table

    from nas.space import format_count

    console = make_console()
    console.print(f"[bold]{m['arch']}[/bold] (hash {m['arch_hash']}) on {data.name}, fidelity {fidelity.describe()}")
    table = Table("metric", "value", show_header=False)
    table.add_row("accuracy (validation)", f"{m['accuracy']:.4f}")
    for key in ("polysemanticity", "overlap", "outliers", "dead_fraction"):
        table.add_row(key, f"{m[key]:.4f}")
    table.add_row("params", f"{m['params']:,}")
    table.add_row("MACs", f"{format_count(m['macs'])} ({m['macs']:,})")
    table.add_row("training images/s", f"{m['train_images_per_s']:.0f}")
    table.add_row("training time", f"{m['train_s']:.1f} s")
    table.add_row("metrics time", f"{m['metrics_s']:.1f} s")
    table.add_row("wall time", f"{m['wall_s']:.1f} s")
    console.print(table)
    if m["interference_reason"]:
        console.print(f"[yellow]note:[/yellow] {m['interference_reason']}")
    return 0

