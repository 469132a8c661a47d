"""Analysis of a run store: Pareto fronts, hypervolume, design-choice statistics, plots and the report.

Public entry points (imported lazily, so that ``import nas.analysis`` stays light):
``analyze_runs`` (what ``nas analyze`` calls), ``AnalysisSummary`` (what it returns), and ``Run`` /
``load_run`` (a run as analysis reads it, through :class:`nas.run.RunStore`).

Modules: ``view`` (read a run), ``analyze`` (one fidelity's numbers), ``features`` (design choices of an
architecture), ``pareto`` (hypervolume), ``stats`` (EDFs, bootstrap, Spearman, importances), ``summary``
(what a report says), ``files`` / ``markdown`` / ``plots`` (the report folder), ``terminal`` (console
output), ``report`` (``analyze_runs``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.analysis.report import analyze_runs
    from nas.analysis.summary import AnalysisSummary
    from nas.analysis.view import Run, load_run

__all__ = ["AnalysisSummary", "Run", "analyze_runs", "load_run"]

_LOCATIONS = {
    "AnalysisSummary": "nas.analysis.summary",
    "Run": "nas.analysis.view",
    "analyze_runs": "nas.analysis.report",
    "load_run": "nas.analysis.view",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'nas.analysis' has no attribute {name!r}")
