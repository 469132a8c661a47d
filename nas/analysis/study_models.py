"""Linear models of a factorial study: type II ANOVA on values and on aligned ranks, and planned cell contrasts.

**ANOVA.** The model of an outcome is the full factorial in the study's factors (default block ×
activation × norm: every main effect and every interaction), so its residual is the seed-to-seed
variation inside cells and every term is tested against it. Sums of squares are type II (Langsrud 2003;
``car::Anova``): a term's sum of squares is what it adds to the model of every term that does not contain
it. Each is computed as a comparison of two nested statsmodels OLS fits (``anova_lm(reduced, with_term)``),
and F = (SS_term / df_term) / MSE_full, p from F(df_term, df_resid_full). With every cell present this is
exactly ``anova_lm(ols(...).fit(), typ=2)`` (a test checks it); unlike that, it stays right when cells are
empty (infeasible, or every replicate failed), because statsmodels counts degrees of freedom by the rank of
the design, so a term loses one degree of freedom per empty cell instead of being tested on a rank-deficient
constraint. Effect sizes: partial η² = SS_term / (SS_term + SS_resid), and the share of variance
SS_term / SS_total (type II shares need not sum to 1 when cells are unbalanced).

**Aligned rank transform (ART; Wobbrock et al., CHI 2011).** The same table on ranks, one term at a time:
the response is aligned for the term (cell residual plus the term's estimated effect, by inclusion–exclusion
of marginal means), ranked over all trials, and the full factorial is fitted to the ranks; only that term's
row is read. Ranks make the tests robust to heavy tails — networks stuck at chance beside trained ones — and
the alignment avoids the spurious interactions that ranking raw values creates when main effects are large
(a monotone transform of additive effects is not additive).

**Contrasts.** A claim is a linear contrast of cell means, estimated and t-tested in the cell-means OLS
model (one mean per cell, error = pooled within-cell variance) with statsmodels' ``t_test``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

ALPHA = 0.05
VALUES, ALIGNED_RANKS = "values", "aligned ranks"
Term = tuple[str, ...]


@dataclass
class AnovaRow:
    """One term of a type II ANOVA table."""

    term: str
    df: int
    ss: float
    f: float
    p: float
    partial_eta2: float
    share: float  # SS_term / SS_total

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass
class AnovaTable:
    """A type II ANOVA of one outcome over a set of trials (all cells, or one level of a factor)."""

    outcome: str
    scope: str  # "all cells", or e.g. "norm=batch"
    method: str  # VALUES or ALIGNED_RANKS
    factors: list[str]
    n: int
    df_resid: int
    rows: list[AnovaRow] = field(default_factory=list)
    note: str = ""

    def row(self, term: str) -> AnovaRow | None:
        return next((r for r in self.rows if r.term == term), None)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "scope": self.scope, "method": self.method, "factors": self.factors,
                "n": self.n, "df_resid": self.df_resid, "note": self.note, "rows": [r.to_dict() for r in self.rows]}


def _num(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def term_name(term: Term) -> str:
    return ":".join(term)


def factorial_terms(factors: Sequence[str]) -> list[Term]:
    """Every main effect and interaction of ``factors``, lowest order first."""
    return [t for k in range(1, len(factors) + 1) for t in itertools.combinations(factors, k)]


Codes = dict[str, np.ndarray]  # factor -> integer level code of every row


def _factor_codes(frame: pd.DataFrame, factors: Sequence[str]) -> Codes:
    import pandas as pd

    return {f: pd.factorize(frame[f].astype(str))[0] for f in factors}


def _joint_codes(codes: Codes, term: Term) -> np.ndarray:
    """Integer code of each row's joint level of the term's factors (0 for every row when the term is empty)."""
    if not term:
        return np.zeros(len(next(iter(codes.values()))), dtype=int)
    dims = tuple(int(codes[f].max()) + 1 for f in term)
    flat = np.ravel_multi_index(tuple(codes[f] for f in term), dims)
    return np.unique(flat, return_inverse=True)[1].ravel()


def _columns(codes: Codes, term: Term) -> np.ndarray:
    """Deviation-coded (sum-to-zero) columns of a term: products of its factors' contrasts.

    The full factorial then has one column per cell; an empty cell makes some columns aliased, which the
    fit absorbs (its rank, not its column count, gives the degrees of freedom).
    """
    rows = len(codes[term[0]])
    out = np.ones((rows, 1))
    for factor in term:
        levels = int(codes[factor].max()) + 1
        contrast = np.vstack([np.eye(levels - 1), -np.ones((1, levels - 1))])[codes[factor]]
        out = (out[:, :, None] * contrast[:, None, :]).reshape(rows, -1)
    return out


def _fit(y: np.ndarray, blocks: Sequence[np.ndarray]) -> Any:
    import statsmodels.api as sm

    exog = np.column_stack([np.ones(len(y)), *blocks])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank deficiency is intended; df come from the rank
        return sm.OLS(y, exog).fit()


def _saturation(codes: Codes, terms: list[Term]) -> tuple[list[Term], str]:
    """Drop the highest-order terms while they leave no residual degree of freedom (an unreplicated design)."""
    note = ""
    columns = {t: _columns(codes, t) for t in terms}
    rows = len(next(iter(codes.values())))
    while len(terms) > 1:
        if _fit(np.zeros(rows), [columns[t] for t in terms]).df_resid >= 1:
            break
        top = max(len(t) for t in terms)
        dropped = [t for t in terms if len(t) == top]
        terms = [t for t in terms if len(t) < top]
        note = (f"no replicated cell: the {' and '.join(term_name(t) for t in dropped)} interaction serves as the "
                "error term")
    return terms, note


def type2_anova(frame: pd.DataFrame, response: str, factors: Sequence[str], *, outcome: str | None = None,
                scope: str = "all cells", method: str = VALUES) -> AnovaTable:
    """Type II ANOVA of ``response`` on the full factorial in ``factors`` (rows with a finite response).

    ``method`` VALUES fits the values; ALIGNED_RANKS fits, for each term, the ranks of the response aligned
    for that term (ART). Factors with one level in the data are left out (said in the note).
    """
    data = frame[np.isfinite(frame[response].to_numpy(dtype=float))].reset_index(drop=True)
    used = [f for f in factors if data[f].nunique() > 1]
    table = AnovaTable(outcome or response, scope, method, used, len(data), 0)
    notes = [f"{f} has one level here" for f in factors if f not in used]
    if not used or len(data) < 3:
        table.note = "; ".join([*notes, "too few trials or levels for a model"])
        return table
    with single_threaded():
        codes = _factor_codes(data, used)
        terms, saturated = _saturation(codes, factorial_terms(used))
        notes += [saturated] if saturated else []
        columns = {t: _columns(codes, t) for t in terms}
        values = data[response].to_numpy(dtype=float)
        full = _fit(values, list(columns.values()))
        for term in terms:
            y = values
            if method == ALIGNED_RANKS:
                y = _aligned_ranks(codes, values, term)
                full = _fit(y, list(columns.values()))
            row = _type2_row(y, term, terms, columns, full)
            if row is None:
                notes.append(f"{term_name(term)}: no degree of freedom left (its cells are empty)")
            else:
                table.rows.append(row)
        table.df_resid = round(float(full.df_resid))
    table.note = "; ".join(notes)
    return table


def _type2_row(y: np.ndarray, term: Term, terms: list[Term], columns: Mapping[Term, np.ndarray],
               full: Any) -> AnovaRow | None:
    """The term's row: what it adds to every term not containing it, tested against the full model's error."""
    from scipy.stats import f as f_dist
    from statsmodels.stats.anova import anova_lm

    others = [t for t in terms if not set(term) <= set(t)]
    reduced = _fit(y, [columns[t] for t in others])
    with_term = _fit(y, [columns[t] for t in [*others, term]])
    scale = float(full.scale) if full.df_resid >= 1 and full.scale > 0 else np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = anova_lm(reduced, with_term, scale=scale)
    ss, df = float(cmp["ss_diff"].iloc[1]), round(float(cmp["df_diff"].iloc[1]))
    if df < 1:
        return None
    f_value = float(cmp["F"].iloc[1])
    p = float(f_dist.sf(f_value, df, full.df_resid)) if np.isfinite(f_value) else float("nan")
    total, resid = float(np.sum((y - y.mean()) ** 2)), float(full.ssr)
    return AnovaRow(term_name(term), df, ss, f_value, p, ss / (ss + resid) if ss + resid > 0 else float("nan"),
                    ss / total if total > 0 else float("nan"))


@contextmanager
def single_threaded() -> Iterator[None]:
    """One BLAS thread: the designs are small, and threads only contend on a shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def _aligned_ranks(codes: Codes, y: np.ndarray, term: Term) -> np.ndarray:
    """ART: the cell residual plus the term's estimated effect (inclusion–exclusion of marginal means), ranked."""
    from scipy.stats import rankdata

    def marginal(sub: Term) -> np.ndarray:
        joint = _joint_codes(codes, sub)
        return (np.bincount(joint, weights=y) / np.bincount(joint))[joint]

    effect = np.zeros(len(y))
    for k in range(len(term) + 1):
        for sub in itertools.combinations(term, k):
            effect += (-1) ** (len(term) - k) * marginal(sub)
    return rankdata(y - marginal(tuple(codes)) + effect)


@dataclass
class ContrastResult:
    """A contrast of cell means: estimate, standard error, t, two-sided p, 95 % interval, residual df."""

    estimate: float
    se: float
    t: float
    p: float
    lo: float
    hi: float
    df: int

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in self.__dict__.items()}


def cell_contrast(values: np.ndarray, cells: np.ndarray, weights: Mapping[Any, float]) -> ContrastResult | None:
    """t-test of Σ_c w_c · mean_c in the cell-means OLS model; None without replicates or without weight.

    ``values`` and ``cells`` give one trial per row (finite values only are used); ``weights`` map cell ids to
    contrast weights (cells without a finite value must have none).
    """
    import pandas as pd
    import statsmodels.api as sm

    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    values, cells = values[keep], np.asarray(cells)[keep]
    codes, uniques = pd.factorize(pd.Series(cells))
    if len(uniques) == 0 or not any(weights.values()):
        return None
    present = set(uniques.tolist())
    if any(w and c not in present for c, w in weights.items()):
        raise ValueError("a contrast weighs a cell without data")
    with single_threaded():
        fit = sm.OLS(values, np.eye(len(uniques))[codes]).fit()
    if fit.df_resid < 1 or not fit.scale > 0:
        return None
    contrast = np.array([weights.get(c, 0.0) for c in uniques.tolist()], dtype=float)
    test = fit.t_test(contrast.reshape(1, -1))
    lo, hi = np.asarray(test.conf_int(alpha=ALPHA)).ravel()
    return ContrastResult(float(np.ravel(test.effect)[0]), float(np.ravel(test.sd)[0]), float(np.ravel(test.tvalue)[0]),
                          float(np.ravel(test.pvalue)[0]), float(lo), float(hi), round(float(fit.df_resid)))
