"""Printing an AnalysisSummary to the console: a human summary (table), or the front(s) as CSV, or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from nas.analysis.analyze import interference_note
from nas.analysis.markdown import fmt_p, fmt_value
from nas.analysis.study_noise import NOISE_COLUMN
from nas.analysis.summary import AnalysisSummary, front_frame

if TYPE_CHECKING:
    from rich.console import Console

FORMATS: tuple[str, ...] = ("table", "csv", "json")
MAX_FRONT_ROWS_TERMINAL = 15


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
                    frame = front_frame(a)
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
            note = interference_note(a, r.run_objectives)
            if note:
                console.print(f"  note: {note}", highlight=False, markup=False)
            if a.correlations:
                k = a.correlations[0]
                console.print(
                    f"  Spearman({a.interference}, accuracy) = {fmt_value(k.rho, 3)} (p = {fmt_p(k.rho_p)}, n = {k.n})",
                    highlight=False,
                    markup=False,
                )
            table = Table(show_edge=False, pad_edge=False)
            metric_cols = [o.name for o in a.objectives if o.name != "params"]
            front = a.front
            marked = NOISE_COLUMN in front.columns and bool(front[NOISE_COLUMN].notna().any())
            if r.noise is not None:
                console.print(f"  seed noise: {r.noise.describe()}", highlight=False, markup=False, soft_wrap=True)
            for col in ["trial", "block", "activation", "depth", "params", *metric_cols, "hash",
                        *(["within noise of"] if marked else [])]:
                table.add_column(escape(col), justify="right" if col in ("trial", "params", *metric_cols) else "left")
            for row in front.head(MAX_FRONT_ROWS_TERMINAL).to_dict("records"):
                table.add_row(
                    str(row["trial_id"]),
                    row["block"],
                    row["activation"],
                    row["depth"],
                    fmt_value(row.get("params")),
                    *[fmt_value(row[m]) for m in metric_cols],
                    row["arch_hash"],
                    *([f"trial {row[NOISE_COLUMN]}" if row[NOISE_COLUMN] is not None else ""] if marked else []),
                )
            console.print(table)
            if len(front) > MAX_FRONT_ROWS_TERMINAL:
                console.print(f"  … {len(front) - MAX_FRONT_ROWS_TERMINAL} more in the report's pareto CSV")
        console.print(f"report: {r.report_md}", highlight=False, markup=False, soft_wrap=True)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if summary.comparison_md:
        console.print(f"comparison: {summary.comparison_md}", highlight=False, markup=False, soft_wrap=True)
