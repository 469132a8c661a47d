"""`nas compare`: search winners against random architectures and hand-designed baselines, one recipe, test split."""

from __future__ import annotations

import argparse

from nas.cli.options import (
    add_budget_options,
    add_data_options,
    add_designed_run_options,
    designed_run_values,
    finish_designed,
    make_console,
)

HELP = "retrain search winners, random architectures and baselines by one recipe and tell which group wins"
DESCRIPTION = (
    "Train groups of architectures under one recipe, several seeds each, as Ray Tune trials in one resumable run "
    "store: the top of each search run's front (--runs), random architectures of the same space (--random), the "
    "fixed baselines adapted to the input and scaled to the budget (--baselines) and given architectures (--arch). "
    "Every network is measured once on the test split; the best of each group (by validation accuracy) is also "
    "trained by a long recipe. The report gives each group's best and median with bootstrap intervals, the "
    "differences winner − baseline and winner − random with the seed noise and a verdict, the same at comparable "
    "MACs, and how well the searches' own numbers ranked these networks."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nas.compare.design import DEFAULT_FIDELITY, DEFAULT_LONG, DEFAULT_SEEDS, DEFAULT_TOP

    p.add_argument("--runs", nargs="+", default=[], metavar="RUN", help="search runs whose fronts give the winners")
    p.add_argument("--top", type=int, default=None,
                   help=f"winners per run, spread along its front as `nas retrain --top` picks (default {DEFAULT_TOP})")
    p.add_argument("--random", type=int, default=None, metavar="K",
                   help="K architectures drawn (seeded by --seed) from the runs' space at their budget")
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                   help="fixed baselines (all when no name is given), adapted to the input size and scaled to the "
                        "budget")
    p.add_argument("--arch", dest="archs", action="append", default=[], metavar="ARCH",
                   help="an architecture string or file to compare too (repeatable)")
    p.add_argument("--space", default=None, help="space --random draws from (default: the runs' space)")
    add_budget_options(p, what="default: the runs'")
    p.add_argument("--seeds", type=int, default=None, help=f"training seeds per architecture (default {DEFAULT_SEEDS})")
    p.add_argument("--seed", type=int, default=None, help="first training seed and seed of the random draw (default 0)")
    p.add_argument("--fidelity", default=None, metavar="SPEC",
                   help=f"the main recipe, PRESET or PRESET:FIELD=VALUE,… (default {DEFAULT_FIDELITY})")
    p.add_argument("--long", default=None, metavar="SPEC",
                   help=f"the long recipe for the best of each group, or none (default {DEFAULT_LONG})")
    p.add_argument("--interference", default=None, help=argparse.SUPPRESS)
    add_data_options(p, run_default=True)
    add_designed_run_options(p, "compare")


def run(args: argparse.Namespace) -> int:
    from nas.compare.design import CompareOptions, run_compare

    opts = CompareOptions(runs=list(args.runs), top=args.top, random=args.random, baselines=args.baselines,
                          archs=list(args.archs), seeds=args.seeds, fidelity=args.fidelity, long=args.long,
                          **designed_run_values(args))
    out = make_console()
    return finish_designed(out, "compare", "evaluation", *run_compare(opts, out))
