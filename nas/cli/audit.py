"""`nas audit [PANEL]`: how well each cheap signal ranks a panel of architectures against a strong reference."""

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

HELP = "rank agreement of cheap signals (fidelities, zero-cost proxies, params, MACs) with a reference fidelity"
DESCRIPTION = (
    "Train one panel of architectures at a reference fidelity and at cheaper ones, score them with the zero-cost "
    "proxies, and report how well each cheap signal (each fidelity, each proxy, params, MACs) ranks them against "
    "the reference: Kendall τ and Spearman ρ with 95% bootstrap intervals, top-25% overlap, recovery of the "
    "reference's Pareto set, and CPU-seconds per evaluation. Resumable (--resume) like a search."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nas.objectives import INTERFERENCE_METRICS
    from nas.search.audit import DEFAULT_PANEL, DEFAULT_REFERENCE, DEFAULT_SIGNALS

    p.add_argument("panel", nargs="?", metavar="PANEL",
                   help="a file of architecture strings (one per line) or a run folder (its complete trials); "
                        "default: a stratified sample of --space")
    p.add_argument("--space", default=None, help="space to draw the panel from (default search_spaces/bottleneck.yaml)")
    add_budget_options(p)
    p.add_argument("-n", type=int, default=None, help=f"panel size (default {DEFAULT_PANEL})")
    p.add_argument("--seed", type=int, default=None, help="seed of the panel draw and of training (default 0)")
    p.add_argument("--strata", help="choices every level of which the panel covers (default block,activation,norm)")
    p.add_argument("--fidelity", dest="fidelities", action="append", metavar="SPEC",
                   help="a cheaper fidelity to audit, PRESET or PRESET:FIELD=VALUE,… (repeatable; default: "
                        + "; ".join(DEFAULT_SIGNALS) + ")")
    p.add_argument("--reference", metavar="SPEC", help=f"the reference fidelity (default {DEFAULT_REFERENCE})")
    p.add_argument("--reuse", action="append", default=[], metavar="RUN",
                   help="a run whose evaluations at the same fidelity and seed are reused by architecture hash")
    p.add_argument("--interference", choices=INTERFERENCE_METRICS, help="interference metric audited "
                   "(default polysemanticity)")
    add_data_options(p, run_default=True)
    add_designed_run_options(p, "audit")


def run(args: argparse.Namespace) -> int:
    from nas.search.audit import AuditOptions, run_audit

    opts = AuditOptions(panel=args.panel, n=args.n, strata=args.strata, fidelities=args.fidelities,
                        reference=args.reference, reuse=list(args.reuse), **designed_run_values(args))
    out = make_console()
    return finish_designed(out, "audit", "evaluation", *run_audit(opts, out))
