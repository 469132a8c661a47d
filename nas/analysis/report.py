"""`nas analyze`: analyse runs, write results/<run>/report/ (report.md, PNGs, pareto.csv), print a summary."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.analyze import ERROR, FidelityAnalysis, analyze_fidelity, edf_metrics, pick_interference
from nas.analysis.features import CHOICES, value_order
from nas.analysis.objectives import (
    NON_OBJECTIVE_COLUMNS,
    Objective,
    interference_name,
    resolve_objectives,
)
from nas.analysis.pareto import ReferencePoint, front_ranks, hypervolume_history, loss_matrix, reference_point
from nas.analysis.store import Run, load_run
from nas.atomic import atomic_write_bytes
from nas.errors import ConfigError, RunStoreError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

FORMATS: tuple[str, ...] = ("table", "csv", "json")
ID_COLUMNS: tuple[str, ...] = ("rank", "trial_id", "arch", "arch_hash", "params", "macs", "fidelity", "epochs", "seed")
INTEGER_COLUMNS: frozenset[str] = frozenset({"params", "macs", "epochs", "seed"})
MAX_FRONT_ROWS_MD = 50
MAX_FRONT_ROWS_TERMINAL = 15


@dataclass
class RunReport:
    """One analysed run: where its report is and the analysis of each of its fidelities."""

    name: str
    sampler: str
    label: str
    path: Path
    report_dir: Path
    analyses: list[FidelityAnalysis]
    files: list[Path] = field(default_factory=list)

    @property
    def report_md(self) -> Path:
        return self.report_dir / "report.md"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.name,
            "sampler": self.sampler,
            "path": str(self.path),
            "report": str(self.report_md),
            "fidelities": [a.to_dict(front_columns=front_columns(a)) for a in self.analyses],
        }


@dataclass
class Comparison:
    """Hypervolume histories of several runs at one fidelity under one shared reference point."""

    fidelity: str
    objectives: list[Objective]
    reference: ReferencePoint
    rows: list[dict[str, Any]]  # run, sampler, rows, analysed, front, hypervolume
    plot: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fidelity": self.fidelity,
            "objectives": [o.to_dict() for o in self.objectives],
            "reference_point": self.reference.to_dict(self.objectives),
            "runs": self.rows,
            "plot": str(self.plot) if self.plot else None,
        }


@dataclass
class AnalysisSummary:
    """What `nas analyze` did: per run its report, per fidelity its numbers, and any cross-run comparison."""

    runs: list[RunReport]
    comparisons: list[Comparison] = field(default_factory=list)
    comparison_md: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def report_paths(self) -> list[Path]:
        return [r.report_md for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "comparison": str(self.comparison_md) if self.comparison_md else None,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "notes": self.notes,
        }


def analyze_runs(
    run_dirs: Sequence[Path],
    *,
    objectives: list[str] | None,
    fidelity: str | None,
    fmt: str,
    out_dir: Path | None,
    console: Console | None,
    plots: bool = True,
) -> AnalysisSummary:
    """Analyse one or more run folders and write a report for each.

    Args:
        run_dirs: run folders (results/<run>/, each with run.yaml and trials.csv).
        objectives: None for the objectives in run.yaml, else metric names (``accuracy``,
            ``interference`` = the interference metric the run optimised, or any trials.csv metric column),
            each optionally suffixed ``:max``/``:min``; comma-separated items are split.
        fidelity: analyse only this fidelity; None analyses every fidelity, each on its own.
        fmt: terminal output: ``table`` (summary + front as a rich table + report path), ``csv`` (the
            front(s) as CSV, nothing else) or ``json`` (the whole summary as JSON, nothing else).
        out_dir: report folder for a single run (default results/<run>/report); with several runs each
            run's report goes to out_dir/<run name>/ and the comparison to out_dir itself (default: each run's
            own report folder, the comparison in the first run's).
        console: a rich Console to print to; None prints nothing.
        plots: False skips the PNGs (report.md then embeds none); for quick checks and tests.

    Raises:
        RunStoreError: a folder is not a readable run, or it has no completed trial to analyse.
        ConfigError: an unknown format or fidelity, or an objective the run did not record.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if not run_dirs:
        raise ConfigError("nas analyze needs at least one run folder, e.g. results/<run>.")
    runs = [load_run(p) for p in run_dirs]
    plans = [(run, *_plan(run, objectives, fidelity)) for run in runs]  # validate every run before writing

    summary = AnalysisSummary(runs=[])
    report_dirs = _report_dirs(runs, out_dir)
    for (run, objs, fids, interference), report_dir in zip(plans, report_dirs, strict=True):
        analyses = []
        for fid in fids:
            rows = run.trials[run.trials["fidelity"] == fid]
            analyses.append(
                analyze_fidelity(
                    rows, objs, run_name=run.name, run_label=run.label, fidelity=fid, interference=interference
                )
            )
        if not any(a.counts.analysed for a in analyses):
            raise RunStoreError(_no_trial_message(run, analyses))
        summary.runs.append(RunReport(run.name, run.sampler, run.label, run.path, report_dir, analyses))

    if len(runs) > 1:
        comparison_dir = out_dir if out_dir is not None else report_dirs[0]
        summary.comparisons, summary.notes = _compare(summary.runs, comparison_dir, plots=plots)
        if summary.comparisons:
            summary.comparison_md = comparison_dir / "comparison.md"
            _write_text(summary.comparison_md, render_comparison(summary.comparisons, comparison_dir))

    for run, report in zip(runs, summary.runs, strict=True):
        write_run_report(run, report, summary, plots=plots)
    if console is not None:
        print_summary(summary, fmt, console)
    return summary


# ---- planning and validation ---------------------------------------------------------------------------------


def _plan(run: Run, requested: list[str] | None, fidelity: str | None) -> tuple[list[Objective], list[str], str]:
    """Objectives, fidelities and interference metric of one run; ConfigError/RunStoreError on bad input."""
    objs = resolve_objectives(requested, run.config, list(run.trials.columns))
    complete = run.trials[run.trials["status"] == "complete"]
    if complete.empty:
        raise RunStoreError(_no_trial_message(run, None))
    for obj in objs:
        if run.trials[obj.name].dtype.kind != "f":
            raise ConfigError(
                f"column {obj.name!r} of run {run.name} holds text, not numbers; it cannot be an objective."
            )
        if not np.isfinite(complete[obj.name].to_numpy(dtype=float)).any():
            raise ConfigError(
                f"run {run.name} did not record the objective {obj.name!r}: its column in trials.csv is empty for "
                "every completed trial; pick another with --objectives."
            )
    fids = run.fidelities
    if fidelity is not None:
        if fidelity not in fids:
            raise ConfigError(
                f"run {run.name} has no trial at fidelity {fidelity!r}; its fidelities: {', '.join(fids) or 'none'}."
            )
        fids = [fidelity]
    interference = pick_interference(objs, interference_name(run.config))
    return objs, fids, interference


def _no_trial_message(run: Run, analyses: list[FidelityAnalysis] | None) -> str:
    status = run.trials["status"].value_counts().to_dict()
    tally = ", ".join(f"{n} {s}" for s, n in status.items()) or "no rows"
    extra = ""
    if analyses:
        extra = " at " + ", ".join(a.fidelity for a in analyses) + " with finite objective values"
    return (
        f"run {run.name} ({run.path}) has no completed trial{extra} to analyse ({tally}); "
        "let the search finish some trials, or look at trials/<id>/ logs for why they failed."
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def _report_dirs(runs: list[Run], out_dir: Path | None) -> list[Path]:
    if out_dir is None:
        return [run.path / "report" for run in runs]
    if len(runs) == 1:
        return [Path(out_dir)]
    used: dict[str, int] = {}
    dirs = []
    for run in runs:
        base = _safe(run.name)
        used[base] = used.get(base, 0) + 1
        dirs.append(Path(out_dir) / (base if used[base] == 1 else f"{base}_{used[base]}"))
    return dirs


# ---- comparison of runs --------------------------------------------------------------------------------------


def _compare(reports: list[RunReport], directory: Path, *, plots: bool) -> tuple[list[Comparison], list[str]]:
    """Per fidelity shared by two or more runs: hypervolume histories under one reference point."""
    from nas.analysis.plots import hypervolume_plot

    fids = list(dict.fromkeys(a.fidelity for r in reports for a in r.analyses))
    several = len(fids) > 1
    out: list[Comparison] = []
    notes: list[str] = []
    for fid in fids:
        members = [(r, a) for r in reports for a in r.analyses if a.fidelity == fid and a.counts.analysed]
        if len(members) < 2:
            continue
        objs = members[0][1].objectives
        if any(a.objectives != objs for _, a in members):
            notes.append(
                f"fidelity {fid}: runs optimised different objectives, so their hypervolumes are not compared; "
                "pass the same --objectives to compare them."
            )
            continue
        ref = reference_point(np.vstack([a.losses for _, a in members]), objs)
        series = []
        rows = []
        for r, a in members:
            history = hypervolume_history(a.losses, ref.as_array())
            series.append((r.label, a.table["trials_run"].to_numpy(), history))
            rows.append(
                {
                    "run": r.name,
                    "sampler": r.sampler,
                    "rows": a.counts.rows,
                    "analysed": a.counts.analysed,
                    "front": int((a.table["rank"] == 1).sum()),
                    "hypervolume": float(history[-1]),
                }
            )
        name = f"hypervolume_compare_{_safe(fid)}.png" if several else "hypervolume_compare.png"
        title = f"Hypervolume history, fidelity {fid} ({', '.join(o.name for o in objs)})"
        plot = hypervolume_plot(directory / name, series, title) if plots else None
        out.append(Comparison(fid, list(objs), ref, rows, plot))
    return out, notes


# ---- files of one run ----------------------------------------------------------------------------------------


def front_columns(a: FidelityAnalysis) -> list[str]:
    """pareto.csv columns: identity, cost, then every metric column of trials.csv, then the choice features."""
    skip = NON_OBJECTIVE_COLUMNS | {"params", "macs", "rank", "trials_run", *CHOICES}
    metrics = [c for c in a.table.columns if c not in skip and a.table[c].dtype.kind == "f"]
    return [c for c in ID_COLUMNS if c in a.table.columns] + metrics + list(CHOICES)


def _csv_frame(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = df[list(columns)].copy()
    for c in INTEGER_COLUMNS & set(out.columns):
        col = out[c]
        if col.notna().all() and np.all(np.mod(col.to_numpy(dtype=float), 1) == 0):
            out[c] = col.astype("int64")
    return out


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    _write_text(path, buf.getvalue())


def write_run_report(run: Run, report: RunReport, summary: AnalysisSummary, *, plots: bool = True) -> None:
    """Write every file of one run's report: CSVs and PNGs per fidelity, report.md, summary.json."""
    from nas.analysis.plots import edf_plot, hypervolume_plot, importance_plot, pareto_plot

    d = report.report_dir
    several = len(report.analyses) > 1
    files: dict[str, dict[str, str]] = {}
    for a in report.analyses:
        sfx = f"_{_safe(a.fidelity)}" if several else ""
        f: dict[str, str] = {}
        files[a.fidelity] = f
        if not a.counts.analysed:
            continue
        cols = front_columns(a)
        _write_csv(d / f"pareto{sfx}.csv", _csv_frame(a.front, cols))
        _write_csv(d / f"fronts{sfx}.csv", _csv_frame(a.ranked, cols))
        f["pareto_csv"], f["fronts_csv"] = f"pareto{sfx}.csv", f"fronts{sfx}.csv"
        if not plots:
            continue
        title = f"{run.name} · {a.fidelity} · {a.counts.analysed} trials"
        values = a.table[[o.name for o in a.objectives]].to_numpy(dtype=float)
        on_front = (a.table["rank"] == 1).to_numpy()
        if len(a.objectives) >= 2:
            pareto_plot(d / f"pareto{sfx}.png", values, a.table["block"].tolist(), on_front, a.objectives, title)
            f["pareto_png"] = f"pareto{sfx}.png"
        pair = [Objective("accuracy", "maximize"), Objective(a.interference, "minimize")] if a.interference else []
        if pair and "accuracy" in a.table.columns and [o.name for o in a.objectives] != [o.name for o in pair]:
            pv = a.table[[o.name for o in pair]].to_numpy(dtype=float)
            finite = np.isfinite(pv).all(axis=1)
            pf = np.zeros(len(pv), dtype=bool)
            pf[finite] = front_ranks(loss_matrix(pv[finite], pair)) == 1
            pareto_plot(d / f"scatter{sfx}.png", pv, a.table["block"].tolist(), pf, pair, title)
            f["scatter_png"] = f"scatter{sfx}.png"
        elif pair and "pareto_png" in f:
            f["scatter_png"] = f["pareto_png"]
        hypervolume_plot(
            d / f"hypervolume{sfx}.png",
            [(run.label, a.table["trials_run"].to_numpy(), a.history)],
            f"Hypervolume history, {run.name} · {a.fidelity}",
        )
        f["hypervolume_png"] = f"hypervolume{sfx}.png"
        metrics = edf_metrics(a.table, a.interference)
        if metrics:
            for choice in CHOICES:
                column = a.table[choice].to_numpy()
                edf_plot(d / f"edf_{choice}{sfx}.png", choice, column, value_order(column, choice), metrics)
                f[f"edf_{choice}"] = f"edf_{choice}{sfx}.png"
        if a.importances and a.importances.values:
            importance_plot(d / f"importances{sfx}.png", a.importances)
            f["importances_png"] = f"importances{sfx}.png"
    comparison_link = None
    if summary.comparison_md is not None:
        comparison_link = _relative(summary.comparison_md, d)
    _write_text(d / "report.md", render_report(run, report, files, comparison_link))
    payload = report.to_dict()
    payload["files"] = files
    _write_text(d / "summary.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    written = {name for f in files.values() for name in f.values()} | {"report.md", "summary.json"}
    report.files = sorted(d / name for name in written)


def _relative(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


# ---- markdown ------------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        if float(v).is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        return f"{v:.{digits}f}"
    return str(v)


def _p(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{v:.2g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*lines, ""]


def _ci(t: tuple[float, float, float]) -> str:
    m, lo, hi = t
    return "–" if not np.isfinite(m) else f"{m:.4f} [{lo:.4f}, {hi:.4f}]"


def render_report(run: Run, report: RunReport, files: dict[str, dict[str, str]], comparison: str | None) -> str:
    """report.md of one run: one section per fidelity, images embedded by relative path."""
    cfg = run.config
    lines = [f"# Analysis of run `{run.name}`", ""]
    facts = [f"run folder `{run.path}`", f"sampler {run.sampler}"]
    for key in ("dataset", "budget", "seed", "created"):
        value = cfg.get(key)
        if isinstance(value, dict):
            value = value.get("name", value)
        if value not in (None, ""):
            facts.append(f"{key} {value}")
    lines += ["; ".join(facts) + ".", ""]
    lines += [f"Generated by `nas analyze` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.", ""]
    if len(report.analyses) > 1:
        lines += [
            f"This run holds trials at {len(report.analyses)} fidelities "
            f"({', '.join(a.fidelity for a in report.analyses)}); each is analysed on its own, never mixed.",
            "",
        ]
    if comparison:
        lines += [f"Comparison with the other runs analysed together: [{comparison}]({comparison}).", ""]
    for a in report.analyses:
        lines += _fidelity_section(a, files.get(a.fidelity, {}))
    return "\n".join(lines)


def _fidelity_section(a: FidelityAnalysis, f: dict[str, str]) -> list[str]:
    c = a.counts
    lines = [f"## Fidelity `{a.fidelity}`", ""]
    lines += ["### Trials", ""]
    lines += _table(
        [
            "rows",
            "complete",
            "failed",
            "pruned",
            "other status",
            "non-finite objective",
            "duplicate hash (reused)",
            "analysed",
        ],
        [[c.rows, c.complete, c.failed, c.pruned, c.other, c.non_finite, c.duplicates, c.analysed]],
    )
    lines += [
        "Only completed trials with finite values of every objective are analysed; a network evaluated twice "
        "(same `arch_hash`, e.g. a reused result) counts once, at its first trial.",
        "",
    ]
    if a.exclusions:
        lines += ["Trials not analysed, by status and reason:", ""]
        lines += _table(["status", "reason", "trials"], [[s, r or "–", n] for s, r, n in a.exclusions[:15]])
    if not c.analysed:
        return [*lines, "No trial of this fidelity can be analysed.", ""]

    lines += ["### Pareto front and hypervolume", ""]
    lines += ["Objectives: " + ", ".join(f"{o.name} ({o.direction})" for o in a.objectives) + ".", ""]
    lines += ["Reference point of the hypervolume (in minimisation space, where every objective is minimised):", ""]
    lines += _table(
        ["objective", "minimised as", "reference", "rule"],
        [
            [o.name, o.loss_label, f"{r:.6g}", rule]
            for o, r, rule in zip(a.objectives, a.reference.loss, a.reference.rules, strict=True)
        ],
    )
    sizes = a.front_sizes
    shown = ", ".join(map(str, sizes[:10])) + (", …" if len(sizes) > 10 else "")
    lines += [
        f"**Hypervolume: {a.hypervolume:.6f}** — front of {sizes[0]} trial(s); {len(sizes)} successive front(s) "
        f"of sizes {shown}."
        + (
            ""
            if all(o.unit for o in a.objectives)
            else " Objectives outside [0, 1] enter in their own units, and so does the volume."
        ),
        "",
    ]
    if "pareto_png" in f:
        lines += [f"![Pareto front]({f['pareto_png']})", ""]
    front = a.front
    metric_cols = [c for c in front_columns(a) if c not in ID_COLUMNS and c not in CHOICES]
    header = ["rank", "trial", "arch", "hash", "params", "MACs", *metric_cols]
    rows = [
        [
            r["rank"],
            r["trial_id"],
            f"`{r['arch']}`",
            f"`{r['arch_hash']}`",
            _fmt(r["params"]),
            _fmt(r["macs"]),
            *[_fmt(r[m]) for m in metric_cols],
        ]
        for r in front.head(MAX_FRONT_ROWS_MD).to_dict("records")
    ]
    lines += [
        f"The non-dominated trials (full table: `{f.get('pareto_csv')}`; every trial with its front: "
        f"`{f.get('fronts_csv')}`):",
        "",
    ]
    lines += _table(header, rows)
    if len(front) > MAX_FRONT_ROWS_MD:
        lines += [f"… and {len(front) - MAX_FRONT_ROWS_MD} more in `{f.get('pareto_csv')}`.", ""]

    lines += ["### Hypervolume history", ""]
    if "hypervolume_png" in f:
        lines += [f"![Hypervolume history]({f['hypervolume_png']})", ""]
    n = len(a.history)
    marks = sorted({max(1, round(n * q)) for q in (0.1, 0.25, 0.5, 0.75, 1.0)})
    lines += _table(
        ["analysed trials", "trials evaluated", "hypervolume"],
        [[m, int(a.table["trials_run"].iloc[m - 1]), f"{a.history[m - 1]:.6f}"] for m in marks],
    )

    lines += ["### Does lower interference buy accuracy?", ""]
    if not a.correlations:
        lines += ["Not computed: the run did not record both accuracy and an interference metric.", ""]
    else:
        lines += [
            f"Spearman's rank correlation between {a.interference} and accuracy, over all analysed trials and "
            "within each block family, activation and superlinear group (a negative ρ: less interference goes "
            f"with more accuracy). Groups of fewer than 3 trials are skipped.",
            "",
        ]
        if "scatter_png" in f:
            lines += [f"![accuracy against {a.interference}]({f['scatter_png']})", ""]
        lines += _table(
            ["group", "trials", "Spearman ρ", "p-value", "note"],
            [[k.group, k.n, _fmt(k.rho, 3), _p(k.p), k.note] for k in a.correlations],
        )

    lines += ["### Design-choice statistics", ""]
    metric_names = list(edf_metrics(a.table, a.interference))
    lines += [
        "For each design choice (a network's value when all its stages agree, else `mixed`; `n/a` when no "
        f"stage's family reads the choice): medians of {' and '.join(metric_names)} with 95 % bootstrap "
        "intervals (1,000 resamples, seeded), and their empirical distribution functions (EDFs, in the style "
        f"of pycls: the share of trials whose {ERROR} is at most x).",
        "",
    ]
    for cs in a.choice_stats:
        lines += [f"#### {cs.choice}", ""]
        lines += _table(
            ["value", "trials", *[f"median {m} [95 % CI]" for m in metric_names]],
            [[v.value, v.n, *[_ci(v.medians[m]) for m in metric_names]] for v in cs.values],
        )
        if f"edf_{cs.choice}" in f:
            lines += [f"![EDFs by {cs.choice}]({f[f'edf_{cs.choice}']})", ""]

    lines += ["### Parameter importances", ""]
    imp = a.importances
    if imp is None:
        lines += ["Not computed.", ""]
    else:
        lines += [f"Evaluator: {imp.evaluator}. {imp.note}".strip(), ""]
        if imp.values:
            objs = list(imp.values)
            params = sorted({p for o in objs for p in imp.values[o]}, key=lambda p: -imp.values[objs[0]].get(p, 0))
            lines += _table(
                ["choice", *objs], [[p, *[f"{imp.values[o].get(p, 0.0):.3f}" for o in objs]] for p in params]
            )
        if "importances_png" in f:
            lines += [f"![Parameter importances]({f['importances_png']})", ""]
    return lines


def render_comparison(comparisons: list[Comparison], directory: Path) -> str:
    lines = ["# Comparison of runs", ""]
    for c in comparisons:
        lines += [f"## Fidelity `{c.fidelity}`", ""]
        lines += ["Objectives: " + ", ".join(f"{o.name} ({o.direction})" for o in c.objectives) + ".", ""]
        lines += ["Shared reference point (minimisation space):", ""]
        lines += _table(
            ["objective", "minimised as", "reference", "rule"],
            [
                [o.name, o.loss_label, f"{r:.6g}", rule]
                for o, r, rule in zip(c.objectives, c.reference.loss, c.reference.rules, strict=True)
            ],
        )
        lines += _table(
            ["run", "sampler", "rows", "analysed", "front", "hypervolume"],
            [[r["run"], r["sampler"], r["rows"], r["analysed"], r["front"], f"{r['hypervolume']:.6f}"] for r in c.rows],
        )
        if c.plot:
            lines += [f"![Hypervolume history]({_relative(c.plot, directory)})", ""]
    return "\n".join(lines)


# ---- terminal ------------------------------------------------------------------------------------------------


def print_summary(summary: AnalysisSummary, fmt: str, console: Console) -> None:
    """Print the summary in the chosen format (table: human; csv and json: machine-readable only)."""
    if fmt == "json":
        console.out(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), highlight=False)
        return
    if fmt == "csv":
        frames = []
        for r in summary.runs:
            for a in r.analyses:
                if a.counts.analysed:
                    frame = _csv_frame(a.front, front_columns(a))
                    frame.insert(0, "run", r.name)
                    frames.append(frame)
        import pandas as pd

        text = pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""
        console.out(text.rstrip("\n"), highlight=False)
        return
    from rich.markup import escape
    from rich.table import Table

    for r in summary.runs:
        for a in r.analyses:
            c = a.counts
            console.print(
                f"[bold]{escape(r.name)}[/bold] {escape(f'[{a.fidelity}]')}: {c.rows} trials, {c.analysed} analysed, "
                f"{c.failed} failed, {c.pruned} pruned, {c.non_finite} non-finite, {c.duplicates} duplicate"
                + (f", {c.other} with another status" if c.other else ""),
                highlight=False,
            )
            if not c.analysed:
                continue
            ref = ", ".join(f"{o.name} {v:.4g}" for o, v in zip(a.objectives, a.reference.loss, strict=True))
            console.print(
                f"  front: {a.front_sizes[0]} trial(s); hypervolume {a.hypervolume:.4f} (reference: {ref})",
                highlight=False,
                markup=False,
            )
            if a.correlations:
                k = a.correlations[0]
                console.print(
                    f"  Spearman({a.interference}, accuracy) = {_fmt(k.rho, 3)} (p = {_p(k.p)}, n = {k.n})",
                    highlight=False,
                    markup=False,
                )
            table = Table(show_edge=False, pad_edge=False)
            metric_cols = [o.name for o in a.objectives if o.name != "params"]
            for col in ["trial", "block", "activation", "depth", "params", *metric_cols, "hash"]:
                table.add_column(escape(col), justify="right" if col in ("trial", "params", *metric_cols) else "left")
            front = a.front
            for row in front.head(MAX_FRONT_ROWS_TERMINAL).to_dict("records"):
                table.add_row(
                    str(row["trial_id"]),
                    row["block"],
                    row["activation"],
                    row["depth"],
                    _fmt(row.get("params")),
                    *[_fmt(row[m]) for m in metric_cols],
                    row["arch_hash"],
                )
            console.print(table)
            if len(front) > MAX_FRONT_ROWS_TERMINAL:
                console.print(f"  … {len(front) - MAX_FRONT_ROWS_TERMINAL} more in the report's pareto CSV")
        console.print(f"report: {r.report_md}", highlight=False, markup=False, soft_wrap=True)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if summary.comparison_md:
        console.print(f"comparison: {summary.comparison_md}", highlight=False, markup=False, soft_wrap=True)
