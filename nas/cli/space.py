"""`nas space validate|show|count|sample FILE`: inspect a search-space file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from nas.cli.options import (
    add_budget_options,
    add_shape_options,
    check_seed,
    make_console,
    positive,
    print_json,
    resolve_shape,
    resolve_target,
)

HELP = "inspect a search-space file"
MAX_SAMPLES = 100_000  # distinct draws one `nas space sample` prints


def add_arguments(parser: argparse.ArgumentParser) -> None:
    space = parser.add_subparsers(dest="space_command", metavar="ACTION", required=True)
    p = space.add_parser("validate", help="check one or more space files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=cmd_space_validate)
    p = space.add_parser("show", help="print a space's stages, choices and size")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_space_show)
    p = space.add_parser("count", help="print the exact number of distinct architectures")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_space_count)
    p = space.add_parser("sample", help="draw distinct architectures, fitted to the budget")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="also build each one and run a forward pass")
    p.add_argument("--json", action="store_true")
    add_budget_options(p)
    add_shape_options(p)
    p.set_defaults(handler=cmd_space_sample)


def run(args: argparse.Namespace) -> int:
    return int(args.handler(args))


def load_space(text: str) -> Any:
    """The space file ``text``; an architecture string given instead is named as one (not "file does not exist")."""
    from nas.errors import SpaceError, shown
    from nas.space import Architecture, Space
    from nas.space.paths import path_kind

    if path_kind(text) is None and not text.rstrip().endswith((".yaml", ".yml")):
        try:
            Architecture.parse(text)
        except SpaceError:
            pass
        else:
            raise SpaceError(f"{shown(text, 60)} is an architecture string, not a space file; `nas describe` shows "
                             "one architecture")
    return Space.from_file(text)


def cmd_space_validate(args: argparse.Namespace) -> int:
    for path in args.files:
        space = load_space(path)
        size = space.size()
        print(f"{path}: ok — space {space.name!r}, {size:,} architecture{'s' if size != 1 else ''}")
    return 0


def cmd_space_count(args: argparse.Namespace) -> int:
    space = load_space(args.file)
    if args.json:
        print_json({"name": space.name, "size": space.size()})
    else:
        print(f"{space.size():,}")
    return 0


def cmd_space_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    space = load_space(args.file)
    info = space.describe()
    if args.json:
        print_json(info)
        return 0
    console = make_console()
    console.print(f"[bold]{space.name}[/bold] ({args.file}) — {info['size']:,} distinct architectures")
    if space.spec.description:
        console.print(space.spec.description_excerpt(), markup=False)
    table = Table("stage", "stride", "ref. width", "depth", "per-stage choices")
    for i, st in enumerate(info["stages"]):
        own = {k: v for k, v in st.items() if k not in ("stride", "width", "depth")}
        table.add_row(str(i), str(st["stride"]), str(st["width"]), str(st["depth"]), _fmt_choices(own))
    console.print(table)
    if info["network_choices"]:
        console.print("once per network: " + _fmt_choices(info["network_choices"]))
    budget = space.spec.budget
    console.print("budget: " + (budget.describe() if budget else "none (widths are absolute)"))
    return 0


def _fmt_choices(choices: dict[str, list[Any]]) -> str:
    return "; ".join(f"{k}: {'|'.join(str(v).lower() for v in vals)}" for k, vals in choices.items()) or "—"


def cmd_space_sample(args: argparse.Namespace) -> int:
    from nas.errors import SpaceError, shown
    from nas.sampling import sample_solved

    positive("-n", args.n, maximum=MAX_SAMPLES)
    check_seed("--seed", args.seed)
    target = resolve_target(args, args.file)
    space = target.space
    if space is None:
        raise SpaceError(f"{shown(args.file)} is not a space file: it reads as one architecture; `nas space sample` "
                         "draws from a space file (YAML)")
    shape = resolve_shape(args, target.input)
    sample = sample_solved(space, args.n, seed=args.seed, budget=target.budget, shape=shape)
    solved = sample.solved
    if args.check:
        _forward_check(solved, shape)
    rows = [{"params": s.params, "hash": s.arch.semantic_hash, "arch": s.arch.to_string()} for s in solved]
    if args.json:
        print_json(rows)
        return 0
    console = make_console()
    for arch in sample.infeasible:
        console.print(f"skipped (no widths meet the budget window): {arch}", soft_wrap=True)
    from rich.table import Table

    from nas.space import format_count

    table = Table("#", "params", "hash", title=_sample_title(space.name, target.budget, args))
    table.add_column("architecture", overflow="fold")
    for i, r in enumerate(rows):
        table.add_row(str(i), f"{r['params']:,}", r["hash"], r["arch"])
    console.print(table)
    if target.budget is not None:
        counts = [r["params"] for r in rows]
        console.print(
            f"params {format_count(min(counts))} … {format_count(max(counts))}; "
            f"budget window [{target.budget.lower:,}, {target.budget.params:,}]"
        )
    return 0


def _sample_title(name: str, budget: Any, args: argparse.Namespace) -> str:
    return f"{args.n} architectures of {name!r}, seed {args.seed}" + (f", budget {budget.params:,}" if budget else "")


def _forward_check(solved: Sequence[Any], shape: Any) -> None:
    import torch

    from nas.models import build_model

    for s in solved:
        model = build_model(s.arch, in_channels=shape.in_channels, num_classes=shape.num_classes,
                            resolution=shape.resolution).eval()
        with torch.inference_mode():
            out = model(torch.randn(2, shape.in_channels, shape.resolution, shape.resolution))
        if tuple(out.shape) != (2, shape.num_classes):
            raise RuntimeError(f"{s.arch} produced logits of shape {tuple(out.shape)}")

