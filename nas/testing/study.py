"""A constructed study run with known effects: ``make_study_run`` (the shape ``nas study`` writes).

Every feasible cell of a factorial design gets ``repeats`` trials whose outcomes are

    outcome = base + Σ_factors effects[outcome][factor][level] + Σ interaction[outcome][levels] + N(0, noise²)

so a test knows which main effects and interactions are real. Cells matching ``infeasible`` are listed in
the design and get no trial; ``failed`` random trials (and every trial of cells matching ``failed_cells``)
fail with a reason; cells matching ``at_chance`` complete at chance (accuracy ≈ 0.1); cells matching
``diverged`` train to chance and fail on their interference (activations overflowed), as a squared activation
after BatchNorm does: their records carry the accuracy and no interference. As in ``nas study``, cells
naming one network (convnext reads no norm) share its evaluations: the later cell's records are reused
copies. Outcomes follow the levels the network really has (convnext's norm is layer).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from nas.objectives import Objective, default_direction
from nas.run import RunStore, TrialRecord
from nas.space.architecture import Architecture, Head, Stage, Stem
from nas.space.vocabulary import FAMILIES, FOLDED_DEPTHWISE, FOLDED_EXPANSION, FOLDED_NORM

Levels = Mapping[str, str]

STUDY_FACTORS: dict[str, list[str]] = {
    "block": ["basic", "bottleneck", "inverted", "separable", "convnext", "sandglass", "nodepth"],
    "activation": ["relu", "gelu", "silu", "hardswish", "relu2", "starrelu", "solu"],
    "norm": ["batch", "layer"],
}
STUDY_FIXED: dict[str, Any] = {"depth": 2, "kernel": 3}
STUDY_CANONICAL: dict[str, dict[str, Any]] = {
    "basic": {},
    "bottleneck": {"expansion": 4, "depthwise": False},
    "inverted": {"expansion": 6, "depthwise": True},
    "separable": {},
    "convnext": {"expansion": 4, "depthwise": True},
    "sandglass": {"expansion": 4, "depthwise": True},
    "nodepth": {"expansion": 4},
}
SUPERLINEAR = ("relu2", "starrelu", "solu")
BASE = {"accuracy": 0.85, "interference": 0.60}
# The paper's story, mildly: separable above inverted, nodepth below inverted in interference, superlinear
# activations raising interference. No interaction unless one is asked for.
DEFAULT_EFFECTS: dict[str, dict[str, dict[str, float]]] = {
    "accuracy": {"block": {"separable": 0.02, "inverted": -0.01, "basic": 0.01}},
    "interference": {"block": {"inverted": 0.04, "nodepth": -0.04},
                     "activation": {a: 0.03 for a in SUPERLINEAR}},
}
DEFAULT_INFEASIBLE: tuple[dict[str, str], ...] = (
    {"block": "sandglass", "activation": "solu", "norm": "batch",
     "reason": "no width meets the budget within tolerance"},
    {"block": "basic", "activation": "starrelu", "norm": "layer",
     "reason": "no width meets the budget within tolerance"},
)
FAILED_REASON = "non-finite activations in the probe (inf/NaN)"
DIVERGED_REASON = "non-finite objective"  # + the interference name, as the trainable words it
_STAGES = ((1, 16), (2, 32), (2, 64), (2, 128))  # stride, width
_STAGE_FIELDS = {f.name: f.type for f in fields(Stage)}


def cross(first: Sequence[str], second: Sequence[str], size: float) -> dict[tuple[str, ...], float]:
    """An interaction: ``size`` added to every cell whose levels include one of ``first`` and one of ``second``."""
    return {(a, b): size for a in first for b in second}


def _matches(levels: Levels, pattern: Mapping[str, Any]) -> bool:
    return all(str(levels.get(k)) == str(v) for k, v in pattern.items() if k != "reason")


def study_architecture(levels: Levels, fixed: Mapping[str, Any] = STUDY_FIXED,
                       canonical: Mapping[str, Mapping[str, Any]] = STUDY_CANONICAL) -> str:
    """The canonical string of one cell's network: the levels, the fixed choices, the family's canonical settings."""
    block = str(levels.get("block", "inverted"))
    choices: dict[str, Any] = {**fixed, **canonical.get(block, {}), **levels}
    settings = {k: _typed(_STAGE_FIELDS[k], v) for k, v in choices.items()
                if k in _STAGE_FIELDS and k not in ("stride", "width")}
    stages = tuple(Stage(stride=stride, width=width, **settings) for stride, width in _STAGES)
    return Architecture(Stem(16), stages, Head()).to_string()


def _typed(kind: Any, value: Any) -> Any:
    if kind in ("int", int):
        return int(value)
    if kind in ("float", "int | float", float):
        return float(value)
    if kind in ("bool", bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def _own_levels(levels: Levels) -> dict[str, str]:
    """The levels the network really has: a choice its family does not read at the value it is written with."""
    info = FAMILIES.get(str(levels.get("block")))
    out = dict(levels)
    if info is not None:
        for name, used, value in (("norm", info.uses_norm, FOLDED_NORM),
                                  ("expansion", info.uses_expansion, FOLDED_EXPANSION),
                                  ("depthwise", info.uses_depthwise, FOLDED_DEPTHWISE)):
            if not used and name in out:
                out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _shift(levels: Levels, effects: Mapping[str, Mapping[str, float]],
           interaction: Mapping[tuple[str, ...], float]) -> float:
    total = sum(by_level.get(str(levels.get(factor)), 0.0) for factor, by_level in effects.items())
    names = {str(v) for v in levels.values()}
    return total + sum(size for key, size in interaction.items() if set(key) <= names)


def make_study_run(
    path: Path | str,
    *,
    effects: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    interaction: Mapping[str, Mapping[tuple[str, ...], float]] | None = None,
    noise: float | Mapping[str, float] = 0.01,
    repeats: int = 2,
    seed: int = 0,
    factors: Mapping[str, Sequence[str]] | None = None,
    infeasible: Sequence[Mapping[str, str]] = DEFAULT_INFEASIBLE,
    failed: int = 3,
    failed_cells: Sequence[Mapping[str, str]] = (),
    at_chance: Sequence[Mapping[str, str]] = (),
    diverged: Sequence[Mapping[str, str]] = (),
    interference: str = "polysemanticity",
    base: Mapping[str, float] | None = None,
) -> RunStore:
    """Write a study run (run.yaml with its design, one TrialRecord per feasible cell and replicate).

    ``effects`` and ``interaction`` are keyed by outcome: ``accuracy`` and ``interference`` (the run's second
    objective, the ``interference`` metric; its own name works too). ``effects[outcome][factor][level]`` is a main
    effect; ``interaction[outcome][(level, level, ...)]`` is added to every cell having all those levels (see
    :func:`cross`). ``noise`` is the seed SD of every outcome, or a mapping per outcome.
    """
    from nas.testing import make_config

    def outcome(key: str) -> str:
        return "interference" if key == interference else key

    effects = {outcome(k): v for k, v in (DEFAULT_EFFECTS if effects is None else effects).items()}
    interaction = {outcome(k): v for k, v in (interaction or {}).items()}
    if isinstance(noise, Mapping):
        noise = {outcome(k): v for k, v in noise.items()}
    factors = {k: list(v) for k, v in (factors or STUDY_FACTORS).items()}
    base = {**BASE, **(base or {})}
    sd = {o: float(noise if not isinstance(noise, Mapping) else noise.get(o, 0.01)) for o in BASE}
    rng = np.random.default_rng(seed)
    cells: list[dict[str, Any]] = []
    for index, combo in enumerate(itertools.product(*factors.values())):
        levels = {f: str(v) for f, v in zip(factors, combo, strict=True)}
        reason = next((p.get("reason", "cannot meet the budget") for p in infeasible if _matches(levels, p)), None)
        arch = None if reason else study_architecture(levels)
        params = None if reason else int(1_500_000 * rng.uniform(0.95, 1.0))
        cells.append({"index": index, "levels": levels, "arch": arch, "params": params, "infeasible": reason})
    feasible = [c for c in cells if not c["infeasible"]]
    plan = [(c, r) for c in feasible for r in range(repeats)]
    originals = list({(c["arch"], r): k for k, (c, r) in reversed(list(enumerate(plan)))}.values())
    fail = {originals[int(i)] for i in rng.choice(len(originals), size=min(failed, len(originals)), replace=False)}
    records: list[TrialRecord] = []
    first: dict[tuple[str, int], TrialRecord] = {}  # (network, replicate) -> its evaluation
    for trial_id, (cell, replicate) in enumerate(plan):
        levels = cell["levels"]
        extra = {"cell": cell["index"], "replicate": replicate, **{f"level_{f}": v for f, v in levels.items()}}
        source = first.get((cell["arch"], replicate))
        if source is not None:  # a cell naming another cell's network (convnext reads no norm): reused, as the driver
            reason = f"same architecture, fidelity and seed as trial {source.trial_id}" if source.complete \
                else source.reason
            records.append(source.replace(trial_id=trial_id, reused=True, wall_s=0.0, reason=reason, **extra))
            continue
        own = _own_levels(levels)
        row: dict[str, Any] = {
            "trial_id": trial_id, "status": "complete", "arch": cell["arch"],
            "arch_hash": Architecture.parse(cell["arch"]).semantic_hash, "fidelity": "quick",
            "params": cell["params"], "macs": cell["params"] * 40, "epochs": 1, "seed": seed + replicate, **extra,
        }
        values = {o: base[o] + _shift(own, effects.get(o, {}), interaction.get(o, {})) + rng.normal(0, sd[o])
                  for o in BASE}
        if any(_matches(own, p) for p in at_chance):
            values["accuracy"] = 0.1 + rng.normal(0, 0.003)
        if any(_matches(own, p) for p in diverged):
            row.update(status="failed", reason=f"{DIVERGED_REASON} {interference}", wall_s=float(rng.uniform(5, 10)),
                       accuracy=float(0.1 + rng.normal(0, 0.001)))
        elif trial_id in fail or any(_matches(own, p) for p in failed_cells):
            row.update(status="failed", reason=FAILED_REASON, wall_s=float(rng.uniform(5, 10)))
        else:
            row.update(accuracy=float(values["accuracy"]), overlap=float(0.5 * values["interference"]),
                       outliers=float(rng.gamma(2.0, 1.5)), dead_fraction=float(rng.beta(1, 20)),
                       train_images_per_s=float(rng.uniform(800, 1200)), wall_s=float(rng.uniform(20, 60)))
            row[interference] = float(values["interference"])
        records.append(TrialRecord.from_dict(row))
        first[(cell["arch"], replicate)] = records[-1]
    design = {"factors": factors, "fixed": dict(STUDY_FIXED), "canonical": {k: dict(v) for k, v in
                                                                            STUDY_CANONICAL.items()},
              "repeats": repeats, "cells": cells}
    objectives = [Objective("accuracy", default_direction("accuracy")),
                  Objective(interference, default_direction(interference))]
    store = RunStore(path)
    store.root.mkdir(parents=True, exist_ok=True)
    store.write_config(make_config(store.root.name, kind="study", sampler="factorial", objectives=objectives,
                                   trials=len(plan), seed=seed, dataset="fashion-mnist", design=design,
                                   command="nas study (fixture)"))
    store.write_records(records)
    return store
