"""The files of a report folder: pareto/fronts CSVs and PNGs per fidelity, report.md, summary.json, comparison.md.

Every file is written atomically. :func:`check_report_dirs` runs before the first write, so a report
folder that cannot be one (a file, or under a file) is a ConfigError and nothing is created.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas.analysis.analyze import FidelityAnalysis, edf_metrics
from nas.analysis.features import CHOICES, value_order
from nas.analysis.markdown import relative, render_comparison, render_report
from nas.analysis.summary import AnalysisSummary, RunReport, front_frame
from nas.atomic import atomic_write_text
from nas.errors import ConfigError, shown
from nas.objectives import Objective, default_direction, front_ranks, loss_matrix

if TYPE_CHECKING:
    import pandas as pd

    from nas.analysis.view import Run


def safe_name(name: str) -> str:
    """``name`` as a file-name part (letters, digits, ``_.-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def check_report_dirs(dirs: list[Path]) -> None:
    """ConfigError when a report folder cannot be one (not a path, a file, under a file); checked before any write."""
    from nas.space.paths import folder_blocker

    for d in dirs:
        blocked = folder_blocker(d)
        if blocked is not None:
            raise ConfigError(f"report folder {shown(str(d))} cannot be used: {blocked}; give --out a folder (it is "
                              "created when missing)")


@contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """An OSError while writing the report (permission, full disk) becomes one ConfigError line."""
    try:
        yield
    except OSError as exc:
        where = shown(str(exc.filename)) if exc.filename else shown(str(directory))
        raise ConfigError(f"cannot write the report to {where}: {exc.strerror or exc}") from None


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


def write_comparison(summary: AnalysisSummary, directory: Path, *, plots: bool) -> None:
    """comparison.md and one hypervolume-history PNG per compared fidelity, in ``directory``."""
    from nas.analysis.plots import hypervolume_plot

    several = len({a.fidelity for r in summary.runs for a in r.analyses}) > 1
    with _writing(directory):
        for c in summary.comparisons:
            name = f"hypervolume_compare_{safe_name(c.fidelity)}.png" if several else "hypervolume_compare.png"
            title = f"Hypervolume history, fidelity {c.fidelity} ({', '.join(o.name for o in c.objectives)})"
            c.plot = hypervolume_plot(directory / name, c.series, title) if plots else None
        summary.comparison_md = directory / "comparison.md"
        atomic_write_text(summary.comparison_md, render_comparison(summary.comparisons, directory))


def write_run_report(run: Run, report: RunReport, summary: AnalysisSummary, *, plots: bool = True) -> None:
    """Write every file of one run's report: CSVs and PNGs per fidelity, report.md, summary.json."""
    d = report.report_dir
    several = len(report.analyses) > 1
    files: dict[str, dict[str, str]] = {}
    with _writing(d):
        for a in report.analyses:
            files[a.fidelity] = _fidelity_files(run, a, d, f"_{safe_name(a.fidelity)}" if several else "", plots)
        comparison_link = None if summary.comparison_md is None else relative(summary.comparison_md, d)
        atomic_write_text(d / "report.md", render_report(run, report, files, comparison_link))
        payload = report.to_dict()
        payload["files"] = files
        atomic_write_text(d / "summary.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    written = {name for f in files.values() for name in f.values()} | {"report.md", "summary.json"}
    report.files = sorted(d / name for name in written)


def _fidelity_files(run: Run, a: FidelityAnalysis, d: Path, sfx: str, plots: bool) -> dict[str, str]:
    """The CSVs (and PNGs) of one fidelity; returns {kind: file name} for report.md and summary.json."""
    from nas.analysis.plots import edf_plot, hypervolume_plot, importance_plot, pareto_plot

    f: dict[str, str] = {}
    if not a.counts.analysed:
        return f
    _write_csv(d / f"pareto{sfx}.csv", front_frame(a))
    _write_csv(d / f"fronts{sfx}.csv", front_frame(a, a.ranked))
    f["pareto_csv"], f["fronts_csv"] = f"pareto{sfx}.csv", f"fronts{sfx}.csv"
    if not plots:
        return f
    title = f"{run.name} · {a.fidelity} · {a.counts.analysed} trials"
    values = a.table[[o.name for o in a.objectives]].to_numpy(dtype=float)
    on_front = (a.table["rank"] == 1).to_numpy()
    if len(a.objectives) >= 2:
        pareto_plot(d / f"pareto{sfx}.png", values, a.table["block"].tolist(), on_front, a.objectives, title)
        f["pareto_png"] = f"pareto{sfx}.png"
    pair = [Objective("accuracy", default_direction("accuracy")),
            Objective(a.interference, default_direction(a.interference))] if a.interference else []
    if pair and "accuracy" in a.table.columns and [o.name for o in a.objectives] != [o.name for o in pair]:
        pv = a.table[[o.name for o in pair]].to_numpy(dtype=float)
        finite = np.isfinite(pv).all(axis=1)
        pf = np.zeros(len(pv), dtype=bool)
        pf[finite] = front_ranks(loss_matrix(pv[finite], pair)) == 1
        scatter_title = title if a.interference_optimised else f"{title} ({a.interference} recorded, not optimised)"
        pareto_plot(d / f"scatter{sfx}.png", pv, a.table["block"].tolist(), pf, pair, scatter_title)
        f["scatter_png"] = f"scatter{sfx}.png"
    elif pair and "pareto_png" in f:
        f["scatter_png"] = f["pareto_png"]
    hypervolume_plot(d / f"hypervolume{sfx}.png", [(run.label, a.table["trials_run"].to_numpy(), a.history)],
                     f"Hypervolume history, {run.name} · {a.fidelity}")
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
    return f
