"""Proxy audit: does the search's cheap proxy rank networks like full training does?

For the retrained networks that have a search record, Kendall's tau and Spearman's rho (scipy, with
p-values) between each proxy metric and its fully trained counterpart, next to the same correlations for
two trivial predictors, parameter count and MACs. "n/a" (with the reason) below 3 networks or for a
constant input, where a rank correlation is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MIN_POINTS = 3


@dataclass(frozen=True)
class Correlation:
    """One predictor against one fully trained metric."""

    target: str  # the full-training metric, e.g. "test accuracy"
    predictor: str  # e.g. "proxy accuracy", "params", "MACs"
    n: int
    tau: float | None
    tau_p: float | None
    rho: float | None
    rho_p: float | None
    note: str  # why tau/rho are n/a; empty otherwise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cells(self) -> tuple[str, str]:
        """Formatted 'tau (p)' and 'rho (p)', or 'n/a'."""
        if self.tau is None or self.rho is None:
            return "n/a", "n/a"
        return f"{self.tau:+.3f} (p={self.tau_p:.3g})", f"{self.rho:+.3f} (p={self.rho_p:.3g})"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def correlate(x: Sequence[Any], y: Sequence[Any], *, target: str, predictor: str,
              items: str = "retrained network(s) with a search record") -> Correlation:
    """Kendall tau-b and Spearman rho of the pairs where both values are finite numbers.

    ``items`` names what the pairs are in the note given below ``MIN_POINTS`` pairs.
    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True) if _finite(a) and _finite(b)]
    n = len(pairs)
    note = ""
    if n < MIN_POINTS:
        note = f"{n} {items}; a rank correlation needs at least {MIN_POINTS}"
    elif len({a for a, _ in pairs}) == 1:
        note = f"{predictor} is the same for every network"
    elif len({b for _, b in pairs}) == 1:
        note = f"{target} is the same for every network"
    if note:
        return Correlation(target, predictor, n, None, None, None, None, note)
    from scipy import stats

    xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
    tau = stats.kendalltau(xs, ys)
    rho = stats.spearmanr(xs, ys)
    return Correlation(
        target, predictor, n, float(tau.statistic), float(tau.pvalue), float(rho.statistic), float(rho.pvalue), ""
    )


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
