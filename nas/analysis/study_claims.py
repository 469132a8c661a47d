"""The paper's five claims (Hollard et al. 2025), each stated, tested on a study's cells, and given a verdict.

Claims (a)–(d) are planned linear contrasts of cell means, t-tested in the cell-means model (error: the
pooled within-cell variance, i.e. the seed noise) by :func:`nas.analysis.study_models.cell_contrast`.
Claim (e) is Spearman's ρ between the cells' median interference and median accuracy (one point per network,
so replicates do not count twice). Cells are compared only where the comparison is matched: a pair or
stratum with an empty cell (infeasible, or every replicate failed) is left out of that contrast.

**Verdict rule.** The five p-values are Holm-adjusted together (family-wise α = 0.05). A claim is
*supported* when its estimate has the claimed sign and the adjusted p < 0.05, *contradicted* when the
estimate has the opposite sign and the adjusted p < 0.05, and *not supported* otherwise (including when the
study cannot test it). As a robustness check each contrast is also computed on the outcome's ranks (over
all analysed trials); the verdict stays on the values, and a disagreement is noted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.study_models import ALPHA, ContrastResult, cell_contrast
from nas.space.vocabulary import ACTIVATIONS

if TYPE_CHECKING:
    import pandas as pd

SUPPORTED, NOT_SUPPORTED, CONTRADICTED = "supported", "not supported", "contradicted"
BOTTLENECK_FAMILIES = ("bottleneck", "inverted")
ALWAYS_LAYERNORM = ("convnext",)
Weights = dict[int, float]


@dataclass
class Claim:
    """One claim: what it says, how it is tested, the number behind it and the verdict."""

    key: str
    statement: str
    outcome: str
    test: str
    sign: int  # +1: the claim says the estimate is positive; -1: negative
    n: int = 0  # matched pairs, strata or cells behind the estimate
    estimate: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    statistic: float = float("nan")
    statistic_name: str = "t"
    df: int | None = None
    p: float = float("nan")
    p_holm: float = float("nan")
    rank_p: float = float("nan")
    rank_sign: int = 0
    verdict: str = NOT_SUPPORTED
    note: str = ""

    @property
    def tested(self) -> bool:
        return bool(np.isfinite(self.p))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = (float(v) if np.isfinite(v) else None) if isinstance(v, float) else v
        return out


def _cell_means(done: pd.DataFrame, outcome: str, factors: Sequence[str]) -> pd.DataFrame:
    """Cells with a finite value of ``outcome``: cell id, levels, mean."""
    rows = done[np.isfinite(done[outcome].to_numpy(dtype=float))]
    return rows.groupby("cell", sort=True).agg(**{f: (f, "first") for f in factors}, mean=(outcome, "mean"))


def _pair_weights(means: pd.DataFrame, factor: str, first: str, second: str) -> tuple[Weights, int]:
    """mean(first − second) over strata of the other factors holding both a ``first`` and a ``second`` cell."""
    others = [f for f in means.columns if f not in (factor, "mean")]
    pairs: list[tuple[int, int]] = []
    for _, group in (means.groupby(others, sort=True) if others else [((), means)]):
        a, b = group.index[group[factor] == first], group.index[group[factor] == second]
        if len(a) and len(b):
            pairs.append((int(a[0]), int(b[0])))
    weights: Weights = {}
    for a, b in pairs:
        weights[a] = weights.get(a, 0.0) + 1 / len(pairs)
        weights[b] = weights.get(b, 0.0) - 1 / len(pairs)
    return weights, len(pairs)


def _interaction_weights(means: pd.DataFrame, split: Callable[[Mapping[str, Any]], bool | None]
                         ) -> tuple[Weights, int]:
    """[superlinear − other activations] averaged over strata where ``split`` is True, minus the same over strata
    where it is False (None: left out). A stratum is one level of every factor but activation and needs both
    kinds of activation."""
    others = [f for f in means.columns if f not in ("activation", "mean")]
    strata: dict[bool, list[tuple[list[int], list[int]]]] = {True: [], False: []}
    for key, group in (means.groupby(others, sort=True) if others else [((), means)]):
        side = split(dict(zip(others, key if isinstance(key, tuple) else (key,), strict=True)))
        superlinear = group["activation"].map(lambda a: ACTIVATIONS.get(a, False)).to_numpy(dtype=bool)
        if side is None or superlinear.all() or not superlinear.any():
            continue
        strata[side].append(([int(c) for c in group.index[superlinear]], [int(c) for c in group.index[~superlinear]]))
    if not strata[True] or not strata[False]:
        return {}, 0
    weights: Weights = {}
    for side, sign in ((True, 1.0), (False, -1.0)):
        for sup, other in strata[side]:
            for cells, w in ((sup, 1.0), (other, -1.0)):
                for c in cells:
                    weights[c] = weights.get(c, 0.0) + sign * w / (len(strata[side]) * len(cells))
    return weights, len(strata[True]) + len(strata[False])


def _layernorm(fixed: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool | None]:
    def split(levels: Mapping[str, Any]) -> bool | None:
        norm = levels.get("norm", fixed.get("norm"))
        if levels.get("block") in ALWAYS_LAYERNORM:
            return True
        return None if norm is None else norm == "layer"

    return split


def _contrast(claim: Claim, done: pd.DataFrame, factors: Sequence[str], make: Callable[[pd.DataFrame],
              tuple[Weights, int]], why_not: str) -> Claim:
    """Fill ``claim`` with the contrast ``make`` builds on cell means, on values and (as a check) on ranks."""
    from scipy.stats import rankdata

    means = _cell_means(done, claim.outcome, factors)
    weights, claim.n = make(means)
    if not weights:
        claim.note = f"not testable: {why_not}"
        return claim
    cells = done["cell"].to_numpy()
    result = cell_contrast(done[claim.outcome].to_numpy(dtype=float), cells, weights)
    if result is None:
        claim.note = "not testable: no cell has two finite replicates, so there is no error term"
        return claim
    _fill(claim, result)
    values = done[claim.outcome].to_numpy(dtype=float)
    finite = np.isfinite(values)
    ranked = np.full(len(values), np.nan)
    ranked[finite] = rankdata(values[finite])
    check = cell_contrast(ranked, cells, weights)
    if check is not None:
        claim.rank_p, claim.rank_sign = check.p, int(np.sign(check.estimate))
    return claim


def _fill(claim: Claim, r: ContrastResult) -> None:
    claim.estimate, claim.lo, claim.hi, claim.statistic, claim.df, claim.p = r.estimate, r.lo, r.hi, r.t, r.df, r.p


def _spearman_claim(claim: Claim, done: pd.DataFrame, interference: str) -> Claim:
    from scipy.stats import spearmanr

    medians = done.groupby("cell")[["accuracy", interference]].median().dropna()
    claim.n = len(medians)
    if claim.n < 3 or medians["accuracy"].nunique() < 2 or medians[interference].nunique() < 2:
        claim.note = "not testable: fewer than 3 cells with both outcomes, or one outcome is constant"
        return claim
    result = spearmanr(medians[interference], medians["accuracy"])
    claim.statistic, claim.statistic_name, claim.p = float(result.statistic), "ρ", float(result.pvalue)
    claim.estimate = claim.statistic
    rows = done[["accuracy", interference]].dropna()
    if len(rows) >= 3:
        trial_level = spearmanr(rows[interference], rows["accuracy"])
        claim.note = f"over trials: ρ = {trial_level.statistic:.3f} (n = {len(rows)})"
    return claim


def evaluate_claims(done: pd.DataFrame, factors: Mapping[str, Sequence[str]], interference: str, *,
                fixed: Mapping[str, Any] | None = None) -> list[Claim]:
    """Test the paper's five claims on the complete trials of a study (``done``: cell, factor levels, outcomes)."""
    from statsmodels.stats.multitest import multipletests

    fixed = fixed or {}
    names = list(factors)
    has = set(names)
    superlinear = ", ".join(a for a, s in ACTIVATIONS.items() if s)
    claims = [
        _contrast(Claim("a", "Separable (MobileNetV1-style) stacks beat inverted bottlenecks (MobileNetV2-style) at "
                             "this budget.", "accuracy",
                        "mean over matched cells (same levels of every other factor) of accuracy(separable) − "
                        "accuracy(inverted)", +1),
                  done, names, lambda m: _pair_weights(m, "block", "separable", "inverted") if "block" in has
                  else ({}, 0), "no matched separable and inverted cells"),
        _contrast(Claim("b", f"Superlinear activations ({superlinear}) raise interference more in bottleneck families "
                             f"({', '.join(BOTTLENECK_FAMILIES)}) than in the other families.", interference,
                        f"interaction contrast: {interference}(superlinear) − {interference}(other activations), "
                        "averaged over bottleneck-family strata (family × other factors), minus the same over the "
                        "other families' strata", +1),
                  done, names, lambda m: _interaction_weights(m, lambda lv: lv.get("block") in BOTTLENECK_FAMILIES)
                  if {"block", "activation"} <= has else ({}, 0),
                  "the design needs block and activation factors with both kinds of activation"),
        _contrast(Claim("c", "LayerNorm blocks are less hurt by superlinear activations.", "accuracy",
                        "accuracy(superlinear) − accuracy(other activations), averaged over LayerNorm strata "
                        "(norm = layer, and convnext, always LayerNorm), minus the same over BatchNorm strata "
                        "(a positive value: a smaller drop with LayerNorm)", +1),
                  done, names, lambda m: _interaction_weights(m, _layernorm(fixed)) if "activation" in has
                  else ({}, 0), "the design needs LayerNorm and BatchNorm cells with both kinds of activation"),
        _contrast(Claim("d", "NoDepth bottlenecks have lower interference than inverted bottlenecks at equal budget.",
                        interference, f"mean over matched cells of {interference}(nodepth) − "
                                      f"{interference}(inverted)", -1),
                  done, names, lambda m: _pair_weights(m, "block", "nodepth", "inverted") if "block" in has
                  else ({}, 0), "no matched nodepth and inverted cells"),
        _spearman_claim(Claim("e", "Across all networks, lower interference goes with higher accuracy.", "accuracy",
                              f"Spearman's ρ between the cells' median {interference} and median accuracy (one point "
                              "per network)", -1), done, interference),
    ]
    tested = [c for c in claims if c.tested]
    if tested:
        adjusted = multipletests([c.p for c in tested], alpha=ALPHA, method="holm")[1]
        for c, p in zip(tested, adjusted, strict=True):
            c.p_holm = float(p)
    for c in claims:
        c.verdict = verdict(c.estimate, c.p_holm, c.sign)
        if c.tested and c.rank_sign and verdict(c.rank_sign, c.rank_p, c.sign) != verdict(c.estimate, c.p, c.sign):
            c.note = (c.note + "; " if c.note else "") + (
                f"on ranks the contrast reads {verdict(c.rank_sign, c.rank_p, c.sign)} (p = {c.rank_p:.2g}, "
                "unadjusted): the values' verdict may rest on a few extreme networks")
    return claims


def verdict(estimate: float, p: float, sign: int) -> str:
    """supported / contradicted when p < α with the claimed / the opposite sign; not supported otherwise."""
    if not (np.isfinite(p) and np.isfinite(estimate)) or p >= ALPHA or estimate == 0:
        return NOT_SUPPORTED
    return SUPPORTED if np.sign(estimate) == sign else CONTRADICTED
