"""Decisions drawn from an audit: may bf16 be the default precision, and which cheap signal is the default proxy.

``bf16_verdict``: for every bf16 fidelity whose fp32 twin (same fields but name and precision) is in the
audit, Kendall τ between the two accuracies over the panel (with its paired-bootstrap interval), and the mean
accuracy difference bf16 − fp32 with a paired-bootstrap 95 % interval. bf16 may be the default when, for
every pair, τ ≥ 0.9 and accuracy is not lower on average: the interval of the mean difference reaches 0 or
above (no significant drop) and the mean difference is at least −0.005 (less than half a point).

``choose_default_proxy``: among the non-baseline signals for accuracy (fidelities, zero-cost proxies,
combinations) costing at most ``max_cpu_s`` CPU-seconds per evaluation, those whose τ interval lower bound
exceeds the trivial predictors' bar — the larger |τ| of params and MACs (a trivial predictor may be read
with either sign, so the bar is the stronger reading) — are eligible; the winner is the one with the highest
τ, where signals within ``TAU_TIE`` of the best count as tied and the cheapest of those wins. τ is not
divided by cost: a 1 CPU-s zero-cost proxy would then beat every fidelity by its cost alone, whatever its τ;
cost acts as the limit and the tie-breaker instead. The statement says plainly when no affordable signal
beats params and MACs and when none reaches τ ≥ 0.6 (and which audited signal, at what cost, would).

``search_defaults``: the search's own defaults read against the audit — its pre-screen proxy as the pre-screen
reads it (``zc_<name> (non-finite last)`` where the proxy overflowed, else ``zc_<name>``) beside the best
zero-cost reading, and its training fidelity beside the default proxy the audit chose. It reports; changing a
default stays a decision made in the code, with this table as its evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.analysis.audit import NON_FINITE_LAST, AuditAnalysis, SignalResult, paired_bootstrap
from nas.analysis.stats import correlate
from nas.fidelity import Fidelity

BF16_MIN_TAU = 0.9
BF16_TOLERANCE = 0.005  # a mean accuracy drop below this counts as "not lower"
GOOD_TAU = 0.6
TAU_TIE = 0.02


def fp32_twin(fidelity: Fidelity, fidelities: list[Fidelity]) -> Fidelity | None:
    """The fp32 fidelity with the same fields as ``fidelity`` apart from name and precision, if any."""
    def key(f: Fidelity) -> dict[str, Any]:
        return {k: v for k, v in f.to_dict().items() if k not in ("name", "precision")}

    return next((f for f in fidelities if f.precision == "fp32" and key(f) == key(fidelity)), None)


def _pair(analysis: AuditAnalysis, bf16: str, fp32: str, index: int) -> dict[str, Any]:
    a = np.array([np.nan if v is None else v for v in analysis.values["accuracy"][bf16]], dtype=float)
    b = np.array([np.nan if v is None else v for v in analysis.values["accuracy"][fp32]], dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    c = correlate(a.tolist(), b.tolist(), target=fp32, predictor=bf16, items="panel member(s) with both results")
    out: dict[str, Any] = {"bf16": bf16, "fp32": fp32, "n": c.n, "tau": c.tau, "tau_lo": None, "tau_hi": None,
                           "mean_diff": None, "diff_lo": None, "diff_hi": None, "note": c.note}
    if c.tau is not None:
        out["tau_lo"], out["tau_hi"], *_ = paired_bootstrap(a[both], b[both], n_resamples=analysis.n_resamples,
                                                            seed=(analysis.seed, 3, index))
    if both.any():
        diff = a[both] - b[both]
        rng = np.random.default_rng((analysis.seed, 4, index))
        means = diff[rng.integers(0, len(diff), size=(analysis.n_resamples, len(diff)))].mean(axis=1)
        out["mean_diff"] = float(diff.mean())
        out["diff_lo"], out["diff_hi"] = (float(v) for v in np.quantile(means, [0.025, 0.975]))
    costs = {s.signal: s.cpu_s for s in analysis.table("accuracy") if s.kind == "fidelity"}
    cost_b, cost_f = costs.get(bf16), costs.get(fp32)
    out["speedup"] = cost_f / cost_b if cost_b and cost_f else None  # fp32 CPU-s / bf16 CPU-s (None: reference)
    others = [t.name for t in analysis.targets[1:]]
    if others:
        ia = analysis.values[others[0]].get(bf16)
        ib = analysis.values[others[0]].get(fp32)
        if ia is not None and ib is not None:
            ci = correlate(ia, ib, target=fp32, predictor=bf16, items="panel member(s) with both results")
            out["tau_" + others[0]] = ci.tau
    tau_ok = c.tau is not None and c.tau >= BF16_MIN_TAU
    acc_ok = out["mean_diff"] is not None and out["diff_hi"] >= 0 and out["mean_diff"] >= -BF16_TOLERANCE
    out["agrees"] = bool(tau_ok and acc_ok)
    return out


def bf16_verdict(analysis: AuditAnalysis) -> dict[str, Any]:
    """Whether bf16 may be the default precision (see the module docstring); ``may_default`` None: no twin."""
    pairs = []
    for f in analysis.fidelities:
        if f.precision == "bf16":
            twin = fp32_twin(f, analysis.fidelities)
            if twin is not None:
                pairs.append(_pair(analysis, f.name, twin.name, len(pairs)))
    rule = (f"bf16 may be the default when, for every bf16 fidelity and its fp32 twin, Kendall τ ≥ {BF16_MIN_TAU} "
            "between their accuracies and accuracy is not lower on average (the 95 % interval of the mean "
            f"bf16 − fp32 difference reaches 0, and the mean drop is under {BF16_TOLERANCE})")
    if not pairs:
        return {"pairs": [], "may_default": None, "rule": rule,
                "statement": "The audit has no bf16 fidelity with an fp32 twin: no verdict on bf16."}
    may = all(p["agrees"] for p in pairs)
    parts = []
    for p in pairs:
        tau = "n/a" if p["tau"] is None else f"{p['tau']:+.3f}"
        diff = "n/a" if p["mean_diff"] is None else (f"{p['mean_diff']:+.4f} [{p['diff_lo']:+.4f}, "
                                                     f"{p['diff_hi']:+.4f}]")
        speed = "" if p["speedup"] is None else f", {p['speedup']:.2f}× cheaper in CPU-s"
        parts.append(f"{p['bf16']} vs {p['fp32']}: τ = {tau} (n = {p['n']}), mean accuracy difference {diff}{speed}")
    verdict = "bf16 may be the default" if may else "bf16 should NOT be the default"
    return {"pairs": pairs, "may_default": may, "rule": rule, "statement": f"{verdict}: " + "; ".join(parts) + "."}


def _fmt(s: SignalResult) -> str:
    interval = "" if s.tau_lo is None else f" [{s.tau_lo:+.2f}, {s.tau_hi:+.2f}]"
    cost = "cost unknown" if s.cpu_s is None else f"{s.cpu_s:.3g} CPU-s"
    return f"{s.signal} (τ = {s.tau:+.2f}{interval}, n = {s.n}, {cost})"


def choose_default_proxy(analysis: AuditAnalysis, max_cpu_s: float = 40.0, target: str = "accuracy"
                         ) -> dict[str, Any]:
    """The default proxy by the rule of the module docstring; ``chosen`` None when no signal qualifies."""
    rows = analysis.table(target)
    base = {s.signal: s.tau for s in rows if s.kind == "baseline"}
    bar = max((abs(t) for t in base.values() if t is not None), default=0.0)
    refused: list[dict[str, Any]] = []
    affordable: list[SignalResult] = []
    for s in rows:
        if s.kind == "baseline":
            continue
        reason = ""
        if s.tau is None:
            reason = f"no rank correlation ({s.note or 'undefined'})"
        elif s.cpu_s is None:
            reason = "its cost was not recorded"
        elif s.cpu_s > max_cpu_s:
            reason = f"costs {s.cpu_s:.3g} CPU-s per evaluation, above the limit of {max_cpu_s:g}"
        if reason:
            refused.append({"signal": s.signal, "cpu_s": s.cpu_s, "reason": reason})
            continue
        affordable.append(s)
        if s.tau_lo is None or not s.tau_lo > bar:
            lo = "n/a" if s.tau_lo is None else f"{s.tau_lo:+.3f}"
            refused.append({"signal": s.signal, "cpu_s": s.cpu_s,
                            "reason": f"τ interval lower bound {lo} does not exceed the params/MACs bar {bar:.3f}"})
    eligible = [s for s in affordable if s.tau_lo is not None and s.tau_lo > bar]
    chosen = None
    if eligible:
        best = max(s.tau for s in eligible)  # type: ignore[type-var]
        tied = [s for s in eligible if s.tau >= best - TAU_TIE]  # type: ignore[operator]
        chosen = min(tied, key=lambda s: (s.cpu_s, -s.tau))  # type: ignore[operator]
    best_affordable = max(affordable, key=lambda s: s.tau, default=None)  # type: ignore[arg-type,return-value]
    reaching = [s for s in rows if s.kind != "baseline" and s.tau is not None and s.tau >= GOOD_TAU
                and s.cpu_s is not None]
    cheapest_good = min(reaching, key=lambda s: s.cpu_s, default=None)  # type: ignore[arg-type,return-value]
    base_text = ", ".join(f"{k} τ = {'n/a' if t is None else f'{t:+.2f}'}" for k, t in base.items())
    criterion = (f"highest Kendall τ (for {target}) among signals costing ≤ {max_cpu_s:g} CPU-s per evaluation "
                 f"whose 95 % τ interval lower bound exceeds the trivial predictors' bar max(|τ params|, |τ MACs|) "
                 f"= {bar:.3f}; signals within {TAU_TIE} of the best τ are tied and the cheapest of them wins")
    lines = []
    if chosen is not None:
        lines.append(f"Default proxy: {_fmt(chosen)}. It beats params and MACs ({base_text}).")
    elif best_affordable is not None:
        lines.append(f"No signal costing ≤ {max_cpu_s:g} CPU-s beats params and MACs ({base_text}); the best "
                     f"affordable is {_fmt(best_affordable)}.")
    else:
        lines.append(f"No signal costs ≤ {max_cpu_s:g} CPU-s per evaluation with a defined τ.")
    top = chosen or best_affordable
    reaches = top is not None and top.tau is not None and top.tau >= GOOD_TAU
    if not reaches:
        what = (f"the cheapest audited signal that does is {_fmt(cheapest_good)}" if cheapest_good is not None else
                "no audited signal does at any cost; a stronger cheap fidelity (more images × fewer epochs) or a "
                "larger panel would have to be audited")
        lines.append(f"No signal costing ≤ {max_cpu_s:g} CPU-s reaches τ ≥ {GOOD_TAU}: {what}.")
    return {
        "target": target, "max_cpu_s": max_cpu_s, "criterion": criterion, "bar": bar, "baselines": base,
        "chosen": None if chosen is None else chosen.signal,
        "tau": None if chosen is None else chosen.tau, "tau_lo": None if chosen is None else chosen.tau_lo,
        "tau_hi": None if chosen is None else chosen.tau_hi, "cpu_s": None if chosen is None else chosen.cpu_s,
        "n": None if chosen is None else chosen.n, "beats_baselines": chosen is not None,
        "reaches_good_tau": bool(reaches), "good_tau": GOOD_TAU,
        "best_affordable": None if best_affordable is None else best_affordable.signal,
        "cheapest_reaching_good_tau": None if cheapest_good is None else cheapest_good.signal,
        "eligible": [s.signal for s in eligible], "refused": refused, "statement": " ".join(lines),
    }


def search_defaults(analysis: AuditAnalysis, choice: dict[str, Any], *, fidelity: str | None = None,
                    proxy: str | None = None) -> dict[str, Any]:
    """How the search's default training fidelity and pre-screen proxy fare on this audit (module docstring)."""
    from nas.search.prescreen import DEFAULT_PROXY
    from nas.search.settings import DEFAULT_FIDELITY

    fidelity = fidelity or DEFAULT_FIDELITY
    proxy = proxy or DEFAULT_PROXY
    rows = {s.signal: s for s in analysis.table("accuracy")}
    lines: list[str] = []
    screen = rows.get(f"zc_{proxy}{NON_FINITE_LAST}") or rows.get(f"zc_{proxy}")
    readings = [s for s in rows.values() if s.kind == "zero-cost" and s.tau is not None]
    best_zc = max(readings, key=lambda s: s.tau, default=None)  # type: ignore[arg-type,return-value]
    screen_best = screen_clears = None
    if screen is None or screen.tau is None:
        lines.append(f"The search pre-screens with {proxy}; this audit has no τ for it.")
    else:
        screen_best = best_zc is not None and screen.tau >= best_zc.tau - TAU_TIE  # type: ignore[operator]
        screen_clears = screen.tau_lo is not None and screen.tau_lo > choice["bar"]
        rank = ("the best zero-cost reading here" if screen_best else
                f"not the best zero-cost reading here: {_fmt(best_zc)} ranks better")  # type: ignore[arg-type]
        lines.append(f"The search pre-screens with {proxy} (`nas search --prescreen`): {_fmt(screen)}; {rank}; its "
                     f"interval {'clears' if screen_clears else 'does not clear'} the params/MACs bar "
                     f"{choice['bar']:.3f}.")
    trained = rows.get(fidelity)
    chosen = choice["chosen"]
    if trained is None or trained.tau is None:
        lines.append(f"The search trains its trials at `{fidelity}`, which this audit has no τ for.")
    elif chosen == fidelity:
        lines.append(f"The search trains its trials at `{fidelity}`, the audit's default proxy: {_fmt(trained)}.")
    elif chosen is None:
        lines.append(f"The search trains its trials at `{fidelity}`: {_fmt(trained)}. No signal qualifies as the "
                     "default proxy (above), so the audit names nothing better to train at.")
    else:
        lines.append(f"The search trains its trials at `{fidelity}`: {_fmt(trained)}; the audit's default proxy "
                     f"is `{chosen}` instead.")
    return {
        "prescreen": proxy, "prescreen_signal": None if screen is None else screen.signal,
        "prescreen_tau": None if screen is None else screen.tau, "prescreen_is_best_zero_cost": screen_best,
        "prescreen_clears_bar": screen_clears, "best_zero_cost": None if best_zc is None else best_zc.signal,
        "fidelity": fidelity, "fidelity_tau": None if trained is None else trained.tau,
        "fidelity_is_default_proxy": chosen == fidelity, "statement": " ".join(lines),
    }
