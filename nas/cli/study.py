"""`nas study`: a designed (full factorial) experiment over choices of a space, with seeds per cell."""

from __future__ import annotations

import argparse

from nas.cli.options import (
    add_budget_options,
    add_data_options,
    add_designed_run_options,
    add_fidelity_options,
    designed_run_values,
    finish_designed,
    make_console,
)

HELP = "factorial experiment (default block x activation x norm) with seeds per cell, and its two-way analysis"
DESCRIPTION = (
    "Train every combination of the factors (default: block family x activation x norm on the default space, "
    "98 cells) at one budget and fidelity, --repeats seeds per cell, every other choice held at a stated value "
    "(depth 2, kernel 3, each family's canonical expansion and depthwise setting; --fix changes them). Then "
    "report heatmaps, per-level medians with 95% intervals, a two-way model of accuracy and interference, the "
    "seed noise, and the paper's claims with verdicts. Resumable (--resume) like a search."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nas.objectives import INTERFERENCE_METRICS
    from nas.search.study import DEFAULT_REPEATS

    p.add_argument("--space", default=None, help="space file (default search_spaces/bottleneck.yaml)")
    add_budget_options(p)
    p.add_argument("--factors", help="comma-separated choices to cross (default block,activation,norm)")
    p.add_argument("--fix", action="append", default=[], metavar="CHOICE=VALUE",
                   help="hold a choice at a value, e.g. --fix kernel=5 --fix depth=1 (repeatable; default depth 2, "
                        "kernel 3, canonical expansion/depthwise per family)")
    p.add_argument("--repeats", type=int, help=f"seeds per cell (default {DEFAULT_REPEATS})")
    add_fidelity_options(p, None)
    p.add_argument("--interference", choices=INTERFERENCE_METRICS,
                   help="interference metric analysed (default polysemanticity)")
    p.add_argument("--seed", type=int, default=None, help="first seed; replicate r uses seed + r (default 0)")
    add_data_options(p, run_default=True)
    add_designed_run_options(p, "study")


def run(args: argparse.Namespace) -> int:
    from nas.cli.options import fidelity_given, resolve_fidelity
    from nas.search.study import StudyOptions, run_study

    opts = StudyOptions(factors=args.factors, fix=list(args.fix), repeats=args.repeats,
                        fidelity=resolve_fidelity(args) if fidelity_given(args) else None,
                        **designed_run_values(args))
    out = make_console()
    return finish_designed(out, "study", "trial", *run_study(opts, out))
