"""What an analysis found, before anything is written: per run its fidelities' numbers, across runs a comparison.

:func:`plan_run` validates a run against the request (objectives, fidelity) and picks the interference
metric of the paper's question; :func:`summarise_run` analyses each fidelity; :func:`compare_runs`
puts several runs' hypervolume histories under one reference point. No file is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.analyze import FidelityAnalysis, analyze_fidelity, choose_interference
from nas.analysis.features import CHOICES
from nas.analysis.pareto import ReferencePoint, hypervolume_history, reference_point
from nas.analysis.study_noise import NOISE_COLUMN, NoiseEstimate, chance_accuracy, noise_marks, repeat_noise
from nas.errors import ConfigError, RunStoreError, shown
from nas.objectives import METRICS, Objective, resolve_objectives

if TYPE_CHECKING:
    import pandas as pd

    from nas.analysis.view import Run

ID_COLUMNS: tuple[str, ...] = ("rank", "trial_id", "arch", "arch_hash", "params", "macs", "fidelity", "epochs", "seed",
                               NOISE_COLUMN)
INTEGER_COLUMNS: frozenset[str] = frozenset({"params", "macs", "epochs", "seed"})


@dataclass
class RunReport:
    """One analysed run: where its report goes and the analysis of each of its fidelities."""

    name: str
    sampler: str
    label: str
    path: Path
    report_dir: Path
    run_objectives: list[Objective]
    analyses: list[FidelityAnalysis]
    files: list[Path] = field(default_factory=list)
    noise: NoiseEstimate | None = None  # seed noise of accuracy that front members are marked with

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
            "seed_noise": self.noise.to_dict() if self.noise else None,
        }


@dataclass
class Comparison:
    """Hypervolume histories of several runs at one fidelity under one shared reference point."""

    fidelity: str
    objectives: list[Objective]
    reference: ReferencePoint
    rows: list[dict[str, Any]]  # run, sampler, rows, analysed, front, hypervolume
    series: list[tuple[str, np.ndarray, np.ndarray]]  # (run label, trials evaluated, hypervolume) per run
    plot: Path | None = None

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


@dataclass(frozen=True)
class Plan:
    """What to analyse in one run: objectives, fidelities, and the interference metric of the paper's question."""

    objectives: list[Objective]
    fidelities: list[str]
    interference: str | None
    interference_optimised: bool


def plan_run(run: Run, requested: list[str] | None, fidelity: str | None) -> Plan:
    """Validate a run against the request; ConfigError/RunStoreError on bad input."""
    objs = resolve_objectives(requested, run.config.objectives, list(run.trials.columns))
    unrecorded = [o.name for o in objs if o.name not in run.trials.columns]
    if unrecorded:
        raise RunStoreError(f"{run.store.run_yaml} names the objective {shown(unrecorded[0])}, which no trial record "
                            "of the run holds; the run.yaml was edited or belongs to other trials")
    complete = run.trials[run.trials["status"] == "complete"]
    if complete.empty:
        raise RunStoreError(no_trial_message(run, None))
    for obj in objs:
        if run.trials[obj.name].dtype.kind != "f":
            raise ConfigError(f"column {shown(obj.name)} of run {run.name} holds text, not numbers; it cannot be an "
                              "objective.")
        if not np.isfinite(complete[obj.name].to_numpy(dtype=float)).any():
            raise ConfigError(f"run {run.name} did not record the objective {shown(obj.name)}: it is empty for every "
                              "completed trial; pick another with --objectives.")
    fids = run.fidelities
    if fidelity is not None:
        if fidelity not in fids:
            raise ConfigError(f"run {run.name} has no trial at fidelity {shown(fidelity)}; its fidelities: "
                              f"{', '.join(fids) or 'none'}.")
        fids = [fidelity]
    interference, optimised = choose_interference(objs, run.config.objectives, complete)
    return Plan(objs, fids, interference, optimised)


def summarise_run(run: Run, plan: Plan, report_dir: Path, noise: NoiseEstimate | None = None) -> RunReport:
    """Analyse each planned fidelity of a run; RunStoreError when none has a trial to analyse.

    Front members within seed noise of a better one are marked (column ``within_noise_of``): the noise is
    ``noise`` (e.g. a study's, :func:`nas.analysis.study_noise.noise_from`), else the run's own repeated
    evaluations; with neither, nothing is marked.
    """
    import pandas as pd

    analyses = [
        analyze_fidelity(run.trials[run.trials["fidelity"] == fid], plan.objectives, run_name=run.name,
                         run_label=run.label, fidelity=fid, interference=plan.interference,
                         interference_optimised=plan.interference_optimised)
        for fid in plan.fidelities
    ]
    if not any(a.counts.analysed for a in analyses):
        raise RunStoreError(no_trial_message(run, analyses))
    if noise is None:
        noise = repeat_noise(run.trials, chance=chance_accuracy(run.config),
                             source=f"repeated evaluations in run {run.name}")
    for a in analyses:
        if noise is not None and a.counts.analysed and "accuracy" in a.table.columns:
            a.table[NOISE_COLUMN] = pd.Series([None] * len(a.table), index=a.table.index, dtype=object)
            marks = noise_marks(a.front, noise)
            a.table.loc[marks.index, NOISE_COLUMN] = marks
    return RunReport(run.name, run.sampler, run.label, run.path, report_dir, list(run.config.objectives), analyses,
                     noise=noise)


def no_trial_message(run: Run, analyses: list[FidelityAnalysis] | None) -> str:
    status = run.trials["status"].value_counts().to_dict()
    tally = ", ".join(f"{n} {s}" for s, n in status.items()) or "no trial record yet"
    extra = ""
    if analyses:
        extra = " at " + ", ".join(a.fidelity for a in analyses) + " with finite objective values"
    return (
        f"run {run.name} ({run.path}) has no completed trial{extra} to analyse ({tally}); "
        "let the search finish some trials, or look at trials/<id>/ logs for why they failed."
    )


def compare_runs(reports: list[RunReport]) -> tuple[list[Comparison], list[str]]:
    """Per fidelity shared by two or more runs: hypervolume histories under one reference point."""
    fids = list(dict.fromkeys(a.fidelity for r in reports for a in r.analyses))
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
        series, rows = [], []
        for r, a in members:
            history = hypervolume_history(a.losses, ref.as_array())
            series.append((r.label, a.table["trials_run"].to_numpy(), history))
            rows.append({"run": r.name, "sampler": r.sampler, "rows": a.counts.rows, "analysed": a.counts.analysed,
                         "front": int((a.table["rank"] == 1).sum()), "hypervolume": float(history[-1])})
        out.append(Comparison(fid, list(objs), ref, rows, series))
    return out, notes


def front_columns(a: FidelityAnalysis) -> list[str]:
    """Columns of a front table: identity and cost, then the metric columns (zero-cost proxies only when some
    analysed trial recorded them), then the choice features."""
    objectives = {o.name for o in a.objectives}

    def shown_metric(c: str) -> bool:
        if c in ID_COLUMNS or a.table[c].dtype.kind != "f":
            return False
        if c in objectives:
            return True
        return c in METRICS and (METRICS[c].kind != "proxy" or bool(a.table[c].notna().any()))

    metrics = [c for c in a.table.columns if c not in CHOICES and c != "trials_run" and shown_metric(c)]
    return [c for c in ID_COLUMNS if c in a.table.columns] + metrics + list(CHOICES)


def front_frame(a: FidelityAnalysis, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The front (or ``table``, e.g. every ranked trial) in :func:`front_columns`, whole numbers as integers."""
    out = (a.front if table is None else table)[front_columns(a)].copy()
    for c in INTEGER_COLUMNS & set(out.columns):
        col = out[c]
        if col.notna().all() and np.all(np.mod(col.to_numpy(dtype=float), 1) == 0):
            out[c] = col.astype("int64")
    return out
