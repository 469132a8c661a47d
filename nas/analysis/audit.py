"""The analysis of a `nas audit` run: how well each cheap signal ranks the panel as the reference fidelity does.

For the reference's accuracy and its interference objective (the run's, via ``interference_objective``;
skipped when there is none), every SIGNAL — each non-reference fidelity's value of the same metric, each
zero-cost proxy, params and MACs, and two combinations (accuracy only) — gets, over the panel members
with a finite value of both the signal and the reference ("n used"; every other member is listed as
dropped, with the reason):

- Kendall τ-b and Spearman ρ (``nas.retrain.audit.correlate``: scipy, with p-values), each with a 95 %
  percentile interval from a paired bootstrap over members (``n_resamples`` resamples of whole members,
  seeded; each resample's τ by ``scipy.stats.kendalltau``, its ρ as ``spearmanr`` computes it);
- the top-25 % overlap: the share of the reference's top k = ceil(n_ref / 4) members (among the n_ref with
  a finite reference value) that the signal's top k (among those members with a finite signal) contains;
- Pareto recovery (accuracy × interference, ``front_ranks``): the share of the reference front members
  that are on the signal fidelity's own front (a fidelity), or among the signal's top k = front size (a
  single score); a member the signal lacks counts as missed;
- CPU-seconds per evaluation: median wall_s × threads over the fidelity's own (not reused) complete
  records; median zc_<name>_s × threads over every own evaluation for a proxy; 0 for params and MACs
  (analytic); the sum of the parts for a combination. Threads = the record's own ``threads``, else run.yaml
  ``cpus_per_trial`` (null means 2).

SIGN CONVENTION: every value is turned into "higher is better" before ranking — the reference target as
its objective says (accuracy higher, interference lower); a fidelity's value of the same metric likewise;
a zero-cost proxy as recorded (all five are higher-is-better, ``METRICS``); params and MACs "more is
better" (a bigger network is predicted to be more accurate and to interfere less). So τ > 0 means the
signal ranks members as the reference does, τ < 0 the reverse; no sign is chosen after seeing the data.

A zero-cost proxy that is not finite for some members (synflow overflows on superlinear activations) gets a
second row, ``zc_<name> (non-finite last)``: the proxy as the search's pre-screen uses it
(``nas.search.prescreen.best_candidate`` ranks a non-finite score below every finite one). Its values are
ranks, with the non-finite members tied lowest; the plain row leaves them out, as the literature does.

Combinations (accuracy only; their parts are chosen on this same audit, so their τ is optimistic): the mean
rank of the two zero-cost proxies with the highest τ, and the mean of the best affordable non-reference
fidelity's accuracy rank and the best zero-cost rank. ``nas.analysis.audit_choice`` holds the bf16
verdict and the default-proxy choice; ``nas.analysis.audit_report`` writes the files.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.analysis.audit_read import (
    audit_design,
    costs,
    fidelity_value,
    member_records,
    member_value,
    scored_not_finite,
)
from nas.analysis.stats import MIN_POINTS, correlate
from nas.errors import ConfigError
from nas.fidelity import Fidelity
from nas.objectives import MAXIMIZE, METRICS, ZERO_COST_NAMES, Objective, front_ranks, interference_objective
from nas.run import RunStore

N_RESAMPLES = 2000
CI_LEVEL = 0.95
DEFAULT_THREADS = 2
TOP_SHARE = 0.25
MAX_CPU_S = 40.0  # what a default proxy may cost per 1.5M trial (issue 12); also bounds the combinations
BASELINES = ("params", "macs")
NON_FINITE_LAST = " (non-finite last)"  # suffix of a zero-cost proxy's row as the pre-screen reads it


def proxy_of(signal: str) -> str:
    """The zero-cost column a signal reads (``zc_synflow`` for ``zc_synflow (non-finite last)`` too)."""
    return signal.removesuffix(NON_FINITE_LAST)


@dataclass
class Dropped:
    """A panel member left out of one signal's comparison, and why."""

    panel_index: int
    arch: str
    reason: str


@dataclass
class SignalResult:
    """One signal against the reference for one target metric (every number None where undefined)."""

    target: str  # the reference's metric: "accuracy" or the interference metric
    signal: str  # a fidelity name, "zc_<name>", "params", "macs", or a combination's label
    kind: str  # "fidelity" | "zero-cost" | "baseline" | "combination"
    orientation: str  # what "better" means for the signal after the sign convention
    n: int
    tau: float | None = None
    tau_lo: float | None = None
    tau_hi: float | None = None
    tau_p: float | None = None
    rho: float | None = None
    rho_lo: float | None = None
    rho_hi: float | None = None
    rho_p: float | None = None
    top_k: int = 0
    top_overlap: float | None = None
    pareto_recovery: float | None = None
    cpu_s: float | None = None
    components: list[str] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    note: str = ""
    points: list[tuple[int, float, float]] = field(default_factory=list, repr=False)  # (member, signal, ref)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("points")
        return out


@dataclass
class AuditAnalysis:
    """Everything ``analyze_audit`` measured; ``signals`` holds one SignalResult per (target, signal)."""

    run: str
    root: Path
    reference: str
    fidelities: list[Fidelity]
    targets: list[Objective]
    panel: list[str]
    threads: int
    n_resamples: int
    seed: int
    max_cpu_s: float
    reference_n: dict[str, int]  # target -> members with a finite reference value
    reference_front: list[int]  # panel indices on the reference's accuracy × interference front
    median_params: float | None
    signals: list[SignalResult]
    reference_dropped: list[Dropped] = field(default_factory=list)
    reference_cpu_s: float | None = None  # CPU-seconds per evaluation at the reference
    files: list[Path] = field(default_factory=list)  # what write_audit_report wrote
    values: dict[str, dict[str, list[float | None]]] = field(default_factory=dict, repr=False)

    def table(self, target: str = "accuracy") -> list[SignalResult]:
        return [s for s in self.signals if s.target == target]

    def signal(self, name: str, target: str = "accuracy") -> SignalResult:
        for s in self.signals:
            if s.signal == name and s.target == target:
                return s
        raise KeyError(f"no signal {name!r} for {target!r}")

    def fidelity(self, name: str) -> Fidelity:
        return next(f for f in self.fidelities if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "reference": self.reference, "fidelities": [f.to_dict() for f in self.fidelities],
            "targets": [o.to_dict() for o in self.targets], "panel_size": len(self.panel), "threads": self.threads,
            "n_resamples": self.n_resamples, "seed": self.seed, "ci_level": CI_LEVEL, "max_cpu_s": self.max_cpu_s,
            "reference_n": self.reference_n, "reference_front": self.reference_front, "panel": self.panel,
            "median_params": self.median_params, "reference_cpu_s": self.reference_cpu_s,
            "reference_dropped": [asdict(d) for d in self.reference_dropped],
            "signals": [s.to_dict() for s in self.signals],
        }


def require_rankable(n: int, what: str = "panel members with a reference result") -> None:
    """ConfigError unless ``n`` members allow a rank correlation (at least ``MIN_POINTS``)."""
    if n < MIN_POINTS:
        raise ConfigError(f"no rank correlation possible with n = {n}: an audit needs at least {MIN_POINTS} "
                          f"{what}")


# ---- the statistics ----------------------------------------------------------------------------------------


def paired_bootstrap(x: np.ndarray, y: np.ndarray, *, n_resamples: int, seed: Any) -> tuple[float, ...]:
    """95 % percentile intervals (tau_lo, tau_hi, rho_lo, rho_hi) from resampling (x_i, y_i) pairs together.

    Each resample's τ-b is ``scipy.stats.kendalltau`` (along the resample axis) and its ρ is the Pearson
    correlation of average ranks (``rankdata`` + ``pearsonr``), which is what ``spearmanr`` computes, batched.
    A resample that is constant in x or y has no correlation and is left out of the quantiles.
    """
    from scipy.stats import kendalltau, pearsonr, rankdata

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    xs, ys = x[idx], y[idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        taus = np.asarray(kendalltau(xs, ys, axis=1, method="asymptotic").statistic, dtype=float)
        rhos = np.asarray(pearsonr(rankdata(xs, axis=1), rankdata(ys, axis=1), axis=1).statistic, dtype=float)
    alpha = (1.0 - CI_LEVEL) / 2.0
    out: list[float] = []
    for stats in (taus, rhos):
        stats = stats[np.isfinite(stats)]
        out += [float(v) for v in np.quantile(stats, [alpha, 1 - alpha])] if len(stats) else [math.nan] * 2
    return tuple(out)


def top_set(values: np.ndarray, k: int) -> set[int]:
    """Indices of the ``k`` largest finite values (ties: the earlier index first)."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(-values[finite], kind="stable")]
    return {int(i) for i in order[:k]}


def front_set(acc: np.ndarray, inter: np.ndarray, universe: np.ndarray) -> set[int]:
    """Members of ``universe`` with finite oriented (acc, inter) on the first non-dominated front."""
    keep = universe[np.isfinite(acc[universe]) & np.isfinite(inter[universe])]
    if not len(keep):
        return set()
    ranks = front_ranks(-np.column_stack([acc[keep], inter[keep]]))  # oriented: higher better -> losses
    return {int(i) for i, r in zip(keep, ranks, strict=True) if r == 1}


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def compare(target: str, signal: str, kind: str, orientation: str, s: np.ndarray, ref: np.ndarray,
            why: list[str], panel: list[str], *, n_resamples: int, seed: Any) -> SignalResult:
    """Every statistic of one oriented signal ``s`` against the oriented reference ``ref`` (NaN = missing)."""
    both = np.isfinite(s) & np.isfinite(ref)
    dropped = [Dropped(i, panel[i], why[i] or "no value") for i in range(len(panel)) if not both[i]]
    c = correlate(s.tolist(), ref.tolist(), target=target, predictor=signal, items="panel member(s) with both values")
    res = SignalResult(target, signal, kind, orientation, c.n, tau=c.tau, tau_p=c.tau_p, rho=c.rho, rho_p=c.rho_p,
                       dropped=dropped, note=c.note,
                       points=[(i, float(s[i]), float(ref[i])) for i in np.flatnonzero(both)])
    if c.tau is not None:
        lo_hi = paired_bootstrap(s[both], ref[both], n_resamples=n_resamples, seed=seed)
        res.tau_lo, res.tau_hi, res.rho_lo, res.rho_hi = (_num(v) for v in lo_hi)
    n_ref = int(np.isfinite(ref).sum())
    if n_ref:
        res.top_k = math.ceil(TOP_SHARE * n_ref)
        best = top_set(ref, res.top_k)
        res.top_overlap = len(best & top_set(np.where(np.isfinite(ref), s, np.nan), res.top_k)) / res.top_k
    return res


# ---- the analysis ------------------------------------------------------------------------------------------


def analyze_audit(store: RunStore, *, n_resamples: int = N_RESAMPLES, seed: int = 0,
                  max_cpu_s: float = MAX_CPU_S) -> AuditAnalysis:
    """Analyse an audit run (see the module docstring); ConfigError when fewer than 3 members can be ranked."""
    config, panel, reference, fidelities = audit_design(store)
    require_rankable(len(panel), "panel members")
    records = store.records()
    chosen = member_records(records, panel)
    threads = config.cpus_per_trial or DEFAULT_THREADS
    inter = interference_objective(config.objectives)
    targets = [Objective("accuracy", "maximize"), *([inter] if inter else [])]
    n = len(panel)
    others = [f.name for f in fidelities if f.name != reference]

    def fid_values(fid: str, column: str, sign: float) -> tuple[np.ndarray, list[str]]:
        pairs = [fidelity_value(chosen, i, fid, column) for i in range(n)]
        return np.array([np.nan if v is None else sign * v for v, _ in pairs]), [w for _, w in pairs]

    def member_values(column: str) -> tuple[np.ndarray, list[str]]:
        pairs = [member_value(chosen, i, column) for i in range(n)]
        return np.array([np.nan if v is None else v for v, _ in pairs]), [w for _, w in pairs]

    ref_acc, ref_why = fid_values(reference, "accuracy", 1.0)
    require_rankable(int(np.isfinite(ref_acc).sum()))
    ref_dropped = [Dropped(i, panel[i], ref_why[i]) for i in range(n) if not np.isfinite(ref_acc[i])]
    cost = costs(records, fidelities, threads)
    params, _ = member_values("params")
    analysis = AuditAnalysis(store.name, store.root, reference, fidelities, targets, panel, threads, n_resamples,
                             seed, max_cpu_s, {}, [], _num(float(np.nanmedian(params))) if np.isfinite(params).any()
                             else None, [], ref_dropped, cost.get(reference))

    single: dict[str, tuple[np.ndarray, list[str], str, str]] = {}  # oriented single-score signals
    for name in ZERO_COST_NAMES:
        column = f"zc_{name}"
        v, why = member_values(column)
        sign = 1.0 if METRICS[column].direction == MAXIMIZE else -1.0
        single[column] = (sign * v, why, "zero-cost", "higher score" if sign > 0 else "lower score")
        overflowed = np.array([scored_not_finite(chosen, i, column) for i in range(n)], dtype=bool)
        if overflowed.any() and np.isfinite(v).any():
            label = f"{column}{NON_FINITE_LAST}"
            single[label] = (ranked_with_lowest(sign * v, overflowed), [("" if overflowed[i] else w)
                             for i, w in enumerate(why)], "zero-cost", "higher rank; a non-finite score lowest")
            cost[label] = cost.get(column)
    for column in BASELINES:
        v, why = member_values(column)
        single[column] = (v, why, "baseline", f"more {'params' if column == 'params' else 'MACs'} is better")

    fid_oriented: dict[tuple[str, str], np.ndarray] = {}
    for t_i, target in enumerate(targets):
        sign = 1.0 if target.maximize else -1.0
        word = ("higher " if target.maximize else "lower ") + target.name
        ref, why_ref = fid_values(reference, target.name, sign)
        fid_oriented[(reference, target.name)] = ref
        analysis.reference_n[target.name] = int(np.isfinite(ref).sum())
        analysis.values[target.name] = {reference: [_num(x) for x in ref * sign]}
        for s_i, fid in enumerate(others):
            v, why = fid_values(fid, target.name, sign)
            fid_oriented[(fid, target.name)] = v
            analysis.values[target.name][fid] = [_num(x) for x in v * sign]
            why = [w or why_ref[i] for i, w in enumerate(why)]
            res = compare(target.name, fid, "fidelity", word, v, ref, why, panel, n_resamples=n_resamples,
                          seed=(seed, t_i, 0, s_i))
            res.cpu_s = cost.get(fid)
            analysis.signals.append(res)
        for s_i, (column, (v, why, kind, word_s)) in enumerate(single.items()):
            why = [w or why_ref[i] for i, w in enumerate(why)]
            res = compare(target.name, column, kind, word_s, v, ref, why, panel, n_resamples=n_resamples,
                          seed=(seed, t_i, 1, s_i))
            res.cpu_s = 0.0 if kind == "baseline" else cost.get(column)
            analysis.signals.append(res)
    for c_i, (label, parts) in enumerate(_combinations(analysis, others)):
        ranks, why = _mean_rank([fid_oriented.get((p, "accuracy"), single.get(p, (None,))[0]) for p in parts],
                                [single[p][1] if p in single else fid_values(p, "accuracy", 1.0)[1] for p in parts])
        why = [w or ref_why[i] for i, w in enumerate(why)]
        res = compare("accuracy", label, "combination", "higher mean rank", ranks, ref_acc, why, panel,
                      n_resamples=n_resamples, seed=(seed, 0, 2, c_i))
        res.components = list(parts)
        part_costs = [cost.get(p, 0.0 if p in BASELINES else None) for p in parts]
        res.cpu_s = None if any(c is None for c in part_costs) else float(sum(part_costs))  # type: ignore[arg-type]
        analysis.signals.append(res)
    _pareto(analysis, fid_oriented, single, others)
    return analysis


def ranked_with_lowest(values: np.ndarray, lowest: np.ndarray) -> np.ndarray:
    """Ranks of the finite ``values`` (1 = lowest, ties averaged), 0 where ``lowest``, NaN elsewhere.

    Ranks, not the values with a sentinel: a rank correlation only sees the order, and a sentinel below a
    score of 1e300 would overflow.
    """
    from scipy.stats import rankdata

    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    out[finite] = rankdata(values[finite])
    out[lowest & ~finite] = 0.0
    return out


def _combinations(analysis: AuditAnalysis, others: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The combinations to evaluate for accuracy: the two best proxies' mean rank; best affordable fidelity + proxy."""
    ranked = sorted((s for s in analysis.table("accuracy") if s.kind == "zero-cost" and s.tau is not None),
                    key=lambda s: -s.tau)  # type: ignore[operator]
    zc = [s for k, s in enumerate(ranked)  # one row per proxy: its best reading (plain or non-finite last)
          if all(proxy_of(s.signal) != proxy_of(t.signal) for t in ranked[:k])]
    out: list[tuple[str, tuple[str, ...]]] = []
    if len(zc) >= 2:
        out.append((f"mean rank ({zc[0].signal}, {zc[1].signal})", (zc[0].signal, zc[1].signal)))
    fids = [s for s in analysis.table("accuracy") if s.kind == "fidelity" and s.tau is not None
            and s.cpu_s is not None]
    if zc and fids:
        budget = analysis.max_cpu_s - (zc[0].cpu_s or 0.0)
        affordable = [s for s in fids if s.cpu_s <= budget] or [min(fids, key=lambda s: s.cpu_s)]  # type: ignore
        best = max(affordable, key=lambda s: s.tau)  # type: ignore[arg-type,return-value]
        out.append((f"mean rank ({best.signal}, {zc[0].signal})", (best.signal, zc[0].signal)))
    return out


def _mean_rank(parts: list[np.ndarray | None], whys: list[list[str]]) -> tuple[np.ndarray, list[str]]:
    """Mean of the parts' ranks (1 = worst) over members where every part is finite; NaN elsewhere."""
    from scipy.stats import rankdata

    arrays = [np.asarray(p, dtype=float) for p in parts]
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    out = np.full(len(ok), np.nan)
    if ok.any():
        out[ok] = np.mean([rankdata(a[ok]) for a in arrays], axis=0)
    why = [next((w[i] for w in whys if w[i]), "") for i in range(len(ok))]
    return out, why


def _pareto(analysis: AuditAnalysis, fid_oriented: dict[tuple[str, str], np.ndarray],
            single: dict[str, tuple[np.ndarray, list[str], str, str]], others: list[str]) -> None:
    """Pareto recovery of the reference's accuracy × interference front, set on every signal (both targets)."""
    if len(analysis.targets) < 2:
        return
    inter = analysis.targets[1].name
    ref_acc, ref_inter = fid_oriented[(analysis.reference, "accuracy")], fid_oriented[(analysis.reference, inter)]
    universe = np.flatnonzero(np.isfinite(ref_acc) & np.isfinite(ref_inter))
    front = front_set(ref_acc, ref_inter, universe)
    analysis.reference_front = sorted(front)
    if not front:
        return
    scores = {name: v for name, (v, *_rest) in single.items()}
    for s in analysis.signals:
        if s.signal in others:
            found = front_set(fid_oriented[(s.signal, "accuracy")], fid_oriented[(s.signal, inter)], universe)
        else:
            v = scores.get(s.signal)
            if v is None:  # a combination: its scores are its points
                v = np.full(len(ref_acc), np.nan)
                for i, value, _ in s.points:
                    v[i] = value
            masked = np.full(len(v), np.nan)
            masked[universe] = v[universe]
            found = top_set(masked, len(front))
        s.pareto_recovery = len(front & found) / len(front)
