"""Analysis of a run store: Pareto fronts, hypervolume, design-choice statistics, plots and the report.

Public entry points (imported lazily, so that ``import nas.analysis`` stays light):
``analyze_runs`` (what ``nas analyze`` calls), ``AnalysisSummary``, ``load_run`` and
``write_synthetic_run`` (a generated run folder for tests and benchmarks).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.analysis.report import AnalysisSummary, analyze_runs
    from nas.analysis.store import load_run
    from nas.analysis.synthetic import write_synthetic_run

__all__ = ["AnalysisSummary", "analyze_runs", "load_run", "write_synthetic_run"]

_LOCATIONS = {
    "AnalysisSummary": "nas.analysis.report",
    "analyze_runs": "nas.analysis.report",
    "load_run": "nas.analysis.store",
    "write_synthetic_run": "nas.analysis.synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'nas.analysis' has no attribute {name!r}")
