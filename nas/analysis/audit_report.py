"""The files of an audit report: report.md, audit.csv, panel.csv, summary.json and PNGs (written atomically).

``audit.csv`` has one row per (target, signal) with every statistic of ``nas.analysis.audit``;
``panel.csv`` one row per panel member with its raw values at every fidelity (empty: no result).
PNGs: ``scatter_<signal>.png`` (signal rank against reference rank, 1 = best, τ in the title; one panel
per target)
and ``tau_vs_cost_<target>.png`` (Kendall τ with its 95 % interval against CPU-seconds per evaluation,
log scale; params and MACs, which cost nothing, stand at the left edge, marked "analytic").
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from nas.analysis.audit import CI_LEVEL, TOP_SHARE, AuditAnalysis, SignalResult, analyze_audit
from nas.analysis.audit_choice import bf16_verdict, choose_default_proxy, search_defaults
from nas.analysis.files import _write_csv, _writing, check_report_dirs, safe_name
from nas.analysis.markdown import _table
from nas.atomic import atomic_write_text, jsonable
from nas.run import RunStore

_KIND_COLOR = {"fidelity": "#1f77b4", "zero-cost": "#ff7f0e", "baseline": "#7f7f7f", "combination": "#2ca02c"}
_COLUMNS = ("target", "signal", "kind", "orientation", "n", "tau", "tau_lo", "tau_hi", "tau_p", "rho", "rho_lo",
            "rho_hi", "rho_p", "top_k", "top_overlap", "pareto_recovery", "cpu_s", "dropped", "note")


def write_audit_report(store: RunStore, out_dir: Path, *, plots: bool = True, n_resamples: int | None = None,
                       seed: int = 0, max_cpu_s: float = 40.0) -> AuditAnalysis:
    """Analyse ``store`` and write its report to ``out_dir`` (created when missing); returns the analysis."""
    import pandas as pd

    out_dir = Path(out_dir)
    check_report_dirs([out_dir])
    kwargs: dict[str, Any] = {} if n_resamples is None else {"n_resamples": n_resamples}
    analysis = analyze_audit(store, seed=seed, max_cpu_s=max_cpu_s, **kwargs)
    choice = choose_default_proxy(analysis, max_cpu_s=max_cpu_s)
    bf16 = bf16_verdict(analysis)
    defaults = search_defaults(analysis, choice)
    files: dict[str, str] = {}
    with _writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = [{k: v for k, v in s.to_dict().items() if k in _COLUMNS} | {"dropped": len(s.dropped)}
                for s in analysis.signals]
        _write_csv(out_dir / "audit.csv", pd.DataFrame(rows, columns=list(_COLUMNS)))
        _write_csv(out_dir / "panel.csv", panel_frame(analysis))
        files.update(audit_csv="audit.csv", panel_csv="panel.csv")
        if plots:
            files.update(_plots(analysis, out_dir, max_cpu_s))
        files.update(report_md="report.md", summary_json="summary.json")
        atomic_write_text(out_dir / "report.md", render_audit(analysis, choice, bf16, files, defaults))
        payload = analysis.to_dict() | {"default_proxy": choice, "bf16": bf16, "search_defaults": defaults,
                                        "files": files}
        atomic_write_text(out_dir / "summary.json", json.dumps(jsonable(payload), indent=2, ensure_ascii=False) + "\n")
    analysis.files = sorted(out_dir / name for name in files.values())
    return analysis


def panel_frame(analysis: AuditAnalysis) -> Any:
    """One row per panel member: index, architecture, then every fidelity's raw value of every target."""
    import pandas as pd

    frame = pd.DataFrame({"panel_index": range(len(analysis.panel)), "arch": analysis.panel})
    for target, by_fid in analysis.values.items():
        for fid, values in by_fid.items():
            frame[f"{target}@{fid}"] = values
    return frame


# ---- plots -------------------------------------------------------------------------------------------------


def _ranks(values: list[float]) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values, dtype=float), method="average")  # 1 = best (values are oriented)


def scatter_plot(path: Path, results: list[SignalResult], reference: str) -> Path:
    """One panel per target: signal rank against reference rank (1 = best), the reference's top quarter in red."""
    from nas.analysis.plots import _figure, save

    fig, axes = _figure(5.0 * len(results), 4.8, ncols=len(results), squeeze=False)
    for ax, s in zip(axes[0], results, strict=True):
        x, y = _ranks([p[1] for p in s.points]), _ranks([p[2] for p in s.points])
        top = y <= max(1, math.ceil(TOP_SHARE * len(y)))
        ax.scatter(x[~top], y[~top], s=26, color=_KIND_COLOR.get(s.kind, "#333333"), alpha=0.7,
                   label="other members")
        ax.scatter(x[top], y[top], s=40, color="#d62728", edgecolors="black", linewidths=0.6,
                   label="reference top 25 %")
        n = len(s.points)
        ax.plot([1, n], [1, n], color="black", lw=0.8, ls="--", label="same rank")
        ax.invert_xaxis()
        ax.invert_yaxis()
        ax.set_xlabel(f"rank by {_short(s.signal, 40)} ({s.orientation}; 1 = best)", fontsize=8)
        ax.set_ylabel(f"rank by {s.target} at the reference (1 = best)", fontsize=8)
        tau = "n/a" if s.tau is None else f"{s.tau:+.2f}" + ("" if s.tau_lo is None else
                                                               f" [{s.tau_lo:+.2f}, {s.tau_hi:+.2f}]")
        ax.set_title(f"{s.target}: τ = {tau}, n = {n}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{_short(results[0].signal, 60)} against {_short(reference, 40)}", fontsize=10)
    return save(fig, path)


LABEL_X_NEAR = 0.35  # points closer than this in log10(CPU-s) share a label column
LABEL_GAP = 0.045  # least vertical distance between two labels of one column, in τ
LABEL_X_SHIFT = 0.12  # labels sit this far right of their point, in log10(CPU-s)
LABEL_ROOM = 1.1  # room kept right of the costliest point for its label, in log10(CPU-s)


def spread_labels(points: list[tuple[float, float]], *, x_near: float, gap: float) -> list[float]:
    """Label heights for ``(x, y)`` points: points whose x lie within ``x_near`` of a neighbour form one column,
    whose labels keep the points' order and at least ``gap`` between them, centred on the points' mean height."""
    heights = [y for _, y in points]
    order = sorted(range(len(points)), key=lambda i: points[i][0])
    columns: list[list[int]] = []
    for i in order:
        if columns and points[i][0] - points[columns[-1][-1]][0] < x_near:
            columns[-1].append(i)
        else:
            columns.append([i])
    for column in columns:
        column.sort(key=lambda i: points[i][1])
        placed = [points[column[0]][1]]
        for i in column[1:]:
            placed.append(max(points[i][1], placed[-1] + gap))
        shift = sum(points[i][1] for i in column) / len(column) - sum(placed) / len(placed)
        for i, y in zip(column, placed, strict=True):
            heights[i] = y + shift
    return heights


def tau_cost_plot(path: Path, rows: list[SignalResult], target: str, max_cpu_s: float) -> Path:
    """Kendall τ (95 % interval as error bars) against CPU-seconds per evaluation, log x."""
    from nas.analysis.plots import _figure, save

    fig, ax = _figure(9.0, 5.6)
    points: list[tuple[float, float, str, str]] = []  # x, τ, label, colour
    shown_rows = [s for s in rows if s.tau is not None and s.cpu_s is not None]
    positive = [s.cpu_s for s in shown_rows if s.cpu_s and s.cpu_s > 0]
    floor = min(positive) / 4 if positive else 0.1
    for kind, color in _KIND_COLOR.items():
        group = [s for s in shown_rows if s.kind == kind]
        if not group:
            continue
        x = np.array([s.cpu_s if s.cpu_s and s.cpu_s > 0 else floor for s in group])
        y = np.array([s.tau for s in group], dtype=float)
        lo = np.array([s.tau if s.tau_lo is None else s.tau_lo for s in group], dtype=float)
        hi = np.array([s.tau if s.tau_hi is None else s.tau_hi for s in group], dtype=float)
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=color, capsize=3, label=kind)
        points += [(float(xi), float(yi), _short(s.signal, 34) + (" (analytic)" if not s.cpu_s else ""), color)
                   for s, xi, yi in zip(group, x, y, strict=True)]
    label_y = spread_labels([(math.log10(px), py) for px, py, _, _ in points], x_near=LABEL_X_NEAR, gap=LABEL_GAP)
    for (px, py, label, color), ly in zip(points, label_y, strict=True):
        ax.annotate(label, (px, py), xytext=(px * 10 ** LABEL_X_SHIFT, ly), textcoords="data", fontsize=7,
                    va="center", color=color, arrowprops={"arrowstyle": "-", "lw": 0.5, "color": color})
    ax.set_xscale("log")
    if points:
        ax.set_xlim(min(px for px, *_ in points) / 2, max(px for px, *_ in points) * 10 ** LABEL_ROOM)
    ax.axvline(max_cpu_s, color="#d62728", ls="--", lw=0.9, label=f"limit {max_cpu_s:g} CPU-s")
    ax.axhline(0.6, color="black", ls=":", lw=0.8, label="τ = 0.6")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel("CPU-seconds per evaluation (log; analytic signals at the left edge)")
    ax.set_ylabel(f"Kendall τ against the reference's {target}")
    ax.set_title(f"Rank agreement against cost — {target} ({round(CI_LEVEL * 100)} % bootstrap intervals)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return save(fig, path)


def _plots(analysis: AuditAnalysis, d: Path, max_cpu_s: float) -> dict[str, str]:
    files: dict[str, str] = {}
    for target in analysis.targets:
        name = f"tau_vs_cost_{safe_name(target.name)}.png"
        tau_cost_plot(d / name, analysis.table(target.name), target.name, max_cpu_s)
        files[f"tau_vs_cost_{target.name}"] = name
    for signal in dict.fromkeys(s.signal for s in analysis.signals):
        results = [s for s in analysis.signals if s.signal == signal and s.points]
        if results:
            name = f"scatter_{safe_name(signal)}.png"
            scatter_plot(d / name, results, analysis.reference)
            files[f"scatter_{signal}"] = name
    return files


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- report.md ---------------------------------------------------------------------------------------------


def _interval(v: float | None, lo: float | None, hi: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.3f}" + ("" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]")


def _share(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _cost(v: float | None) -> str:
    return "–" if v is None else ("0 (analytic)" if v == 0 else f"{v:.3g}")


def render_audit(analysis: AuditAnalysis, choice: dict[str, Any], bf16: dict[str, Any], files: dict[str, str],
                 defaults: dict[str, Any] | None = None) -> str:
    """report.md of an audit (no I/O)."""
    ref = analysis.fidelity(analysis.reference)
    lines = [f"# Audit `{analysis.run}`: how well cheap signals rank the panel", "",
             f"Generated by `nas audit` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from `{analysis.root}`.",
             "", f"- Panel: {len(analysis.panel)} architectures"
             + ("" if analysis.median_params is None else f" (median {analysis.median_params:,.0f} parameters)")
             + f"; {analysis.threads} thread(s) per evaluation (the run's setting; an evaluation that "
             "recorded its own thread count is costed at it).",
             f"- Reference: {ref.describe()}; {_cost(analysis.reference_cpu_s)} CPU-s per evaluation.",
             "- Other fidelities: " + ("; ".join(f.describe() for f in analysis.fidelities if f.name != ref.name)
                                       or "none") + ".",
             f"- Intervals: {round(CI_LEVEL * 100)} % percentile, paired bootstrap over panel members "
             f"({analysis.n_resamples:,} resamples, seed {analysis.seed}).", "",
             "**Sign convention.** Every value is turned into \"higher is better\" before ranking: accuracy "
             "higher, interference lower (for the reference and for every fidelity), zero-cost scores higher, "
             "params and MACs *more is better*. τ > 0: the signal ranks members as the reference does; τ < 0: "
             "the reverse. No sign is chosen after seeing the data. A zero-cost proxy that is not finite for "
             "some members also gets a row `… (non-finite last)`: the proxy as the search's pre-screen reads it, "
             "those members ranked below every finite score (its values are ranks); the plain row leaves them "
             "out.", "",
             "**Columns.** n = members with both values; top-25 % overlap = share of the reference's top "
             "quarter inside the signal's top quarter; Pareto recovery = share of the reference's accuracy × "
             "interference front on the fidelity's own front (a fidelity) or in the signal's top-k, k = front "
             "size (a single score); CPU-s = median over evaluations of seconds × threads.", ""]
    for target in analysis.targets:
        lines += [f"## {target.name} ({target.direction}d at the reference, n = "
                  f"{analysis.reference_n.get(target.name, 0)})", ""]
        rows = [[f"`{s.signal}`", s.kind, s.n, _interval(s.tau, s.tau_lo, s.tau_hi),
                 _interval(s.rho, s.rho_lo, s.rho_hi), _share(s.top_overlap), _share(s.pareto_recovery),
                 _cost(s.cpu_s), len(s.dropped)] for s in analysis.table(target.name)]
        lines += _table(["signal", "kind", "n", "Kendall τ [95 % CI]", "Spearman ρ [95 % CI]", "top-25 % overlap",
                         "Pareto recovery", "CPU-s / eval", "dropped"], rows)
        key = f"tau_vs_cost_{target.name}"
        if key in files:
            lines += [f"![τ against cost]({files[key]})", ""]
        notes = [f"- `{s.signal}`: {s.note}" for s in analysis.table(target.name) if s.note]
        lines += [*notes, ""] if notes else []
    if analysis.reference_front:
        lines += [f"Reference Pareto front (accuracy × {analysis.targets[1].name}): panel members "
                  + ", ".join(map(str, analysis.reference_front)) + ".", ""]
    lines += ["## Default proxy", "", choice["statement"], "", f"Criterion: {choice['criterion']}.", ""]
    if choice["refused"]:
        lines += _table(["refused signal", "CPU-s / eval", "why"],
                        [[f"`{r['signal']}`", _cost(r["cpu_s"]), r["reason"]] for r in choice["refused"]])
    if defaults is not None:
        lines += ["## The search's defaults against this audit", "", defaults["statement"], ""]
    lines += ["## bf16 against fp32", "", bf16["statement"], "", f"Rule: {bf16['rule']}.", ""]
    lines += _dropped_section(analysis)
    scatters = [(k, v) for k, v in files.items() if k.startswith("scatter_")]
    if scatters:
        lines += ["## Scatter plots", ""] + [f"- [{k.removeprefix('scatter_')}]({v})" for k, v in scatters] + [""]
    return "\n".join(lines)


def _dropped_section(analysis: AuditAnalysis) -> list[str]:
    signals: dict[tuple[int, str], list[str]] = {}
    for d in analysis.reference_dropped:
        signals.setdefault((d.panel_index, d.reason), []).append("reference")
    for s in analysis.signals:
        for d in s.dropped:
            key = (d.panel_index, d.reason)
            if s.signal not in signals.get(key, []):
                signals.setdefault(key, []).append(s.signal)
    if not signals:
        return ["## Dropped members", "", "None: every member has every value.", ""]
    rows = [[i, f"`{_short(analysis.panel[i], 60)}`", reason, ", ".join(f"`{x}`" for x in names[:6])
             + (f" (+{len(names) - 6})" if len(names) > 6 else "")] for (i, reason), names in sorted(signals.items())]
    return ["## Dropped members", "", *_table(["member", "architecture", "reason", "left out of"], rows)]
