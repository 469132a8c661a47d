"""Option groups shared by several verbs, the console, JSON printing, and option checks done before any work."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, NoReturn

from nas.errors import ConfigError, shown

MAX_SEED = 2**32 - 1  # numpy's and Optuna's samplers take seeds in [0, 2**32)
MAX_THREADS = 1024  # torch threads (a larger number only makes a pool that cannot run)
_QUOTED = re.compile(r"'([^'\n]{61,})'|\"([^\"\n]{61,})\"")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error raised as a ConfigError: one capped ``error:`` line and exit 2, like any other.

    (argparse's own ``error`` prints the usage and the offending values whole, and exits the process.)
    Sub-parsers are made of this class too.
    """

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            more = f" and {len(extras) - 3:,} more" if len(extras) > 3 else ""
            verb = " ".join(str(getattr(parsed, k)) for k in ("command", "space_command") if getattr(parsed, k, None))
            raise ConfigError(f"unrecognized argument{'s' if len(extras) > 1 else ''} "
                              f"{', '.join(shown(a, 60) for a in extras[:3])}{more} (see `{self.prog} "
                              f"{verb + ' ' if verb else ''}--help`)")
        return parsed

    def error(self, message: str) -> NoReturn:
        capped = _QUOTED.sub(lambda m: shown(m.group(1) or m.group(2), 60), message)
        raise ConfigError(f"{one_line(capped)} (see `{self.prog} --help`)")


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line (line breaks as spaces), at most ``limit`` characters: the last guard of an error line."""
    if "\n" in text or "\r" in text:
        text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_console(*, stderr: bool = False) -> Any:
    """A rich console; piped output (CI logs, files) gets wide lines instead of rich's 80-column default."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 200)


def print_json(data: Any) -> None:
    """Strict JSON on stdout (NaN/inf as null)."""
    from nas.atomic import jsonable

    print(json.dumps(jsonable(data), indent=2, default=str, allow_nan=False))


def add_budget_options(p: argparse.ArgumentParser, *, what: str = "overrides the file's") -> None:
    p.add_argument("--budget", help=f"parameter budget: 1.5M, 1500k, 1500000 or 1.5e6 ({what})")
    p.add_argument("--tolerance", type=float, help="budget tolerance (default: the file's, else 0.05)")
    p.add_argument("--divisor", type=int, help="channel divisor (default: the file's, else 8)")


def add_shape_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resolution", type=int, help="input size in pixels (default: the file's input, else 28)")
    p.add_argument("--in-channels", type=int, help="input channels (default: the file's input, else 1)")
    p.add_argument("--classes", type=int, help="number of classes (default: the file's input, else 10)")


def add_fidelity_options(p: argparse.ArgumentParser, default: str | None) -> None:
    shown_default = default or "quick"
    p.add_argument("--fidelity", default=default,
                   help=f"training preset: quick, standard, full (default {shown_default})")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--set", dest="fidelity_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any fidelity field, e.g. --set train_images=5000 --set lr=0.01 (repeatable)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"),
                   help="training arithmetic: fp32, bf16 autocast, or auto (bf16 where the CPU/GPU does it "
                        "natively); default: the preset's (fp32)")


def add_data_options(p: argparse.ArgumentParser, *, run_default: bool = False) -> None:
    """--dataset, --data-dir, --resolution; ``run_default``: not given means the run's own."""
    p.add_argument("--dataset", default=None if run_default else "fashion-mnist",
                   help="fashion-mnist (default" + ("; on --resume the run's" if run_default else "")
                   + "), cifar10, imagefolder, or synthetic (tests only)")
    p.add_argument("--data-dir", help="folder of the data set (default for fashion-mnist: Debian's package)")
    p.add_argument("--resolution", type=int, help="resize images to this many pixels (default: native)")


def fidelity_settings(args: argparse.Namespace) -> list[str]:
    """--set items, with --precision as one more (so it names the fidelity like any other change)."""
    settings = list(args.fidelity_set)
    if getattr(args, "precision", None):
        settings.append(f"precision={args.precision}")
    return settings


def fidelity_given(args: argparse.Namespace) -> bool:
    return args.fidelity is not None or args.epochs is not None or bool(fidelity_settings(args))


def resolve_fidelity(args: argparse.Namespace, default: str = "quick") -> Any:
    """The fidelity named by --fidelity/--epochs/--set/--precision."""
    from nas.fidelity import fidelity_from_options

    return fidelity_from_options(args.fidelity or default, fidelity_settings(args), epochs=args.epochs)


def positive(name: str, value: int | float | None, *, minimum: int | float = 1,
             maximum: int | float | None = None) -> None:
    """Refuse an option below ``minimum`` or above ``maximum``, and NaN (None: not given)."""
    if value is None:
        return
    if isinstance(value, bool) or not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {shown(value)}")
    if maximum is not None and not value <= maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}, got {shown(value)}")


def check_seed(name: str, value: int | None) -> None:
    """A seed every random generator takes: from 0 to 2**32 - 1 (numpy and Optuna refuse others)."""
    if value is not None and not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{name} must be from 0 to {MAX_SEED:,}, got {shown(value)}")


def check_threads(value: int | None) -> None:
    positive("--threads", value, maximum=MAX_THREADS)


def check_local_resources(cpus_per_trial: int | None, gpus_per_trial: float | None, *, cluster: bool = True) -> None:
    """On a local Ray, a trial cannot ask for more CPUs or GPUs than this machine has (it would wait for ever).

    ``cluster``: the verb has --address, and the message says so.
    """
    elsewhere = ", or --address to run on a cluster that has them" if cluster else ""
    cpus = os.cpu_count() or 1
    if cpus_per_trial is not None and cpus_per_trial > cpus:
        raise ConfigError(f"--cpus-per-trial {shown(cpus_per_trial)} is more than the {cpus} CPU(s) of this machine; "
                          f"use at most that{elsewhere}")
    if gpus_per_trial:
        import torch

        gpus = torch.cuda.device_count()
        if gpus_per_trial > gpus:
            raise ConfigError(f"--gpus-per-trial {gpus_per_trial:g} asks for more GPUs than the {gpus} this machine "
                              f"has; drop it{elsewhere}")


def check_path(option: str, value: object) -> None:
    """Refuse an option's value that cannot be a path (empty, a NUL byte, too long), before the file system sees it."""
    from nas.space.paths import display_path, path_problem

    if value is not None and (problem := path_problem(value)) is not None:
        raise ConfigError(f"{option} {display_path(value) if value else repr(value)}: {problem}")


def resolve_target(args: argparse.Namespace, text: str) -> Any:
    """A space file or an architecture string, with the command line's budget options."""
    from nas.space import load_target

    return load_target(text, budget=args.budget, tolerance=args.tolerance, divisor=args.divisor)


def resolve_shape(args: argparse.Namespace, defaults: dict[str, int]) -> Any:
    """The input shape: command-line values, else the space file's input."""
    from nas.sampling import Shape

    for name in ("resolution", "in_channels", "classes"):
        positive(f"--{name.replace('_', '-')}", getattr(args, name, None), minimum=2 if name == "classes" else 1)
    return Shape(
        in_channels=args.in_channels if args.in_channels is not None else defaults["channels"],
        resolution=args.resolution if args.resolution is not None else defaults["resolution"],
        num_classes=args.classes if args.classes is not None else defaults["classes"],
    )


def load_data(args: argparse.Namespace) -> Any:
    from nas.data import load_dataset

    positive("--resolution", args.resolution)
    return load_dataset(args.dataset, data_dir=args.data_dir, resolution=args.resolution)


def add_designed_run_options(p: argparse.ArgumentParser, kind: str) -> None:
    """Execution and run-folder options of `nas study` and `nas audit` (``kind``: the verb)."""
    p.add_argument("--workers", type=int, help="trials at a time (default: CPUs / cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=int,
                   help="CPUs (and torch threads) per trial (default 2, or CPUs / --workers when that is given)")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="GPUs per trial (default 0)")
    p.add_argument("--address", help="address of an existing Ray cluster (default: start Ray locally)")
    p.add_argument("--run", help=f"run name or folder (default {kind}-<timestamp>)")
    p.add_argument("--resume", action="store_true", help=f"continue the {kind} named by --run")
    p.add_argument("--report", action="store_true", help=f"only (re)write the report of the {kind} named by --run")
    p.add_argument("--results-dir", default="results", help="where run folders go (default results/)")


def designed_run_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values of the options every designed run takes (``RunOptions`` fields), as keyword arguments."""
    from pathlib import Path

    return {"space_file": args.space, "budget": args.budget, "tolerance": args.tolerance, "divisor": args.divisor,
            "seed": args.seed, "interference": args.interference, "dataset": args.dataset,
            "data_dir": args.data_dir, "resolution": args.resolution, "workers": args.workers,
            "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial, "address": args.address,
            "run": args.run, "resume": args.resume, "report_only": args.report,
            "results_dir": Path(args.results_dir)}


def finish_designed(out: Any, kind: str, what: str, store: Any, stopped: int) -> int:
    """The exit status of a designed run; when stopped, say what was kept and how to continue."""
    if stopped:
        out.print(f"[yellow]interrupted[/yellow]: {len(store.records())} {what}(s) kept; continue with\n"
                  f"  nas {kind} --resume --run {store.root}")
    return stopped
