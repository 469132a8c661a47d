"""`nas describe ARCH|FILE`: params, MACs, activation memory and latency of one architecture, per stage."""

from __future__ import annotations

import argparse

from nas.cli.options import (
    add_budget_options,
    add_shape_options,
    make_console,
    print_json,
    resolve_shape,
    resolve_target,
)

HELP = "params, MACs, memory and latency of one architecture, per stage"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="ARCH|FILE", help="an architecture string or a one-point space file")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    p.add_argument("--json", action="store_true")
    add_budget_options(p)
    add_shape_options(p)


def run(args: argparse.Namespace) -> int:
    from nas.sampling import fit
    from nas.space import format_count

    target = resolve_target(args, args.target)
    shape = resolve_shape(args, target.input)
    written = target.single()
    solved = fit(written, target.budget, shape)
    from nas.complexity import measure  # torch: imported once the input is known to be good
    adapted = solved.arch.adapted_to_input(shape.resolution)
    report = measure(
        solved.arch,
        in_channels=shape.in_channels,
        num_classes=shape.num_classes,
        resolution=shape.resolution,
        latency=not args.no_latency,
    )
    info = {
        "arch": solved.arch.to_string(),
        "built_as": adapted.to_string(),
        "hash": solved.arch.semantic_hash,
        "input": {"channels": shape.in_channels, "resolution": shape.resolution, "classes": shape.num_classes},
        "budget": None if target.budget is None else target.budget.params,
        **report.to_dict(),
    }
    if args.json:
        print_json(info)
        return 0
    from rich.table import Table

    console = make_console()
    console.print(f"[bold]{info['arch']}[/bold]  (hash {info['hash']})")
    if adapted != solved.arch:
        console.print(f"input {shape.resolution} px ≤ 64: stem downsampling dropped → {info['built_as']}")
    table = Table(
        "stage", "block", "depth", "stride", "width", "e", "k", "activation", "dw", "norm", "SE", "params", "MACs"
    )
    for stage, row in zip(adapted.stages, report.per_stage, strict=True):
        se = f"{stage.se:g} of {stage.se_of}, {stage.se_activation}, {stage.se_gate}" if stage.se else "-"
        table.add_row(
            str(row["stage"]), stage.block, str(stage.depth), str(stage.stride), str(stage.width),
            str(stage.expansion), str(stage.kernel), stage.activation, "yes" if stage.depthwise else "no",
            stage.norm, se, f"{row['params']:,}", format_count(row["macs"]),
        )
    console.print(table)
    console.print(
        f"input {shape.in_channels}×{shape.resolution}×{shape.resolution}, {shape.num_classes} classes | "
        f"params [bold]{report.params:,}[/bold] | MACs [bold]{format_count(report.macs)}[/bold] "
        f"({report.macs:,}) | activations {report.activation_bytes / 2**20:.2f} MiB at batch 1 "
        f"(peak {report.peak_activation_bytes / 2**20:.2f} MiB)"
        + ("" if report.latency_ms is None else f" | CPU latency {report.latency_ms:.2f} ms (batch 1, median)")
    )
    if target.budget is not None:
        console.print(f"budget {target.budget.describe()}: window [{target.budget.lower:,}, {target.budget.params:,}]")
    return 0

