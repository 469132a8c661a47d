"""Proxy audit: does the search's cheap proxy rank networks like full training does?

For the retrained networks that have a search record, Kendall's tau and Spearman's rho (scipy, with
p-values) between each proxy metric and its fully trained counterpart, next to the same correlations for
two trivial predictors, parameter count and MACs. "n/a" (with the reason) below 3 networks or for a
constant input, where a rank correlation is undefined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.analysis.stats import Correlation, correlate


def proxy_audit(rows: Sequence[dict[str, Any]], interference: Sequence[str]) -> list[Correlation]:
    """Correlations for the rows with a search record: proxy vs. full, and params/MACs as baseline predictors.

    ``rows`` are retrain.csv rows (``test_accuracy``, ``proxy_accuracy``, ``<metric>``, ``proxy_<metric>``,
    ``params``, ``macs``); ``interference`` names the interference metrics to audit.
    """
    audited = [r for r in rows if r.get("kind") == "trial"]
    out = []
    targets = [("test accuracy", "test_accuracy", "proxy_accuracy", "proxy accuracy")]
    targets += [(m, m, f"proxy_{m}", f"proxy {m}") for m in interference]
    for label, full, proxy, proxy_label in targets:
        y = [r.get(full) for r in audited]
        out.append(correlate([r.get(proxy) for r in audited], y, target=label, predictor=proxy_label))
        out.append(correlate([r.get("params") for r in audited], y, target=label, predictor="params"))
        out.append(correlate([r.get("macs") for r in audited], y, target=label, predictor="MACs"))
    return out


def audit_markdown(correlations: Sequence[Correlation]) -> str:
    """The audit as a Markdown table, with the reasons for any n/a underneath."""
    lines = ["| full-training metric | predictor | n | Kendall τ (p) | Spearman ρ (p) |", "|---|---|---|---|---|"]
    notes = []
    for c in correlations:
        tau, rho = c.cells()
        lines.append(f"| {c.target} | {c.predictor} | {c.n} | {tau} | {rho} |")
        if c.note:
            notes.append(f"- n/a: {c.note}.")
    notes = list(dict.fromkeys(notes))
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"
