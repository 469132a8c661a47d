"""`nas analyze`: read runs, analyse them, write results/<run>/report/ and print a summary.

The steps live in their own modules: :mod:`nas.analysis.view` reads a run (through RunStore),
:mod:`nas.analysis.summary` computes what the report says, :mod:`nas.analysis.files` writes the report
folder (with :mod:`nas.analysis.markdown`), :mod:`nas.analysis.terminal` prints. Every run is read and
analysed before the first file is written, so bad input leaves no half-written report behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nas.analysis.files import check_report_dirs, safe_name, write_comparison, write_run_report
from nas.analysis.summary import AnalysisSummary, compare_runs, plan_run, summarise_run
from nas.analysis.terminal import FORMATS, print_summary
from nas.analysis.view import Run, load_run
from nas.errors import ConfigError, shown

if TYPE_CHECKING:
    from rich.console import Console


def analyze_runs(
    run_dirs: Sequence[Path],
    *,
    objectives: list[str] | None,
    fidelity: str | None,
    fmt: str,
    out_dir: Path | None,
    console: Console | None,
    plots: bool = True,
    noise_from: Path | None = None,
) -> AnalysisSummary:
    """Analyse one or more run folders and write a report for each.

    Args:
        run_dirs: run folders (results/<run>/, each with run.yaml and trial records), or run names
            under results/.
        objectives: None for the run's own objectives, else metric names (``accuracy``,
            ``interference`` = the interference metric the run optimised, or any recorded metric),
            each optionally suffixed ``:max``/``:min``; comma-separated items are split.
        fidelity: analyse only this fidelity; None analyses every fidelity, each on its own.
        fmt: terminal output: ``table`` (summary + front as a rich table + report path), ``csv`` (the
            front(s) as CSV, nothing else) or ``json`` (the whole summary as JSON, nothing else).
        out_dir: report folder for a single run (default results/<run>/report); with several runs each
            run's report goes to out_dir/<run name>/ and the comparison to out_dir itself (default: each run's
            own report folder, the comparison in the first run's).
        console: a rich Console to print to; None prints nothing.
        plots: False skips the PNGs (report.md then embeds none); for quick checks and tests.
        noise_from: a study (or a run with repeated seeds) whose seed noise marks front members that differ
            by less than it; None measures it from each run's own repeats, if any.

    Raises:
        RunStoreError: a folder is not a readable run, or it has no completed trial to analyse.
        ConfigError: an unknown format or fidelity, an objective the run did not record, or a report
            folder that cannot be written (e.g. ``--out`` names a file).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {shown(fmt)}; choose one of {', '.join(FORMATS)}.")
    if not run_dirs:
        raise ConfigError("nas analyze needs at least one run folder, e.g. results/<run>.")
    runs = [load_run(p) for p in run_dirs]
    noise = None
    if noise_from is not None:
        from nas.analysis.study_noise import noise_from as read_noise

        noise = read_noise(noise_from)
    plans = [plan_run(run, objectives, fidelity) for run in runs]  # validate every run before writing
    report_dirs = _report_dirs(runs, out_dir)
    comparison_dir = out_dir if out_dir is not None else report_dirs[0]
    check_report_dirs([*report_dirs, comparison_dir])
    summary = AnalysisSummary(
        runs=[summarise_run(run, plan, d, noise=noise) for run, plan, d in zip(runs, plans, report_dirs, strict=True)]
    )
    if len(runs) > 1:
        summary.comparisons, summary.notes = compare_runs(summary.runs)
        if summary.comparisons:
            write_comparison(summary, comparison_dir, plots=plots)
    for run, report in zip(runs, summary.runs, strict=True):
        write_run_report(run, report, summary, plots=plots)
    if console is not None:
        print_summary(summary, fmt, console)
    return summary


def _report_dirs(runs: list[Run], out_dir: Path | None) -> list[Path]:
    if out_dir is None:
        return [run.path / "report" for run in runs]
    if len(runs) == 1:
        return [Path(out_dir)]
    used: dict[str, int] = {}
    dirs = []
    for run in runs:
        base = safe_name(run.name)
        used[base] = used.get(base, 0) + 1
        dirs.append(Path(out_dir) / (base if used[base] == 1 else f"{base}_{used[base]}"))
    return dirs
