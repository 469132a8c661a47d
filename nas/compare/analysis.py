"""The statistics of a comparison: per-architecture means over seeds, each group's best and median with bootstrap
intervals, the differences that answer the question with the seed noise and a verdict, and the searches' ranking.

"Best" is always chosen by mean **validation** accuracy at the main fidelity; the test accuracy of the chosen
network is what is reported. One bootstrap replicate resamples the seeds of every architecture (and, for a
group's median, the group's architectures too), re-chooses each group's best by validation and recomputes every
statistic, so an interval carries the chance that another member would have been chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.compare.members import GROUPS, members_of
from nas.objectives import INTERFERENCE_METRICS
from nas.run import RunConfig, TrialRecord

CI_LEVEL = 0.95
N_RESAMPLES = 5000
BOOTSTRAP_SEED = 0
COMPARABLE_MACS = 1.1  # "comparable compute": at most 10 % more MACs than the network compared with
Z = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass
class ArchRow:
    """One architecture of the comparison at the main fidelity: its seeds' results and their means."""

    member: int
    group: str
    label: str
    arch: str
    params: int
    macs: float
    latency_ms: float
    seeds: list[int]
    val: list[float]
    test: list[float]
    interference: dict[str, float]
    search_accuracy: float | None  # the search's own (proxy) accuracy, for winners
    wall_s: float = math.nan  # mean wall time of one seed's training and measurement
    failed: int = 0  # seeds whose training failed (diverged, non-finite)

    @property
    def val_mean(self) -> float:
        return float(np.mean(self.val)) if self.val else math.nan

    @property
    def test_mean(self) -> float:
        return float(np.mean(self.test)) if self.test else math.nan

    def sd(self, values: Sequence[float]) -> float:
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"member": self.member, "group": self.group, "label": self.label, "params": self.params,
                "macs": self.macs, "latency_ms": self.latency_ms, "seeds": len(self.val), "failed": self.failed,
                "val_mean": self.val_mean, "val_sd": self.sd(self.val), "test_mean": self.test_mean,
                "test_sd": self.sd(self.test), **{k: v for k, v in self.interference.items()},
                "search_accuracy": self.search_accuracy, "wall_s": self.wall_s, "arch": self.arch}


def arch_rows(config: RunConfig, records: Sequence[TrialRecord], fidelity: str | None = None) -> list[ArchRow]:
    """One row per member with at least one complete seed at ``fidelity`` (default: the main one)."""
    name = fidelity or config.fidelity.name
    members = members_of(config)
    by_member: dict[int, list[TrialRecord]] = {}
    failed: dict[int, int] = {}
    for r in records:
        member = r.extra.get("member")
        if r.fidelity != name or not isinstance(member, int) or not 0 <= member < len(members):
            continue
        if r.complete and r.accuracy is not None and r.value("test_accuracy") is not None:
            by_member.setdefault(member, []).append(r)
        elif not r.complete:
            failed[member] = failed.get(member, 0) + 1
    rows = []
    for i, m in enumerate(members):
        done = sorted(by_member.get(i, []), key=lambda r: r.seed or 0)
        if not done:
            continue
        search = (m.source.get("search") or {}).get("accuracy")
        rows.append(ArchRow(
            member=i, group=m.group, label=m.label, arch=m.arch, params=m.params,
            macs=float(done[0].macs or math.nan),
            latency_ms=float(np.median([_f(r.value("latency_ms")) for r in done])),
            seeds=[int(r.seed or 0) for r in done], val=[float(r.accuracy or 0.0) for r in done],
            test=[float(r.value("test_accuracy")) for r in done],
            interference={n: float(np.mean([_f(r.value(n)) for r in done])) for n in INTERFERENCE_METRICS},
            search_accuracy=None if search is None else float(search),
            wall_s=float(np.mean([_f(r.wall_s) for r in done])), failed=failed.get(i, 0)))
    return rows


def _f(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def best_by_group(records: Sequence[TrialRecord], fidelity: str) -> dict[str, int]:
    """Each group's member with the highest mean validation accuracy at ``fidelity`` (ties: the earlier member)."""
    sums: dict[int, list[float]] = {}
    groups: dict[int, str] = {}
    for r in records:
        member = r.extra.get("member")
        if r.fidelity == fidelity and r.complete and r.accuracy is not None and isinstance(member, int):
            sums.setdefault(member, []).append(float(r.accuracy))
            groups[member] = str(r.extra.get("group"))
    best: dict[str, tuple[float, int]] = {}
    for member in sorted(sums):
        mean = float(np.mean(sums[member]))
        g = groups[member]
        if g not in best or mean > best[g][0]:
            best[g] = (mean, member)
    return {g: m for g, (_, m) in best.items()}


# ---- the bootstrap ----------------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """A statistic, its 95 % percentile-bootstrap interval, and (for a group's best) which member it is."""

    value: float
    lo: float
    hi: float
    member: int | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": _num(self.value), "lo": _num(self.lo), "hi": _num(self.hi), "member": self.member,
                "label": self.label}


@dataclass
class Difference:
    """Best of ``group`` minus best of ``other`` in test accuracy, its interval, the noise and a verdict."""

    group: str
    other: str
    scope: str  # "all", or "comparable MACs"
    estimate: Estimate
    resolvable: float
    verdict: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "other": self.other, "scope": self.scope, **self.estimate.to_dict(),
                "resolvable": _num(self.resolvable), "verdict": self.verdict, "note": self.note}


@dataclass
class Comparison:
    """Everything the report shows."""

    rows: list[ArchRow]
    best: dict[str, Estimate]
    median: dict[str, Estimate]
    differences: list[Difference]
    seed_sd: float
    resolvable: float
    n_seeds: int
    ranking: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"best": {g: e.to_dict() for g, e in self.best.items()},
                "median": {g: e.to_dict() for g, e in self.median.items()},
                "differences": [d.to_dict() for d in self.differences], "seed_sd": _num(self.seed_sd),
                "resolvable": _num(self.resolvable), "n_seeds": self.n_seeds, "ranking": self.ranking,
                "ci_level": CI_LEVEL, "n_resamples": N_RESAMPLES, "comparable_macs": COMPARABLE_MACS}


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def seed_sd(rows: Sequence[ArchRow]) -> float:
    """Pooled within-architecture SD of test accuracy (architectures with two or more seeds)."""
    num = sum(float(np.sum((np.asarray(r.test) - r.test_mean) ** 2)) for r in rows if len(r.test) > 1)
    dof = sum(len(r.test) - 1 for r in rows if len(r.test) > 1)
    return math.sqrt(num / dof) if dof else math.nan


def resolvable_difference(sd: float, n_seeds: int) -> float:
    """The smallest difference of two architectures' means over ``n_seeds`` seeds that the seed noise resolves."""
    return Z * sd * math.sqrt(2.0 / n_seeds) if n_seeds > 0 else math.nan


NO_NOISE = "undetermined: no seed noise measured yet (no network has two seeds)"


def verdict(estimate: Estimate, resolvable: float) -> str:
    """ahead / behind when the interval excludes 0 and the difference exceeds the noise; else within noise.

    Without a measured seed noise (every network trained once) there is no verdict: one seed's difference
    and its degenerate interval say nothing about noise."""
    d = estimate.value
    if not math.isfinite(d):
        return "undetermined"
    if not math.isfinite(resolvable):
        return NO_NOISE
    if estimate.lo > 0 and d > resolvable:
        return "ahead"
    if estimate.hi < 0 and d < -resolvable:
        return "behind"
    return "within noise"


class _Replicates:
    """Bootstrap replicates of each architecture's mean validation and test accuracy (seeds resampled)."""

    def __init__(self, rows: Sequence[ArchRow], n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.rng = rng
        self.val = np.empty((n, len(rows)))
        self.test = np.empty((n, len(rows)))
        for j, r in enumerate(rows):
            k = len(r.val)
            idx = rng.integers(0, k, size=(n, k))
            self.val[:, j] = np.asarray(r.val)[idx].mean(axis=1)
            self.test[:, j] = np.asarray(r.test)[idx].mean(axis=1)

    def best_test(self, cols: Sequence[int]) -> np.ndarray:
        """Per replicate: the test mean of the column with the highest validation mean among ``cols``."""
        cols = np.asarray(cols)
        pick = cols[np.argmax(self.val[:, cols], axis=1)]
        return self.test[np.arange(self.n), pick]

    def median_test(self, cols: Sequence[int]) -> np.ndarray:
        """Per replicate: the median test mean of ``cols`` resampled with replacement."""
        cols = np.asarray(cols)
        idx = cols[self.rng.integers(0, len(cols), size=(self.n, len(cols)))]
        return np.median(np.take_along_axis(self.test, idx, axis=1), axis=1)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _best_index(rows: Sequence[ArchRow], cols: Sequence[int]) -> int:
    """The column with the highest mean validation accuracy (ties: the first)."""
    return max(cols, key=lambda j: (rows[j].val_mean, -j))


def compare(rows: Sequence[ArchRow], n_seeds: int, *, n_resamples: int = N_RESAMPLES,
            seed: int = BOOTSTRAP_SEED) -> Comparison:
    """Group bests and medians, the differences with verdicts, and the noise, from the architecture rows."""
    rows = list(rows)
    groups = [g for g in GROUPS if any(r.group == g for r in rows)]
    cols = {g: [j for j, r in enumerate(rows) if r.group == g] for g in groups}
    reps = _Replicates(rows, n_resamples, seed)
    sd = seed_sd(rows)
    noise = resolvable_difference(sd, n_seeds)
    best, median, best_samples = {}, {}, {}
    for g in groups:
        j = _best_index(rows, cols[g])
        best_samples[g] = reps.best_test(cols[g])
        best[g] = Estimate(rows[j].test_mean, *_interval(best_samples[g]), rows[j].member, rows[j].label)
        med = float(np.median([rows[i].test_mean for i in cols[g]]))
        median[g] = Estimate(med, *_interval(reps.median_test(cols[g])))
    differences = []
    if "winner" in groups:
        for other in ("baseline", "random"):
            if other not in groups:
                continue
            d = best_samples["winner"] - best_samples[other]
            est = Estimate(best["winner"].value - best[other].value, *_interval(d))
            differences.append(Difference("winner", other, "all", est, noise, verdict(est, noise)))
            differences.append(_at_comparable_macs(rows, reps, cols, other, noise))
    return Comparison(rows, best, median, differences, sd, noise, n_seeds)


def _at_comparable_macs(rows: list[ArchRow], reps: _Replicates, cols: dict[str, list[int]], other: str,
                        noise: float) -> Difference:
    """Best winner among those with at most COMPARABLE_MACS x the MACs of the other group's best, minus that best."""
    j_other = _best_index(rows, cols[other])
    limit = rows[j_other].macs * COMPARABLE_MACS
    light = [j for j in cols["winner"] if rows[j].macs <= limit]
    scope = "comparable MACs"
    if not light:
        est = Estimate(math.nan, math.nan, math.nan)
        return Difference("winner", other, scope, est, noise, "undetermined",
                          f"no winner within {COMPARABLE_MACS:g}x the MACs of {rows[j_other].label} "
                          f"({rows[j_other].macs / 1e6:.1f}M)")
    j = _best_index(rows, light)
    d = reps.best_test(light) - reps.test[:, j_other]
    est = Estimate(rows[j].test_mean - rows[j_other].test_mean, *_interval(d), rows[j].member, rows[j].label)
    return Difference("winner", other, scope, est, noise, verdict(est, noise),
                      f"{rows[j].label} ({rows[j].macs / 1e6:.1f}M MACs) against {rows[j_other].label} "
                      f"({rows[j_other].macs / 1e6:.1f}M MACs)")


def search_ranking(rows: Sequence[ArchRow], *, seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """Kendall τ between the searches' own accuracy of the winners and their mean validation accuracy here."""
    from scipy.stats import kendalltau

    from nas.analysis.audit import paired_bootstrap

    pairs = [(r.search_accuracy, r.val_mean) for r in rows if r.search_accuracy is not None
             and math.isfinite(r.search_accuracy) and math.isfinite(r.val_mean)]
    if len(pairs) < 3:
        return {"n": len(pairs), "tau": None, "lo": None, "hi": None,
                "note": "fewer than 3 winners with a search accuracy: no rank correlation"}
    x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    tau = float(kendalltau(x, y).statistic)
    lo, hi, _, _ = paired_bootstrap(x, y, n_resamples=N_RESAMPLES, seed=seed)
    return {"n": len(pairs), "tau": _num(tau), "lo": _num(lo), "hi": _num(hi), "note": ""}


def analyse(config: RunConfig, records: Sequence[TrialRecord]) -> Comparison:
    """The comparison of a run store's records at its main fidelity."""
    rows = arch_rows(config, records)
    result = compare(rows, len((config.design or {}).get("seeds", [])) or 1)
    result.ranking = search_ranking([r for r in rows if r.group == "winner"])
    return result
