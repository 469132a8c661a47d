"""Analysis of a study run (``kind: study``): cells, factor levels, factorial models, seed noise, the paper's claims.

:func:`analyze_study` reads a study through :class:`nas.run.RunStore` and computes everything its report
shows (no file is written here; :func:`nas.analysis.study_report.write_study_report` writes it). The
models are in :mod:`nas.analysis.study_models`, the noise in :mod:`nas.analysis.study_noise`.

A study's design (run.yaml ``design``) names its factors and levels, the choices held fixed, each family's
canonical settings, the replicates per cell and every cell (``index``, ``levels``, ``arch``, ``params``,
``infeasible``). Each trial record carries its ``cell`` and ``replicate``. Trials are analysed per cell:
a cell's replicates are the same network under different seeds; an infeasible cell has none; a failed
trial is listed, and left out of every outcome it did not measure: a network that trained to the end but
diverged (at chance, its activations non-finite, so its interference undefined) keeps its accuracy, because
a net at chance is a result (:func:`measured`).
Cells that name one network (convnext reads no norm) are analysed once, as the cell whose levels are the
network's own (:func:`network_aliases`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.analysis.stats import bootstrap_median_ci
from nas.analysis.study_claims import Claim, evaluate_claims
from nas.analysis.study_models import ALIGNED_RANKS, VALUES, AnovaTable, type2_anova
from nas.analysis.study_noise import CHANCE_MARGIN, NoiseEstimate, chance_accuracy, pooled_noise
from nas.errors import RunStoreError, shown
from nas.objectives import DEFAULT_INTERFERENCE, interference_objective
from nas.space.vocabulary import FAMILIES, FOLDED_DEPTHWISE, FOLDED_EXPANSION, FOLDED_NORM

if TYPE_CHECKING:
    import pandas as pd

    from nas.run import RunConfig, RunStore

SPLIT_FACTOR = "norm"  # the factor whose levels also get a model of their own (the two-way model per norm)


@dataclass
class StudyAnalysis:
    """Everything a study report shows."""

    run_name: str
    run_path: Path
    config: RunConfig
    interference: str
    factors: dict[str, list[str]]
    fixed: dict[str, Any]
    canonical: dict[str, Any]
    repeats: int
    trials: pd.DataFrame  # one row per (cell, replicate): trial_id, cell, replicate, status, reason, factors, outcomes
    cells: pd.DataFrame  # one row per design cell: levels, arch, infeasible, n, median/mean/sd/min/max per outcome
    levels: pd.DataFrame  # one row per factor level: medians with 95 % bootstrap intervals
    anova: list[AnovaTable] = field(default_factory=list)
    noise: dict[str, NoiseEstimate | None] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    chance: float | None = None
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def outcomes(self) -> list[str]:
        return ["accuracy", self.interference]

    @property
    def infeasible(self) -> pd.DataFrame:
        return self.cells[self.cells["infeasible"] != ""]

    @property
    def aliases(self) -> pd.DataFrame:
        """Cells naming another cell's network (``same_as``): their trials count for that cell."""
        return self.cells[self.cells["same_as"] >= 0]

    @property
    def failed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] != "complete"]

    @property
    def complete(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "complete"]

    @property
    def analysed(self) -> pd.DataFrame:
        """The trials the outcomes are analysed on (:func:`measured`)."""
        return measured(self.trials, self.interference)

    @property
    def seed_noise(self) -> NoiseEstimate | None:
        """The noise of accuracy that fronts are marked with: learning cells (no replicate at chance)."""
        return self.noise.get("accuracy")

    def anova_table(self, outcome: str, method: str = VALUES, scope: str = "all cells") -> AnovaTable | None:
        return next((t for t in self.anova if t.outcome == outcome and t.method == method and t.scope == scope), None)

    def claim(self, key: str) -> Claim:
        return next(c for c in self.claims if c.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_name, "path": str(self.run_path), "dataset": self.config.dataset,
            "budget": self.config.budget.params if self.config.budget else None, "fidelity": self.config.fidelity.name,
            "seed": self.config.seed, "interference": self.interference, "factors": self.factors, "fixed": self.fixed,
            "canonical": self.canonical, "repeats": self.repeats, "chance": self.chance,
            "trials": {"planned": len(self.trials), "complete": len(self.complete),
                       "failed": len(self.failed)},
            "infeasible": [{"cell": int(r["cell"]), "levels": {f: r[f] for f in self.factors},
                            "reason": r["infeasible"]} for r in self.infeasible.to_dict("records")],
            "same_network": {int(r["cell"]): int(r["same_as"]) for r in self.aliases.to_dict("records")},
            "failed": [{"trial_id": int(r["trial_id"]), "cell": int(r["cell"]), "replicate": int(r["replicate"]),
                        "status": r["status"], "reason": r["reason"]} for r in self.failed.to_dict("records")],
            "noise": {k: (v.to_dict() | {"resolvable_cell_means": v.resolvable(self.repeats)}) if v else None
                      for k, v in self.noise.items()},
            "anova": [t.to_dict() for t in self.anova],
            "claims": [c.to_dict() for c in self.claims],
            "notes": self.notes,
            "files": [p.name for p in self.files],
        }


# ---- reading the design ----------------------------------------------------------------------------------------


def _design(config: RunConfig, where: str) -> tuple[dict[str, list[str]], list[dict[str, Any]], int]:
    """Factors, cells and repeats of a study's design; RunStoreError naming what is wrong."""
    design = config.design
    if config.kind != "study" or not isinstance(design, dict):
        raise RunStoreError(f"{where} is a {config.kind} run, not a study; `nas study` writes study runs")
    factors = design.get("factors")
    if not isinstance(factors, dict) or not factors or not all(
            isinstance(v, list) and v for v in factors.values()):
        raise RunStoreError(f"{where}: design.factors should map each factor to its levels, got {shown(factors)}")
    cells = design.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and isinstance(c.get("levels"), dict)
                                              and isinstance(c.get("index"), int) for c in cells):
        raise RunStoreError(f"{where}: design.cells should be a list of {{index, levels, arch, params, infeasible}}")
    repeats = design.get("repeats")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise RunStoreError(f"{where}: design.repeats should be a positive integer, got {shown(repeats)}")
    for cell in cells:
        missing = [f for f in factors if f not in cell["levels"]]
        if missing:
            raise RunStoreError(f"{where}: design cell {cell['index']} has no level of {', '.join(missing)}")
    return {str(k): [str(v) for v in vs] for k, vs in factors.items()}, cells, repeats


def network_aliases(cells: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Cells that name the same network as another cell, mapped to the one cell analysed for that network.

    A family that does not read a factor (convnext reads no norm: it is always LayerNorm; basic and separable
    read no expansion) makes several cells one network; the driver evaluates it once per seed and records the
    other cells as reused. The cell kept is the one whose levels are the network's own (convnext's norm =
    layer), else the first.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("arch"):
            groups.setdefault(str(cell["arch"]), []).append(cell)
    out: dict[int, int] = {}
    for group in groups.values():
        if len(group) > 1:
            keep = next((c for c in group if _own_levels(c["levels"])), min(group, key=lambda c: c["index"]))
            out.update({int(c["index"]): int(keep["index"]) for c in group if c is not keep})
    return out


def _own_levels(levels: Mapping[str, Any]) -> bool:
    """Whether every factor the cell's family does not read sits at the value the network is written with."""
    info = FAMILIES.get(str(levels.get("block")))
    if info is None:
        return True
    folded = (("norm", info.uses_norm, FOLDED_NORM), ("expansion", info.uses_expansion, FOLDED_EXPANSION),
              ("depthwise", info.uses_depthwise, FOLDED_DEPTHWISE))
    return all(used or name not in levels or str(levels[name]) == str(value) for name, used, value in folded)


def _trial_frame(store: RunStore, config: RunConfig, factors: Sequence[str], cells: list[dict[str, Any]],
                 repeats: int, interference: str, notes: list[str]) -> pd.DataFrame:
    """One row per (cell, replicate) with a record: the first complete, original record, else the first record.

    Records of a cell that names another cell's network (:func:`network_aliases`) count for that cell.
    """
    import pandas as pd

    table = store.table()
    columns = ["trial_id", "cell", "replicate", "status", "reason", "seed", *factors, "accuracy", interference]
    if not len(table):
        return pd.DataFrame(columns=columns)
    fidelities = table["fidelity"].unique().tolist()
    if len(fidelities) > 1:
        keep = config.fidelity.name if config.fidelity.name in fidelities else table["fidelity"].mode().iloc[0]
        notes.append(f"records at {len(fidelities)} fidelities ({', '.join(map(str, fidelities))}); "
                     f"only {keep} is analysed")
        table = table[table["fidelity"] == keep]
    for column in ("cell", "replicate"):
        if column not in table.columns:
            raise RunStoreError(f"the trial records of {store.root} carry no {column!r}; they were not written by "
                                "`nas study`")
        table[column] = pd.to_numeric(table[column], errors="coerce")
    unplaced = table["cell"].isna() | table["replicate"].isna() | ~table["cell"].isin([c["index"] for c in cells])
    if unplaced.any():
        notes.append(f"{int(unplaced.sum())} record(s) name no cell of the design and are left out "
                     f"(trials {', '.join(map(str, table.loc[unplaced, 'trial_id'].head(10)))})")
        table = table[~unplaced]
    aliases = network_aliases(cells)
    table = table.assign(cell=[aliases.get(int(c), int(c)) for c in table["cell"]],
                         replicate=table["replicate"].astype(int))
    table = table.sort_values(["cell", "replicate", "status", "reused", "trial_id"],
                              key=lambda s: s.ne("complete") if s.name == "status" else s, kind="stable")
    duplicated = table.duplicated(["cell", "replicate"], keep="first")
    repeated = int(duplicated.sum()) - int(table.loc[duplicated, "reused"].astype(bool).sum())
    if repeated > 0:
        notes.append(f"{repeated} repeated record(s) of a (cell, replicate) are left out; the first complete one "
                     "counts")
    table = table[~duplicated]
    if (table["replicate"] >= repeats).any():
        notes.append(f"some records have replicate numbers beyond the design's {repeats} repeats; they are kept")
    levels = {c["index"]: c["levels"] for c in cells}
    for f in factors:
        table[f] = [str(levels[c][f]) for c in table["cell"]]
    if interference not in table.columns:
        table[interference] = np.nan
    return table[columns].sort_values("trial_id").reset_index(drop=True)


def measured(trials: pd.DataFrame, interference: str) -> pd.DataFrame:
    """Complete trials, and failed ones that measured accuracy, with their interference set missing (the frame
    form of ``TrialRecord.measured``).

    A trial fails after training when an objective is not finite; its accuracy was still measured on the
    validation split (a diverged network is at chance), so accuracy keeps it and interference does not. A trial
    that failed before measuring (an error, a non-finite loss that stopped training) has no accuracy and drops out.
    """
    accuracy = trials["accuracy"].to_numpy(dtype=float)
    failed = (trials["status"] == "failed").to_numpy() & np.isfinite(accuracy)
    out = trials[(trials["status"] == "complete").to_numpy() | failed].copy()
    out.loc[out["status"] != "complete", interference] = np.nan
    return out


# ---- tables ----------------------------------------------------------------------------------------------------


def _cell_table(cells: list[dict[str, Any]], factors: Sequence[str], trials: pd.DataFrame, outcomes: Sequence[str],
                repeats: int, chance: float | None) -> pd.DataFrame:
    """One row per design cell: levels, network, feasibility, trials, and per outcome n/median/mean/sd/min/max."""
    import pandas as pd

    aliases = network_aliases(cells)
    frame = pd.DataFrame([{"cell": c["index"], **{f: str(c["levels"][f]) for f in factors},
                           "arch": c.get("arch") or "", "params": c.get("params"),
                           "infeasible": str(c.get("infeasible") or ""),
                           "same_as": aliases.get(c["index"], -1),
                           "planned": 0 if c.get("infeasible") or c["index"] in aliases else repeats}
                          for c in cells])
    frame = frame.sort_values("cell", kind="stable").set_index("cell", drop=False)
    ok = trials["status"] == "complete"
    done = measured(trials, outcomes[1])
    frame["recorded"] = trials.groupby("cell").size()
    frame["complete"] = trials[ok].groupby("cell").size()
    frame["failed"] = trials[~ok].groupby("cell").size()
    frame["diverged"] = done[done["status"] != "complete"].groupby("cell").size()
    for outcome in outcomes:
        stats = done.groupby("cell")[outcome].agg(["count", "median", "mean", "min", "max", "std"])
        for name, column in (("n", "count"), ("median", "median"), ("mean", "mean"), ("min", "min"), ("max", "max"),
                             ("sd", "std")):
            frame[f"{outcome}_{name}"] = stats[column]
    below = done["accuracy"] < chance + CHANCE_MARGIN if chance is not None else done["accuracy"] != done["accuracy"]
    frame["at_chance"] = below.groupby(done["cell"]).sum()
    frame["failure_reasons"] = trials[~ok].groupby("cell")["reason"].agg(lambda r: "; ".join(dict.fromkeys(r)))
    counts = ["recorded", "complete", "failed", "diverged", "at_chance", *[f"{o}_n" for o in outcomes]]
    frame[counts] = frame[counts].fillna(0).astype(int)
    frame["failure_reasons"] = frame["failure_reasons"].fillna("")
    return frame.reset_index(drop=True)


def _level_table(factors: Mapping[str, list[str]], trials: pd.DataFrame, cells: pd.DataFrame,
                 outcomes: Sequence[str], seed: int) -> pd.DataFrame:
    """Per factor level: cells with data, trials, and per outcome the median with its 95 % bootstrap interval."""
    import pandas as pd

    done = measured(trials, outcomes[1])
    rows = []
    for fi, (factor, levels) in enumerate(factors.items()):
        for li, level in enumerate(levels):
            mask = done[factor] == level
            row: dict[str, Any] = {"factor": factor, "level": level,
                                   "cells": int(((cells[factor] == level) & (cells["accuracy_n"] > 0)).sum()),
                                   "trials": int(mask.sum())}
            for oi, outcome in enumerate(outcomes):
                m, lo, hi = bootstrap_median_ci(done.loc[mask, outcome].to_numpy(dtype=float), seed=(seed, fi, li, oi))
                row.update({f"{outcome}_median": m, f"{outcome}_lo": lo, f"{outcome}_hi": hi})
            rows.append(row)
    return pd.DataFrame(rows)


# ---- the analysis ----------------------------------------------------------------------------------------------


def analyze_study(store: RunStore) -> StudyAnalysis:
    """Read a study run and compute its cells, level tables, models, seed noise and claims (no file written).

    Raises RunStoreError when the run is not a study, its design is malformed, or a record cannot be read.
    """
    config = store.read_config()
    where = str(store.run_yaml)
    factors, cells, repeats = _design(config, where)
    chosen = interference_objective(config.objectives)
    interference = chosen.name if chosen else DEFAULT_INTERFERENCE
    notes: list[str] = []
    if chosen is None:
        notes.append(f"the study optimised no interference metric; {interference} is analysed")
    trials = _trial_frame(store, config, list(factors), cells, repeats, interference, notes)
    outcomes = ["accuracy", interference]
    chance = chance_accuracy(config)
    cell_table = _cell_table(cells, list(factors), trials, outcomes, repeats, chance)
    design = config.design or {}
    analysis = StudyAnalysis(
        run_name=config.name or store.name, run_path=_shown_path(store.root), config=config, interference=interference,
        factors=factors, fixed=dict(design.get("fixed") or {}), canonical=dict(design.get("canonical") or {}),
        repeats=repeats, trials=trials, cells=cell_table,
        levels=_level_table(factors, trials, cell_table, outcomes, config.seed), chance=chance, notes=notes)
    done = measured(trials, interference)
    analysis.claims = evaluate_claims(done, factors, interference, fixed=analysis.fixed)
    if done.empty:
        notes.append("no trial completed: there is nothing to model")
        return analysis
    model_factors = [f for f in factors if len(factors[f]) > 1]
    for outcome in outcomes:
        for method in (VALUES, ALIGNED_RANKS):
            analysis.anova.append(type2_anova(done, outcome, model_factors, method=method))
            if SPLIT_FACTOR in model_factors and len(model_factors) > 1:
                rest = [f for f in model_factors if f != SPLIT_FACTOR]
                for level in factors[SPLIT_FACTOR]:
                    subset = done[done[SPLIT_FACTOR] == level]
                    if len(subset):
                        analysis.anova.append(type2_anova(subset, outcome, rest, method=method,
                                                          scope=f"{SPLIT_FACTOR}={level}"))
    source = f"study {analysis.run_name}"
    analysis.noise = {
        "accuracy": pooled_noise(done, ("cell",), chance=chance, source=f"{source}, cells with no replicate at chance"),
        "accuracy (all cells)": pooled_noise(done, ("cell",), source=f"{source}, every cell"),
        interference: pooled_noise(done, ("cell",), metric=interference, source=f"{source}, every cell"),
    }
    return analysis


def _shown_path(root: Path) -> Path:
    try:
        return root.relative_to(Path.cwd())
    except ValueError:
        return root
