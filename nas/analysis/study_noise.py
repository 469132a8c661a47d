"""Seed noise: how far one network's accuracy moves when only the seed changes, and fronts marked by it.

The noise is the pooled within-group standard deviation over groups of evaluations of one network that
differ only in their seed: complete records that share an ``arch_hash`` and a fidelity but not a seed — a
study's replicates, or a search's repeated evaluations (reused copies do not count):

    s_p = sqrt( Σ_g (n_g − 1) · s_g² / Σ_g (n_g − 1) ),   df = Σ_g (n_g − 1)

A group with a replicate at chance (accuracy below 1/K + 0.05 on a K-class data set) is left out: a net that
sometimes does not learn is not seed noise of a trained one, and one such group would dwarf the rest.

Two single evaluations differ significantly (two-sided, α = 0.05) when their difference exceeds
``t(1 − α/2, df) · √2 · s_p``; a front member whose accuracy is closer than that to a better member's is
marked "within noise" of it (:func:`noise_marks`): another seed could swap them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import RunStoreError

if TYPE_CHECKING:
    import pandas as pd

    from nas.run import RunConfig, RunStore

ALPHA = 0.05
CHANCE_MARGIN = 0.05
CLASSES: dict[str, int] = {"fashion-mnist": 10, "cifar10": 10}  # data sets whose class count the run implies
NOISE_COLUMN = "within_noise_of"


@dataclass(frozen=True)
class NoiseEstimate:
    """A pooled seed-to-seed standard deviation, its degrees of freedom, and where it was measured."""

    sd: float
    df: int
    groups: int
    source: str  # e.g. "study results/study (96 cells × replicates)" or "repeated evaluations in run x"
    metric: str = "accuracy"
    excluded: int = 0  # groups left out because a replicate was at chance

    def quantile(self, alpha: float = ALPHA) -> float:
        from scipy.stats import t

        return float(t.ppf(1 - alpha / 2, self.df)) if self.df >= 1 else float("nan")

    def resolvable(self, replicates: float = 1, alpha: float = ALPHA) -> float:
        """Least significant difference of two means of ``replicates`` evaluations each: t · s_p · √(2/r)."""
        return self.quantile(alpha) * self.sd * float(np.sqrt(2.0 / replicates))

    def describe(self) -> str:
        return (f"seed SD {self.sd:.4f} of {self.metric} (df {self.df}, {self.groups} networks, {self.source}); "
                f"two single evaluations closer than {self.resolvable():.4f} are within noise")

    def to_dict(self) -> dict[str, Any]:
        return {"sd": self.sd, "df": self.df, "groups": self.groups, "source": self.source, "metric": self.metric,
                "excluded_at_chance": self.excluded, "resolvable_difference": self.resolvable()}


def chance_accuracy(config: RunConfig) -> float | None:
    """1/K for a data set whose class count is known (Fashion-MNIST, CIFAR-10), else None."""
    classes = CLASSES.get(config.dataset)
    return 1.0 / classes if classes else None


def pooled_noise(trials: pd.DataFrame, by: Sequence[str], *, metric: str = "accuracy", source: str,
                 chance: float | None = None) -> NoiseEstimate | None:
    """Pooled within-group SD of ``metric`` over groups ``by`` with two or more finite values; None if none.

    Rows should be complete, original (not reused) evaluations; groups with a value below ``chance`` +
    CHANCE_MARGIN are left out (when ``chance`` is given and the metric is accuracy).
    """
    values = trials[metric].to_numpy(dtype=float) if metric in trials.columns else np.array([])
    if not len(values):
        return None
    frame = trials.loc[np.isfinite(values), [*by, metric]].copy()
    frame[metric] = frame[metric].astype(float)
    groups = frame.groupby(list(by), sort=False, dropna=True)[metric].agg(["count", "var", "min"])
    groups = groups[groups["count"] >= 2]
    excluded = 0
    if chance is not None and metric == "accuracy":
        low = groups["min"] < chance + CHANCE_MARGIN
        excluded, groups = int(low.sum()), groups[~low]
    df = int((groups["count"] - 1).sum())
    if df < 1:
        return None
    sd = float(np.sqrt(((groups["count"] - 1) * groups["var"]).sum() / df))
    return NoiseEstimate(sd, df, len(groups), source, metric, excluded)


def repeat_noise(trials: pd.DataFrame, *, chance: float | None = None, source: str = "repeated evaluations",
                 metric: str = "accuracy") -> NoiseEstimate | None:
    """Noise from a run's own repeats: complete, original records sharing arch_hash and fidelity, distinct seeds."""
    rows = trials[(trials["status"] == "complete") & ~trials["reused"].astype(bool)]
    rows = rows.drop_duplicates(["arch_hash", "fidelity", "seed"])
    return pooled_noise(rows, ("arch_hash", "fidelity"), metric=metric, source=source, chance=chance)


def noise_estimate(store: RunStore) -> NoiseEstimate | None:
    """The seed noise of accuracy measured in a run (a study's replicates, or a search's repeated evaluations).

    Both are networks evaluated under several seeds: complete, original records grouped by arch_hash and
    fidelity (in a study, one group per cell; cells naming one network share it). None when there are none.
    """
    config = store.read_config()
    trials = store.table()
    if not len(trials):
        return None
    what = "replicates of study" if config.kind == "study" else "repeated evaluations in run"
    return repeat_noise(trials, chance=chance_accuracy(config), source=f"{what} {store.name}")


def seed_noise(store: RunStore) -> float | None:
    """The pooled seed-to-seed SD of accuracy measured in a run (a study, or repeats inside a search), or None."""
    estimate = noise_estimate(store)
    return None if estimate is None else estimate.sd


def noise_from(run: str | Path, results_dir: str | Path = "results") -> NoiseEstimate:
    """The noise estimate of a run given as a folder or name (what ``--noise-from`` reads); RunStoreError if none."""
    from nas.run import RunStore

    store = RunStore.open(run, results_dir)
    estimate = noise_estimate(store)
    if estimate is None:
        raise RunStoreError(f"run {store.name} measured no seed noise: it holds no network evaluated with two or more "
                            "seeds (a study with --repeats 2 or more, or a search with repeated evaluations)")
    return estimate


def noise_marks(front: pd.DataFrame, noise: float | NoiseEstimate, *, metric: str = "accuracy",
                alpha: float = ALPHA) -> pd.Series:
    """For each front member, the trial id of the best member it is within noise of (else None).

    A member is within noise of a better one (higher ``metric``; equal values: the lower trial id is
    better) when the difference is smaller than t(1 − α/2, df) · √2 · SD (a float ``noise`` uses the normal
    quantile). The mark names the best such member, i.e. the top of the group it cannot be told from.
    """
    import pandas as pd
    from scipy.stats import norm

    if isinstance(noise, NoiseEstimate):
        threshold = noise.resolvable(alpha=alpha)
    else:
        threshold = float(norm.ppf(1 - alpha / 2)) * float(np.sqrt(2.0)) * float(noise)
    marks = pd.Series([None] * len(front), index=front.index, dtype=object)
    if not len(front) or not np.isfinite(threshold) or threshold <= 0:
        return marks
    values = front[metric].to_numpy(dtype=float)
    ids = front["trial_id"].to_numpy()
    order = sorted(range(len(front)), key=lambda i: (-values[i] if np.isfinite(values[i]) else np.inf, ids[i]))
    for k, i in enumerate(order):
        if not np.isfinite(values[i]):
            continue
        better = [j for j in order[:k] if values[j] - values[i] < threshold]
        if better:
            marks.iloc[i] = int(ids[better[0]])
    return marks
