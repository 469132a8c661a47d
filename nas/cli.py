"""`nas` command line: argument parsing and printing only; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nas.errors import NASError

Handler = Callable[[argparse.Namespace], int]


def _console() -> Any:
    from rich.console import Console

    # Piped output (CI logs, files) gets wide lines instead of rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _print_json(data: Any) -> None:
    from nas.atomic import jsonable

    print(json.dumps(jsonable(data), indent=2, default=str, allow_nan=False))


# ---- shared option groups -----------------------------------------------------------


def _add_budget_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", help="parameter budget: 1.5M, 1500k, 1500000 or 1.5e6 (overrides the file's)")
    p.add_argument("--tolerance", type=float, help="budget tolerance (default: the file's, else 0.05)")
    p.add_argument("--divisor", type=int, help="channel divisor (default: the file's, else 8)")


def _add_shape_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resolution", type=int, help="input size in pixels (default: the file's input, else 28)")
    p.add_argument("--in-channels", type=int, help="input channels (default: the file's input, else 1)")
    p.add_argument("--classes", type=int, help="number of classes (default: the file's input, else 10)")


def _target(args: argparse.Namespace, text: str) -> Any:
    from nas.space import load_target

    return load_target(text, budget=args.budget, tolerance=args.tolerance, divisor=args.divisor)


def _shape(args: argparse.Namespace, defaults: dict[str, int]) -> Any:
    from nas.errors import ConfigError
    from nas.sampling import Shape

    shape = Shape(
        in_channels=args.in_channels or defaults["channels"],
        resolution=args.resolution or defaults["resolution"],
        num_classes=args.classes or defaults["classes"],
    )
    if min(shape.in_channels, shape.resolution, shape.num_classes) < 1 or shape.num_classes < 2:
        raise ConfigError("--resolution and --in-channels must be positive and --classes at least 2")
    return shape


# ---- nas space ----------------------------------------------------------------------


def cmd_space_validate(args: argparse.Namespace) -> int:
    from nas.space import Space

    for path in args.files:
        space = Space.from_file(path)
        size = space.size()
        print(f"{path}: ok — space {space.name!r}, {size:,} architecture{'s' if size != 1 else ''}")
    return 0


def cmd_space_count(args: argparse.Namespace) -> int:
    from nas.space import Space

    space = Space.from_file(args.file)
    if args.json:
        _print_json({"name": space.name, "size": space.size()})
    else:
        print(f"{space.size():,}")
    return 0


def cmd_space_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    from nas.space import Space

    space = Space.from_file(args.file)
    info = space.describe()
    if args.json:
        _print_json(info)
        return 0
    console = _console()
    console.print(f"[bold]{space.name}[/bold] ({args.file}) — {info['size']:,} distinct architectures")
    if space.spec.description:
        console.print(space.spec.description)
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
    from nas.errors import SpaceError
    from nas.sampling import sample_solved

    target = _target(args, args.file)
    space = target.space
    if space is None:
        raise SpaceError(f"{args.file!r} is not a space file")
    shape = _shape(args, target.input)
    sample = sample_solved(space, args.n, seed=args.seed, budget=target.budget, shape=shape)
    solved = sample.solved
    if args.check:
        _forward_check(solved, shape)
    rows = [{"params": s.params, "hash": s.arch.semantic_hash, "arch": s.arch.to_string()} for s in solved]
    if args.json:
        _print_json(rows)
        return 0
    console = _console()
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


# ---- nas describe -------------------------------------------------------------------


def cmd_describe(args: argparse.Namespace) -> int:
    from nas.complexity import measure
    from nas.sampling import fit
    from nas.space import format_count

    target = _target(args, args.target)
    shape = _shape(args, target.input)
    written = target.single()
    solved = fit(written, target.budget, shape)
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
        _print_json(info)
        return 0
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{info['arch']}[/bold]  (hash {info['hash']})")
    if adapted != solved.arch:
        console.print(f"input {shape.resolution} px ≤ 64: stem downsampling dropped → {info['built_as']}")
    table = Table("stage", "block", "depth", "stride", "width", "e", "k", "activation", "dw", "norm", "params", "MACs")
    for stage, row in zip(adapted.stages, report.per_stage, strict=True):
        table.add_row(
            str(row["stage"]), stage.block, str(stage.depth), str(stage.stride), str(stage.width),
            str(stage.expansion), str(stage.kernel), stage.activation, "yes" if stage.depthwise else "no",
            stage.norm, f"{row['params']:,}", format_count(row["macs"]),
        )
    console.print(table)
    console.print(
        f"input {shape.in_channels}×{shape.resolution}×{shape.resolution}, {shape.num_classes} classes | "
        f"params [bold]{report.params:,}[/bold] | MACs [bold]{format_count(report.macs)}[/bold] "
        f"({report.macs:,}) | activations {report.activation_bytes / 2**20:.2f} MiB at batch 1"
        + ("" if report.latency_ms is None else f" | CPU latency {report.latency_ms:.2f} ms (batch 1, median)")
    )
    if target.budget is not None:
        console.print(f"budget {target.budget.describe()}: window [{target.budget.lower:,}, {target.budget.params:,}]")
    return 0


# ---- nas eval -----------------------------------------------------------------------


def _add_fidelity_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--fidelity", default=default, help=f"training preset: quick, standard, full (default {default})")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--set", dest="fidelity_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any fidelity field, e.g. --set train_images=5000 --set lr=0.01 (repeatable)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (default), cifar10, imagefolder, or synthetic (tests only)")
    p.add_argument("--data-dir", help="folder of the data set (default for fashion-mnist: Debian's package)")
    p.add_argument("--resolution", type=int, help="resize images to this many pixels (default: native)")


def resolve_fidelity(args: argparse.Namespace) -> Any:
    """The preset with --epochs/--set applied; a changed preset gets a name that says how."""
    import yaml

    from nas.errors import ConfigError
    from nas.fidelity import get_fidelity

    overrides: dict[str, Any] = {}
    for item in args.fidelity_set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = _scalar(yaml.safe_load(value))
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    preset = get_fidelity(args.fidelity)
    if "epochs" in overrides and "warmup_epochs" not in overrides:  # a shorter run gets a shorter warm-up
        overrides["warmup_epochs"] = preset.warmup_epochs * overrides["epochs"] / preset.epochs
    base = get_fidelity(args.fidelity, **overrides)
    changed = {k: v for k, v in overrides.items() if getattr(preset, k) != v}
    if not changed:
        return base
    label = args.fidelity + "+" + ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
    import dataclasses

    return dataclasses.replace(base, name=label)


def _scalar(value: Any) -> Any:
    """YAML reads 1e12 as a string (YAML 1.1 wants 1.0e12); take it as the number a user meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_data(args: argparse.Namespace) -> Any:
    from nas.data import load_dataset

    return load_dataset(args.dataset, data_dir=args.data_dir, resolution=args.resolution)


def cmd_eval(args: argparse.Namespace) -> int:
    from nas.evaluate import evaluate
    from nas.sampling import Shape, fit

    fidelity = resolve_fidelity(args)
    target = _target(args, args.target)
    written = target.single()
    data = load_data(args)
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    solved = fit(written, target.budget, shape)
    result = evaluate(solved.arch, data, fidelity, seed=args.seed, device=args.device, threads=args.threads,
                      progress=not args.json)
    m = {k: v for k, v in result.metrics.items() if k != "layers"}
    m["dataset"] = data.name
    if args.json:
        _print_json({**m, "layers": result.metrics["layers"]})
        return 0
    from rich.table import Table

    from nas.space import format_count

    console = _console()
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


# ---- nas search ---------------------------------------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.search.runner import SearchOptions, run_search

    fidelity = None
    if args.fidelity is not None or args.epochs is not None or args.fidelity_set:
        if args.resume:
            from nas.errors import ConfigError

            raise ConfigError("--resume continues a run with its own fidelity; drop --fidelity/--epochs/--set")
        args.fidelity = args.fidelity or "quick"
        fidelity = resolve_fidelity(args)
    opts = SearchOptions(
        space_file=args.space, budget=args.budget, tolerance=args.tolerance, divisor=args.divisor,
        trials=args.trials, objectives=args.objectives, interference=args.interference, sampler=args.sampler,
        population=args.population, fidelity=fidelity, dataset=args.dataset, data_dir=args.data_dir,
        resolution=args.resolution, workers=args.workers, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, address=args.address, storage=args.storage, run=args.run,
        resume=args.resume, seed=args.seed, scheduler=args.scheduler, results_dir=Path(args.results_dir),
    )
    console = _console()
    outcome = run_search(opts, console)
    _print_front(console, outcome)
    if outcome.interrupted:
        console.print(f"[yellow]interrupted[/yellow]: {len(outcome.records)} trial(s) kept; continue with\n"
                      f"  nas search --resume --run {outcome.run_dir}")
        return 130
    console.print(f"\nrun folder: {outcome.run_dir}\nnext:\n  nas analyze {outcome.run_dir}\n"
                  f"  nas retrain {outcome.run_dir} --top 3")
    return 0


def _print_front(console: Any, outcome: Any) -> None:
    from rich.table import Table

    done = len(outcome.records)
    failed = sum(r["status"] == "failed" for r in outcome.records)
    pruned = sum(r["status"] == "pruned" for r in outcome.records)
    console.print(f"\n{done} trial(s), {failed} failed, {pruned} pruned, wall {outcome.wall_s / 60:.1f} min")
    if not outcome.front:
        console.print("no complete trial: the Pareto front is empty")
        return
    names = [o["name"] for o in outcome.objectives]
    table = Table("trial", *names, "params", "MACs", title="Pareto front")
    table.add_column("architecture", overflow="fold")
    from nas.space import format_count

    for r in outcome.front:
        table.add_row(str(r["trial_id"]), *(f"{r[n]:.4f}" if isinstance(r[n], float) else str(r[n]) for n in names),
                      f"{r['params']:,}", format_count(r["macs"] or 0), r["arch"])
    console.print(table)


# ---- nas analyze --------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.analysis import analyze_runs

    objectives = None if args.objectives is None else [o for o in args.objectives.split(",") if o.strip()]
    analyze_runs([Path(r) for r in args.runs], objectives=objectives, fidelity=args.fidelity, fmt=args.format,
                 out_dir=None if args.out is None else Path(args.out), console=_console(), plots=not args.no_plots)
    return 0


# ---- parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas",
        description="Neural-architecture search for tiny vision networks: bottleneck blocks under a "
        "parameter budget, scored on accuracy and feature interference.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    space = sub.add_parser("space", help="inspect a search-space file").add_subparsers(
        dest="space_command", metavar="ACTION", required=True
    )
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
    _add_budget_options(p)
    _add_shape_options(p)
    p.set_defaults(handler=cmd_space_sample)

    p = sub.add_parser("describe", help="params, MACs, memory and latency of one architecture, per stage")
    p.add_argument("target", metavar="ARCH|FILE", help="an architecture string or a one-point space file")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    p.add_argument("--json", action="store_true")
    _add_budget_options(p)
    _add_shape_options(p)
    p.set_defaults(handler=cmd_describe)

    p = sub.add_parser("eval", help="train one architecture at a fidelity and print every metric")
    p.add_argument("target", metavar="ARCH|FILE", help="an architecture string or a one-point space file")
    _add_budget_options(p)
    _add_fidelity_options(p, "quick")
    _add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_eval)

    from nas.search.objectives import INTERFERENCE_METRICS, SAMPLERS

    p = sub.add_parser("search", help="multi-objective architecture search on Ray Tune with Optuna")
    p.add_argument("--space", default=_default_space(),
                   help="search-space file (default: search_spaces/bottleneck.yaml)")
    _add_budget_options(p)
    p.add_argument("--trials", type=int, help="number of trials (default 12; on --resume: the run's own)")
    p.add_argument("--objectives", default="accuracy,interference",
                   help="comma-separated: accuracy, interference (= --interference), params, macs, or a metric name")
    p.add_argument("--interference", default="polysemanticity", choices=INTERFERENCE_METRICS,
                   help="which interference metric is the objective (default polysemanticity)")
    p.add_argument("--sampler", default="nsga2", help=f"Optuna sampler: {', '.join(SAMPLERS)} (default nsga2)")
    p.add_argument("--population", type=int, help="NSGA-II population (default: trials/4, between 4 and 50)")
    p.add_argument("--fidelity", default=None, help="training preset: quick (default), standard, full")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--set", dest="fidelity_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any fidelity field, e.g. --set train_images=5000 (repeatable)")
    _add_data_options(p)
    p.add_argument("--workers", type=int, help="trials at a time (default: CPUs / cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=int, help="CPUs (and torch threads) per trial (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial (default 0)")
    p.add_argument("--address", help="address of an existing Ray cluster (default: start Ray locally)")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://… (default: results/<run>/study.db)")
    p.add_argument("--run", help="run name or folder (default: <space>-<budget>-<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue the run named by --run")
    p.add_argument("--scheduler", choices=["asha"], help="stop weak trials early (ASHA on accuracy per epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", default="results", help="where run folders go (default results/)")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("analyze", help="Pareto front, hypervolume, design-choice statistics, plots and a report")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s), e.g. results/<run>")
    p.add_argument("--objectives", help="comma-separated (default: the run's), e.g. accuracy,interference")
    p.add_argument("--fidelity", help="analyse only this fidelity (default: each fidelity on its own)")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"], help="terminal output")
    p.add_argument("--out", help="report folder (default: RUN/report)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(handler=cmd_analyze)

    from nas.retrain.cli import add_parser as add_retrain_parser

    add_retrain_parser(sub)

    return parser


def _default_space() -> str:
    from pathlib import Path

    local = Path("search_spaces/bottleneck.yaml")
    return str(local) if local.is_file() else str(Path(__file__).resolve().parents[1] / local)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
