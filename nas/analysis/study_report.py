"""The report of a study: report.md, CSVs, summary.json and PNGs (heatmaps per norm, level medians).

:func:`write_study_report` analyses a study run (:func:`nas.analysis.study.analyze_study`) and writes::

    report.md            the claims and verdicts, heatmaps, models, level tables, seed noise, infeasible/failed
    cells.csv            one row per design cell: levels, network, infeasible reason, n, median/mean/sd/min/max
    levels.csv           one row per factor level: medians with 95 % bootstrap intervals
    anova.csv            every model table (outcome, scope, method, term, df, SS, F, p, partial η², share)
    claims.csv           the five claims: estimate, interval, statistic, p, Holm p, rank check, verdict
    summary.json         all of the above as JSON
    heatmap_<outcome>.png  median per (family, activation), one panel per norm, ± seed SD, empty cells marked
    levels.png           medians with 95 % bootstrap intervals per factor level
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.files import _writing, check_report_dirs
from nas.analysis.markdown import _table, fmt_p
from nas.analysis.study import SPLIT_FACTOR, StudyAnalysis, analyze_study
from nas.analysis.study_models import ALIGNED_RANKS, VALUES
from nas.analysis.study_noise import CHANCE_MARGIN
from nas.atomic import atomic_write_text
from nas.objectives import default_direction

if TYPE_CHECKING:
    import pandas as pd

    from nas.run import RunStore

HEATMAP_AXES = ("block", "activation", SPLIT_FACTOR)  # rows, columns, panels (when the design has them)


def write_study_report(store: RunStore, out_dir: Path, *, plots: bool = True) -> StudyAnalysis:
    """Analyse a study run and write its report folder; returns the analysis (``files`` lists what was written).

    Raises RunStoreError for a run that is not a readable study, ConfigError for a folder that cannot be written.
    """
    out_dir = Path(out_dir)
    check_report_dirs([out_dir])
    a = analyze_study(store)
    written: list[str] = []
    with _writing(out_dir):
        for name, frame in (("cells.csv", a.cells), ("levels.csv", a.levels), ("anova.csv", anova_frame(a)),
                            ("claims.csv", claims_frame(a))):
            atomic_write_text(out_dir / name, frame.to_csv(index=False))
            written.append(name)
        images: dict[str, str] = {}
        if plots and len(a.analysed):
            for outcome in a.outcomes:
                name = f"heatmap_{outcome}.png"
                if heatmap_plot(out_dir / name, a, outcome) is not None:
                    images[outcome] = name
            levels_plot(out_dir / "levels.png", a)
            images["levels"] = "levels.png"
        written += list(images.values())
        a.files = sorted(out_dir / n for n in [*written, "report.md", "summary.json"])
        atomic_write_text(out_dir / "report.md", render_study(a, images))
        atomic_write_text(out_dir / "summary.json", json.dumps(a.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return a


def anova_frame(a: StudyAnalysis) -> pd.DataFrame:
    import pandas as pd

    rows = [{"outcome": t.outcome, "scope": t.scope, "method": t.method, "n": t.n, "df_resid": t.df_resid,
             **r.to_dict(), "note": t.note} for t in a.anova for r in t.rows]
    return pd.DataFrame(rows, columns=["outcome", "scope", "method", "n", "df_resid", "term", "df", "ss", "f", "p",
                                       "partial_eta2", "share", "note"])


def claims_frame(a: StudyAnalysis) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([c.to_dict() for c in a.claims])


# ---- plots -----------------------------------------------------------------------------------------------------


def _axes(a: StudyAnalysis) -> tuple[str, str | None, str | None]:
    """Row, column and panel factors of the heatmaps: block × activation per norm when the design has them."""
    varying = [f for f in a.factors if len(a.factors[f]) > 1] or list(a.factors)
    chosen = [f for f in HEATMAP_AXES if f in varying]
    chosen += [f for f in varying if f not in chosen]
    return chosen[0], (chosen[1] if len(chosen) > 1 else None), (chosen[2] if len(chosen) > 2 else None)


def heatmap_plot(path: Path, a: StudyAnalysis, outcome: str) -> Path | None:
    """Median ``outcome`` per (row level, column level), one panel per panel level, annotated median ± seed SD.

    Infeasible cells are hatched grey, cells whose every trial failed are crossed; a cell short of replicates
    shows its n. Accuracy medians at chance are drawn in dark grey below the colour scale, so that the scale
    spreads over the networks that learned. Factors beyond three are pooled (said in the title).
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from nas.analysis.plots import _figure, save

    row_f, col_f, panel_f = _axes(a)
    rows, cols = a.factors[row_f], a.factors[col_f] if col_f else [""]
    panels = a.factors[panel_f] if panel_f else [""]
    done = a.analysed[np.isfinite(a.analysed[outcome].to_numpy(dtype=float))]
    if done.empty:
        return None

    def select(frame: pd.DataFrame, r: str, c: str, panel: str) -> pd.DataFrame:
        mask = frame[row_f] == r
        mask &= (frame[col_f] == c) if col_f else True
        mask &= (frame[panel_f] == panel) if panel_f else True
        return frame[mask]

    grids = np.full((len(panels), len(rows), len(cols)), np.nan)
    spread = np.full_like(grids, np.nan)
    counts = np.zeros(grids.shape, dtype=int)
    for k, panel in enumerate(panels):
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                x = select(done, r, c, panel)[outcome].to_numpy(dtype=float)
                counts[k, i, j] = len(x)
                if len(x):
                    grids[k, i, j] = float(np.median(x))
                    spread[k, i, j] = float(np.std(x, ddof=1)) if len(x) > 1 else np.nan
    floor = a.chance + CHANCE_MARGIN if outcome == "accuracy" and a.chance is not None else -np.inf
    learned = grids[np.isfinite(grids) & (grids >= floor)]
    shown = learned if len(learned) else grids[np.isfinite(grids)]
    norm = Normalize(float(shown.min()), float(shown.max()) + 1e-12)
    cmap = colormaps["viridis" if default_direction(outcome) == "maximize" else "viridis_r"].with_extremes(
        under="#3a3a3a")
    fig, axes = _figure(0.95 * len(cols) * len(panels) + 2.2, 0.62 * len(rows) + 1.6, ncols=len(panels),
                        squeeze=False)
    for k, (ax, panel) in enumerate(zip(axes[0], panels, strict=True)):
        image = ax.imshow(np.ma.masked_invalid(grids[k]), cmap=cmap, norm=norm, aspect="auto")
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                value, n = grids[k, i, j], counts[k, i, j]
                if n:
                    cells = len(select(a.cells, r, c, panel))
                    text = f"{value:.3f}\n" + (f"±{spread[k, i, j]:.3f}" if n > 1 else "(n=1)")
                    text += f" n={n}" if 1 < n < a.repeats * max(cells, 1) else ""
                    shade = cmap(norm(value))
                    light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="black" if light else "white")
                    continue
                label, hatch = _empty_cell(a, select(a.cells, r, c, panel))
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#eeeeee", edgecolor="#999999",
                                       hatch=hatch, lw=0))
                ax.text(j, i, label, ha="center", va="center", fontsize=6, color="#333333")
        ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel(col_f or "")
        ax.set_ylabel(row_f)
        ax.set_title(f"{panel_f} = {panel}" if panel_f else "all cells", fontsize=9)
    below = bool(np.any(grids[np.isfinite(grids)] < norm.vmin))
    fig.colorbar(image, ax=list(axes[0]), shrink=0.85, extend="min" if below else "neither",
                 label=f"median {outcome}" + (" (dark grey: at chance)" if below else ""))
    title = f"{a.run_name}: median {outcome} per cell (± SD over seeds)"
    pooled = [f for f in a.factors if f not in (row_f, col_f, panel_f)]
    if pooled:
        title += f"; pooled over {', '.join(pooled)}"
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def _empty_cell(a: StudyAnalysis, cells: pd.DataFrame) -> tuple[str, str]:
    """Label and hatch of a heatmap square without a trial: infeasible, another cell's network, or failed."""
    if len(cells) and (cells["infeasible"] != "").all():
        return "infeasible", "///"
    if len(cells) and (cells["same_as"] >= 0).all():
        cell = cells.iloc[0]
        kept = a.cells[a.cells["cell"] == cell["same_as"]].iloc[0]
        differ = ", ".join(f"{f}={kept[f]}" for f in a.factors if kept[f] != cell[f])
        return f"same network\nas {differ}", ""
    if len(cells) and not cells["recorded"].any():
        return "no trial yet", ""
    return "failed", "xx"


def levels_plot(path: Path, a: StudyAnalysis) -> Path:
    """Per factor (rows) and outcome (columns): each level's median with its 95 % bootstrap interval."""
    from nas.analysis.plots import _figure, save

    factors = list(a.factors)
    heights = [max(len(a.factors[f]), 2) for f in factors]
    fig, axes = _figure(9.0, 0.32 * sum(heights) + 1.2 * len(factors), nrows=len(factors), ncols=len(a.outcomes),
                        squeeze=False, gridspec_kw={"height_ratios": heights})
    for i, factor in enumerate(factors):
        rows = a.levels[a.levels["factor"] == factor]
        pos = np.arange(len(rows))[::-1]
        for j, outcome in enumerate(a.outcomes):
            ax = axes[i][j]
            m = rows[f"{outcome}_median"].to_numpy(dtype=float)
            err = np.vstack([m - rows[f"{outcome}_lo"].to_numpy(dtype=float),
                             rows[f"{outcome}_hi"].to_numpy(dtype=float) - m])
            ax.errorbar(m, pos, xerr=np.where(np.isfinite(err), err, 0), fmt="o", ms=4, capsize=3, color="#1f77b4")
            ax.set_yticks(pos, rows["level"].tolist(), fontsize=8)
            ax.grid(axis="x", alpha=0.3)
            if i == len(factors) - 1:
                ax.set_xlabel(f"median {outcome} [95 % bootstrap interval]")
            if j == 0:
                ax.set_ylabel(factor)
    fig.suptitle(f"{a.run_name}: medians per factor level", fontsize=10)
    return save(fig, path)


# ---- report.md -------------------------------------------------------------------------------------------------


def _interval(m: float, lo: float, hi: float, digits: int = 4) -> str:
    if not np.isfinite(m):
        return "–"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(lo) else f"{m:.{digits}f}"


def render_study(a: StudyAnalysis, images: dict[str, str]) -> str:
    cfg = a.config
    budget = cfg.budget.describe() if cfg.budget else "none (absolute widths)"
    lines = [f"# Study `{a.run_name}`: {' × '.join(a.factors)}", "",
             f"Run folder `{a.run_path}`; dataset {cfg.dataset}; budget {budget}; fidelity {cfg.fidelity.name}; "
             f"seed {cfg.seed} (replicate r trains with seed {cfg.seed} + r); interference metric "
             f"{a.interference}.", "",
             f"Generated on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.", ""]
    lines += _design_section(a)
    lines += _claims_section(a)
    lines += ["## Heatmaps", ""]
    for outcome in a.outcomes:
        if outcome in images:
            lines += [f"![median {outcome}]({images[outcome]})", ""]
    if not any(o in images for o in a.outcomes):
        lines += ["Not drawn (no completed trial, or plots were turned off).", ""]
    lines += _models_section(a)
    lines += _levels_section(a, images)
    lines += _noise_section(a)
    lines += _missing_section(a)
    if a.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in a.notes], ""]
    lines += ["## Files", "", "`cells.csv` (per cell: medians, means, seed SD, n), `levels.csv`, `anova.csv`, "
              "`claims.csv`, `summary.json`.", ""]
    return "\n".join(lines)


def _design_section(a: StudyAnalysis) -> list[str]:
    planned = int(a.cells["planned"].sum())
    lines = ["## Design", ""]
    lines += _table(["factor", "levels"], [[f, ", ".join(v)] for f, v in a.factors.items()])
    held = ", ".join(f"{k} = {v}" for k, v in a.fixed.items()) or "nothing"
    lines += [f"Held for every cell: {held}. Replicates per cell: {a.repeats}. Cells: {len(a.cells)} "
              f"({len(a.infeasible)} infeasible); trials planned {planned}, recorded {len(a.trials)}, complete "
              f"{len(a.complete)}, failed {len(a.failed)} (of which diverged after training, accuracy kept: "
              f"{int(a.cells['diverged'].sum())}).", ""]
    if a.canonical:
        lines += ["Each family's canonical settings (held in every cell of that family):", ""]
        lines += _table(["family", "settings"], [[k, ", ".join(f"{n} = {v}" for n, v in (s or {}).items()) or "–"]
                                                 for k, s in a.canonical.items()])
    return lines


def _claims_section(a: StudyAnalysis) -> list[str]:
    lines = ["## The paper's claims", "",
             "Hollard et al. (2025), as far as the abstract and secondary summaries state them. Claims (a)–(d) are "
             "planned contrasts of cell means, t-tested in the cell-means model (error: pooled within-cell "
             "variance); (e) is Spearman's ρ over cells. **Verdict rule:** the five p-values are Holm-adjusted "
             "together; *supported* when the estimate has the claimed sign and the adjusted p < 0.05, "
             "*contradicted* when it has the opposite sign and the adjusted p < 0.05, *not supported* otherwise. "
             "The rank check repeats each contrast on the outcome's ranks (unadjusted p).", ""]
    rows = []
    for c in a.claims:
        claimed = "> 0" if c.sign > 0 else "< 0"
        number = (f"{c.statistic_name} = {c.statistic:.2f}" + (f" (df {c.df})" if c.df else "")) if c.tested else "–"
        estimate = _interval(c.estimate, c.lo, c.hi) if c.tested else "–"
        rank = fmt_p(c.rank_p) if np.isfinite(c.rank_p) else "–"
        rows.append([f"({c.key}) {c.statement}", f"{c.test}; claimed {claimed}; n = {c.n}", estimate, number,
                     fmt_p(c.p), fmt_p(c.p_holm), rank, f"**{c.verdict}**" + (f" — {c.note}" if c.note else "")])
    lines += _table(["claim", "test", "estimate [95 % CI]", "statistic", "p", "Holm p", "rank check p", "verdict"],
                    rows)
    return lines


def _models_section(a: StudyAnalysis) -> list[str]:
    lines = ["## Factorial models", "",
             "Each outcome is modelled on the full factorial of the design's factors (every main effect and "
             "interaction), so the residual is the seed-to-seed variation inside cells. Sums of squares are type "
             "II (each term after every term that does not contain it), from nested statsmodels OLS fits; F is "
             "tested against the full model's residual. Empty cells (infeasible, or every replicate failed) cost "
             "the terms that involve them degrees of freedom instead of breaking the model. Effect sizes: partial "
             "η² = SS/(SS + SS_resid) and the share of the total variance SS/SS_total.", "",
             "**Values are primary**: effects on values add, and the claims are differences in accuracy and "
             "interference units. **Aligned ranks (ART, Wobbrock et al. 2011) are the check**: each term is "
             "tested on the ranks of the response aligned for it, robust to the networks stuck at chance beside "
             "trained ones (a heavy tail that inflates the values' residual) without the spurious interactions "
             "that plain ranks create when main effects are large.", ""]
    for outcome in a.outcomes:
        values, ranks = a.anova_table(outcome, VALUES), a.anova_table(outcome, ALIGNED_RANKS)
        if values is None:
            continue
        lines += [f"### {outcome}", "",
                  f"{values.n} trials, residual df {values.df_resid}." + (f" Note: {values.note}." if values.note
                                                                          else ""), ""]
        rows = []
        for r in values.rows:
            k = ranks.row(r.term) if ranks else None
            rows.append([r.term, r.df, f"{r.f:.2f}", fmt_p(r.p), f"{r.partial_eta2:.3f}", f"{r.share:.3f}",
                         f"{k.f:.2f}" if k else "–", fmt_p(k.p) if k else "–", f"{k.partial_eta2:.3f}" if k else "–"])
        lines += _table(["term", "df", "F", "p", "partial η²", "share of variance", "ART F", "ART p",
                         "ART partial η²"], rows)
        split = [t for t in a.anova if t.outcome == outcome and t.scope != "all cells"]
        if split:
            lines += [f"The same model within each level of {SPLIT_FACTOR} (values; ART p in brackets):", ""]
            terms = list(dict.fromkeys(r.term for t in split for r in t.rows))
            scopes = list(dict.fromkeys(t.scope for t in split))
            body = []
            for term in terms:
                cells = []
                for scope in scopes:
                    v, k = a.anova_table(outcome, VALUES, scope), a.anova_table(outcome, ALIGNED_RANKS, scope)
                    rv, rk = (v.row(term) if v else None), (k.row(term) if k else None)
                    cells.append("–" if rv is None else f"F = {rv.f:.2f}, p = {fmt_p(rv.p)}, partial η² = "
                                 f"{rv.partial_eta2:.3f} [{fmt_p(rk.p) if rk else '–'}]")
                body.append([term, *cells])
            lines += _table(["term", *scopes], body)
    return lines


def _levels_section(a: StudyAnalysis, images: dict[str, str]) -> list[str]:
    lines = ["## Factor levels", "",
             "Median of each outcome over the trials that measured it at each level, with 95 % percentile-bootstrap "
             "intervals (1,000 resamples, seeded).", ""]
    for factor in a.factors:
        rows = a.levels[a.levels["factor"] == factor]
        lines += [f"### {factor}", ""]
        lines += _table(["level", "cells", "trials", *[f"median {o} [95 % CI]" for o in a.outcomes]],
                        [[r["level"], r["cells"], r["trials"],
                          *[_interval(r[f"{o}_median"], r[f"{o}_lo"], r[f"{o}_hi"]) for o in a.outcomes]]
                         for r in rows.to_dict("records")])
    if "levels" in images:
        lines += [f"![medians per level]({images['levels']})", ""]
    return lines


def _noise_section(a: StudyAnalysis) -> list[str]:
    lines = ["## Seed noise", "",
             "A cell's replicates are one network under different seeds (initialisation and data order). The "
             "pooled seed SD is s_p = √(Σ_c (n_c − 1) s_c² / Σ_c (n_c − 1)) over cells with two or more finite "
             "values, with df = Σ_c (n_c − 1). The smallest difference the study resolves between two cell means "
             f"of r = {a.repeats} replicates (least significant difference, two-sided α = 0.05) is "
             "LSD = t(0.975, df) · s_p · √(2/r); between two single runs it is t(0.975, df) · s_p · √2.", ""]
    rows = []
    for key, est in a.noise.items():
        if est is None:
            rows.append([key, "–", "–", "–", "–", "–", "no cell with two finite replicates"])
            continue
        extra = f"{est.excluded} cell(s) with a replicate at chance left out" if est.excluded else ""
        rows.append([key, f"{est.sd:.4f}", est.df, est.groups, f"{est.resolvable(a.repeats):.4f}",
                     f"{est.resolvable(1):.4f}", extra])
    lines += _table(["outcome", "pooled seed SD", "df", "cells", f"LSD, means of {a.repeats}", "LSD, single runs",
                     "note"], rows)
    if a.chance is not None:
        lines += [f"The noise of accuracy used to mark fronts (`nas analyze --noise-from`) is the first row: cells "
                  f"where a replicate scored below chance + 0.05 ({a.chance + 0.05:.2f}) are left out, since a net "
                  "that sometimes does not learn is not seed noise of a trained one.", ""]
    for outcome in a.outcomes:
        sd = a.cells[f"{outcome}_sd"].dropna()
        if len(sd):
            top = a.cells.loc[sd.sort_values(ascending=False).index[:5]]
            worst = "; ".join(f"{_label(a, r)} {r[f'{outcome}_sd']:.4f}" for r in top.to_dict("records"))
            lines += [f"Per-cell seed SD of {outcome}: median {sd.median():.4f}, largest: {worst}.", ""]
    return lines


def _label(a: StudyAnalysis, row: dict[str, Any]) -> str:
    return "/".join(str(row[f]) for f in a.factors)


def _missing_section(a: StudyAnalysis) -> list[str]:
    lines = ["## Infeasible cells, shared networks and failed trials", ""]
    if len(a.infeasible):
        lines += _table(["cell", *a.factors, "reason"],
                        [[r["cell"], *[r[f] for f in a.factors], r["infeasible"]]
                         for r in a.infeasible.to_dict("records")])
    else:
        lines += ["Every cell was feasible.", ""]
    if len(a.failed):
        if a.cells["diverged"].any():
            lines += ["A failed trial that trained to the end (its objective was not finite: the network diverged, "
                      "its activations overflowed) measured its accuracy; that accuracy is analysed like any other "
                      "and only its interference is missing.", ""]
        lines += _table(["trial", "cell", *a.factors, "replicate", "status", "reason"],
                        [[r["trial_id"], r["cell"], *[r[f] for f in a.factors], r["replicate"], r["status"],
                          r["reason"] or "–"] for r in a.failed.to_dict("records")])
    else:
        lines += ["No trial failed.", ""]
    if len(a.aliases):
        pairs = [f"{_label(a, r)} → cell {r['same_as']}" for r in a.aliases.to_dict("records")]
        lines += [f"Cells naming another cell's network (a family that does not read a factor, e.g. convnext and "
                  f"norm): their trials count once, for the other cell, and they are left out of the models: "
                  f"{'; '.join(pairs)}.", ""]
    short = a.cells[(a.cells["planned"] > 0) & (a.cells["complete"] < a.cells["planned"]) & (a.cells["recorded"] > 0)]
    if len(short):
        lines += [f"Cells short of replicates: {', '.join(_label(a, r) for r in short.to_dict('records'))}.", ""]
    pending = a.cells[(a.cells["planned"] > 0) & (a.cells["recorded"] == 0)]
    if len(pending):
        lines += [f"{len(pending)} cell(s) have no trial record yet (the study is unfinished; `nas study --resume` "
                  "continues it).", ""]
    chance = a.cells[a.cells["at_chance"] > 0]
    if len(chance):
        lines += [f"Cells with a replicate at chance (a result, kept in the models): "
                  f"{', '.join(_label(a, r) for r in chance.to_dict('records'))}.", ""]
    return lines
