"""The numbers of one run at one fidelity: counts, fronts, hypervolume, statistics (no file is written here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.features import CHOICES, choice_frame
from nas.analysis.pareto import ReferencePoint, hypervolume, hypervolume_history
from nas.analysis.pareto import reference_point as make_reference
from nas.analysis.stats import (
    ChoiceStats,
    Correlation,
    Importances,
    choice_statistics,
    correlation_table,
    importances,
)
from nas.objectives import (
    DEFAULT_INTERFERENCE,
    INTERFERENCE_METRICS,
    Objective,
    front_ranks,
    interference_objective,
    loss_matrix,
)
from nas.run import STATUSES

if TYPE_CHECKING:
    import pandas as pd

CORRELATION_GROUPS: tuple[str, ...] = ("block", "activation", "superlinear")
ERROR = "error"  # 1 − accuracy, the EDF axis for accuracy (pycls style)


@dataclass
class Counts:
    """What happened to the rows of one fidelity, and how many were analysed."""

    rows: int = 0
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    other: int = 0  # any other status (e.g. running)
    non_finite: int = 0  # complete, but an objective is missing or not finite
    duplicates: int = 0  # complete rows repeating an earlier arch_hash (reused results), counted once
    analysed: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class FidelityAnalysis:
    """Everything the report shows for one run at one fidelity."""

    run_name: str
    run_label: str
    fidelity: str
    objectives: list[Objective]
    interference: str | None  # the interference metric of the correlation and EDFs, None if not recorded
    interference_optimised: bool  # False: no interference metric was an objective; ``interference`` is only recorded
    counts: Counts
    table: pd.DataFrame  # analysed trials, trial order: trial columns + choice features + rank + trials_run
    losses: np.ndarray  # (analysed, k) minimisation-space objectives, rows as in table
    reference: ReferencePoint
    hypervolume: float
    history: np.ndarray  # hypervolume after each analysed trial, rows as in table
    choice_stats: list[ChoiceStats] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    importances: Importances | None = None
    exclusions: list[tuple[str, str, int]] = field(default_factory=list)  # (status, reason, trials) not analysed

    @property
    def front(self) -> pd.DataFrame:
        """The non-dominated trials (rank 1), best first objective first."""
        return self.ranked[self.ranked["rank"] == 1]

    @property
    def ranked(self) -> pd.DataFrame:
        """All analysed trials sorted by front, then by the objectives in order."""
        keys = ["rank", *[f"_loss{i}" for i in range(len(self.objectives))], "trial_id"]
        tmp = self.table.assign(**{f"_loss{i}": self.losses[:, i] for i in range(len(self.objectives))})
        return tmp.sort_values(keys, kind="stable").drop(columns=keys[1:-1])

    @property
    def front_sizes(self) -> list[int]:
        ranks = self.table["rank"].to_numpy()
        return [int((ranks == r).sum()) for r in range(1, int(ranks.max(initial=0)) + 1)]

    def to_dict(self, *, front_columns: Sequence[str]) -> dict[str, Any]:
        front = self.front[list(front_columns)]
        return {
            "fidelity": self.fidelity,
            "objectives": [o.to_dict() for o in self.objectives],
            "interference": self.interference,
            "interference_optimised": self.interference_optimised,
            "counts": self.counts.to_dict(),
            "reference_point": self.reference.to_dict(self.objectives),
            "hypervolume": self.hypervolume,
            "front_sizes": self.front_sizes,
            "front": [{k: _jsonable(v) for k, v in row.items()} for row in front.to_dict("records")],
            "spearman": [c.to_dict() for c in self.correlations],
            "importances": self.importances.to_dict() if self.importances else None,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def analysed_rows(rows: pd.DataFrame, objectives: Sequence[Objective]) -> tuple[pd.DataFrame, Counts]:
    """Rows that count: complete, finite in every objective, first of their arch_hash; and the tally."""
    status = rows["status"]
    counts = Counts(rows=len(rows))
    counts.complete = int((status == "complete").sum())
    counts.failed = int((status == "failed").sum())
    counts.pruned = int((status == "pruned").sum())
    counts.other = int((~status.isin(STATUSES)).sum())
    complete = rows[status == "complete"]
    finite = np.isfinite(complete[[o.name for o in objectives]].to_numpy(dtype=float)).all(axis=1)
    counts.non_finite = int((~finite).sum())
    kept = complete[finite]
    first = ~kept["arch_hash"].duplicated(keep="first")
    counts.duplicates = int((~first).sum())
    kept = kept[first]
    counts.analysed = len(kept)
    return kept, counts


def analyze_fidelity(
    rows: pd.DataFrame,
    objectives: Sequence[Objective],
    *,
    run_name: str,
    run_label: str,
    fidelity: str,
    interference: str | None,
    interference_optimised: bool = True,
    reference: ReferencePoint | None = None,
    with_importances: bool = True,
    seed: int = 0,
) -> FidelityAnalysis:
    """Analyse the trial rows of one fidelity (sorted by trial_id). ``reference`` overrides the computed one."""
    objectives = list(objectives)
    rows = rows.reset_index(drop=True)
    kept, counts = analysed_rows(rows, objectives)
    table = kept.copy()
    # Trials evaluated so far (any status) at each analysed trial: the x axis of the hypervolume history.
    table["trials_run"] = np.asarray(kept.index, dtype=int) + 1
    table = table.reset_index(drop=True)
    features = choice_frame(table["arch"], table["trial_id"])
    for c in CHOICES:
        table[c] = features[c].to_numpy()
    values = table[[o.name for o in objectives]].to_numpy(dtype=float)
    losses = loss_matrix(values, objectives)
    ref = reference or make_reference(losses, objectives)
    table["rank"] = front_ranks(losses)
    ref_arr = ref.as_array()
    analysis = FidelityAnalysis(
        run_name=run_name,
        run_label=run_label,
        fidelity=fidelity,
        objectives=objectives,
        interference=interference if interference in table.columns else None,
        interference_optimised=interference_optimised,
        counts=counts,
        table=table,
        losses=losses,
        reference=ref,
        hypervolume=hypervolume(losses, ref_arr),
        history=hypervolume_history(losses, ref_arr),
    )
    analysis.exclusions = exclusion_reasons(rows)
    if len(table) == 0:
        return analysis
    metrics = edf_metrics(table, analysis.interference)
    analysis.choice_stats = choice_statistics(features, metrics, CHOICES, seed=seed)
    if analysis.interference and "accuracy" in table.columns:
        analysis.correlations = correlation_table(
            table[analysis.interference].to_numpy(dtype=float),
            table["accuracy"].to_numpy(dtype=float),
            features,
            CORRELATION_GROUPS,
        )
    if with_importances:
        analysis.importances = importances(features, values, objectives)
    return analysis


def exclusion_reasons(rows: pd.DataFrame) -> list[tuple[str, str, int]]:
    """Rows that did not complete, grouped by status and reason, most frequent first."""
    bad = rows[rows["status"] != "complete"]
    if bad.empty:
        return []
    grouped = bad.groupby(["status", "reason"], sort=False).size().sort_values(ascending=False, kind="stable")
    return [(str(s), str(r), int(n)) for (s, r), n in grouped.items()]


def edf_metrics(table: pd.DataFrame, interference: str | None) -> dict[str, np.ndarray]:
    """The metrics whose distributions are shown per choice: error (1 − accuracy) and the interference metric."""
    out: dict[str, np.ndarray] = {}
    if "accuracy" in table.columns:
        out[ERROR] = 1.0 - table["accuracy"].to_numpy(dtype=float)
    if interference:
        out[interference] = table[interference].to_numpy(dtype=float)
    return out


def choose_interference(
    objectives: Sequence[Objective], run_objectives: Sequence[Objective], complete: pd.DataFrame
) -> tuple[str | None, bool]:
    """The interference metric of the paper's question, and whether it was optimised.

    It is the first interference objective of the analysis, else of the run (:func:`interference_objective`).
    When neither optimised one (e.g. ``accuracy,params``), no other objective stands in for it: the first
    interference metric the completed trials recorded is used (polysemanticity first; every trial records
    the interference suite), flagged as not optimised; else there is none.
    """
    chosen = interference_objective(objectives) or interference_objective(run_objectives)
    if chosen is not None:
        return chosen.name, True
    for name in dict.fromkeys((DEFAULT_INTERFERENCE, *INTERFERENCE_METRICS)):
        if name in complete.columns and np.isfinite(complete[name].to_numpy(dtype=float)).any():
            return name, False
    return None, False


def interference_note(a: FidelityAnalysis, run_objectives: Sequence[Objective]) -> str:
    """One sentence when the run optimised no interference metric (empty when it did)."""
    if a.interference_optimised:
        return ""
    said = f"the run optimised no interference metric (its objectives: {', '.join(o.name for o in run_objectives)})"
    if a.interference is None:
        return f"{said}, and its trials recorded none of {', '.join(INTERFERENCE_METRICS)}"
    return f"{said}; {a.interference} is recorded, not optimised"
