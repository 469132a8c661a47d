"""Fixtures built on the real API, for tests and benchmarks (as ``optuna.testing``).

``make_run`` writes a run folder through :class:`nas.run.RunStore` — a real RunConfig and real
TrialRecords — with plausible generated metrics: family-dependent accuracy and interference, a
few failed, pruned and reused trials, superlinear activations at chance now and then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.fidelity import FIDELITIES, Fidelity
from nas.objectives import Objective, default_direction
from nas.run import RunConfig, RunStore, TrialRecord
from nas.space import Budget
from nas.space.architecture import Architecture, Head, Stage, Stem
from nas.space.vocabulary import ACTIVATIONS, FAMILIES
from nas.testing.audit import make_audit_run as make_audit_run
from nas.testing.study import make_study_run as make_study_run

_STAGES = ((1, (1, 2), 16), (2, (1, 2, 3), 32), (2, (1, 2, 3, 4), 64), (2, (1, 2, 3), 128))  # stride, depths, width
_BLOCKS = list(FAMILIES)
_ACTIVATIONS = ["relu", "gelu", "silu", "hardswish", "relu2", "starrelu", "solu"]
_EXPANSIONS = [2, 4, 6]
_KERNELS = [3, 5]
_NORMS = ["batch", "layer"]
_FAMILY_ACCURACY = {
    "basic": 0.885,
    "bottleneck": 0.865,
    "inverted": 0.875,
    "separable": 0.845,
    "convnext": 0.855,
    "sandglass": 0.86,
    "nodepth": 0.878,
}
_FAMILY_POLY = {
    "basic": 0.62,
    "bottleneck": 0.68,
    "inverted": 0.75,
    "separable": 0.57,
    "convnext": 0.60,
    "sandglass": 0.66,
    "nodepth": 0.61,
}
_FIDELITY_EPOCHS = {"quick": 1, "standard": 5, "full": 30}
BUDGET = 1_500_000


def _architecture(rng: np.random.Generator) -> Architecture:
    per_stage = rng.random() < 0.12  # most spaces choose per network; a few networks mix stage choices

    def pick(values: Sequence[object]) -> list[object]:
        if per_stage:
            return [values[int(rng.integers(len(values)))] for _ in _STAGES]
        return [values[int(rng.integers(len(values)))]] * len(_STAGES)

    blocks, acts, exps = pick(_BLOCKS), pick(_ACTIVATIONS), pick(_EXPANSIONS)
    dws, kernels, norms = pick([True, False]), pick(_KERNELS), pick(_NORMS)
    mult = float(rng.choice([1.0, 1.5, 2.0, 2.5, 3.0]))
    stages = tuple(
        Stage(
            block=str(blocks[i]),
            depth=int(rng.choice(depths)),
            stride=stride,
            width=max(8, round(width * mult / 8) * 8),
            expansion=int(exps[i]),  # type: ignore[call-overload]
            kernel=int(kernels[i]),  # type: ignore[call-overload]
            activation=str(acts[i]),
            depthwise=bool(dws[i]),
            norm=str(norms[i]),
        )
        for i, (stride, depths, width) in enumerate(_STAGES)
    )
    return Architecture(Stem(width=max(8, round(16 * mult / 8) * 8)), stages, Head())


def _metrics(arch: Architecture, fidelity: str, rng: np.random.Generator) -> dict[str, float]:
    stages = arch.stages
    superlinear = float(np.mean([ACTIVATIONS[s.activation] for s in stages]))
    fam_acc = float(np.mean([_FAMILY_ACCURACY[s.block] for s in stages]))
    fam_poly = float(np.mean([_FAMILY_POLY[s.block] for s in stages]))
    poly = float(np.clip(fam_poly + 0.06 * superlinear + rng.normal(0, 0.04), 0.05, 0.99))
    acc = fam_acc - 0.25 * (poly - 0.65) - 0.03 * superlinear + 0.003 * arch.depth + rng.normal(0, 0.015)
    acc += 0.03 if fidelity != "quick" else 0.0
    batch_superlinear = any(ACTIVATIONS[s.activation] and s.norm == "batch" for s in stages)
    if batch_superlinear and rng.random() < 0.25:
        acc = 0.1 + rng.normal(0, 0.004)  # stuck at chance: a result, not an error
    params = int(BUDGET * rng.uniform(0.95, 1.0))
    return {
        "params": params,
        "macs": int(params * rng.uniform(20, 80)),
        "accuracy": float(np.clip(acc, 0.05, 0.99)),
        "polysemanticity": poly,
        "overlap": float(np.clip(0.5 * poly + rng.normal(0, 0.05), 0.0, 1.0)),
        "outliers": float(rng.gamma(2.0, 1.5) + 3.0 * superlinear),
        "dead_fraction": float(rng.beta(1.0, 20.0)),
        "train_images_per_s": float(4e8 / params * rng.uniform(0.8, 1.2)),
        "wall_s": float(rng.uniform(20, 60) * _FIDELITY_EPOCHS.get(fidelity, 1)),
    }


def synthetic_rows(n_trials: int, seed: int, fidelities: Sequence[str] = ("quick",)) -> list[dict[str, object]]:
    """Trial rows in trials.csv order: ~5 % failed, ~3 % pruned, ~3 % reused (copies of an earlier trial)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    completed: dict[str, list[dict[str, object]]] = {f: [] for f in fidelities}
    for trial_id in range(n_trials):
        fidelity = fidelities[trial_id % len(fidelities)]
        base: dict[str, object] = {}
        base.update(
            trial_id=trial_id,
            fidelity=fidelity,
            epochs=_FIDELITY_EPOCHS.get(fidelity, 1),
            seed=seed,
            reused=False,
            status="complete",
        )
        u = rng.random()
        if completed[fidelity] and u < 0.03:
            earlier = completed[fidelity][int(rng.integers(len(completed[fidelity])))]
            row = {**earlier, "trial_id": trial_id, "reused": True, "wall_s": 0.0}
            rows.append(row)
            continue
        arch = _architecture(rng)
        metrics = _metrics(arch, fidelity, rng)
        base.update(arch=arch.to_string(), arch_hash=arch.semantic_hash, params=metrics["params"], macs=metrics["macs"])
        superlinear = any(ACTIVATIONS[s.activation] for s in arch.stages)
        if u < 0.08 + (0.05 if superlinear else 0.0):
            base.update(
                status="failed", reason="non-finite activations in the probe (inf/NaN)", wall_s=metrics["wall_s"]
            )
        elif u < 0.11 + (0.05 if superlinear else 0.0):
            base.update(
                status="pruned",
                reason="pruned after epoch 1 (median rule)",
                accuracy=metrics["accuracy"],
                wall_s=metrics["wall_s"],
            )
        else:
            base.update(metrics)
            completed[fidelity].append(base)
        rows.append(base)
    return rows



def make_fidelity(name: str) -> Fidelity:
    """A preset by name; any other name is the quick preset renamed (``quick+epochs=1`` and the like)."""
    if name in FIDELITIES:
        return FIDELITIES[name]
    return dataclasses.replace(FIDELITIES["quick"], name=name)


def make_config(name: str = "synthetic", **overrides: Any) -> RunConfig:
    """A complete, valid RunConfig of a search on the default space; ``overrides`` replace fields."""
    import yaml

    from nas.space.paths import packaged_space

    space_file = packaged_space("bottleneck.yaml")
    space = yaml.safe_load(space_file.read_text()) if space_file.is_file() else {"name": "bottleneck"}
    objectives = [Objective(n, default_direction(n)) for n in ("accuracy", "polysemanticity")]
    config = RunConfig(
        kind="search", name=name, created="2025-01-01T00:00:00", space_file=str(space_file), space_name="bottleneck",
        space=space, budget=Budget(BUDGET), objectives=objectives, sampler="random", fidelity=make_fidelity("quick"),
        dataset="synthetic", trials=0, seed=0, versions={"nas": "0.1.0"}, git_sha=None, command="nas search (fixture)",
    )
    return dataclasses.replace(config, **overrides)


def make_run(
    path: Path | str,
    n_trials: int,
    seed: int = 0,
    fidelities: Sequence[str] = ("quick",),
    *,
    sampler: str = "random",
    objectives: Sequence[str] = ("accuracy", "polysemanticity"),
    rows: Sequence[dict[str, Any]] | None = None,
    **config: Any,
) -> RunStore:
    """Write a run folder of ``n_trials`` generated trials (or of ``rows``, flat record mappings) through RunStore."""
    store = RunStore(path)
    store.root.mkdir(parents=True, exist_ok=True)
    chosen = [Objective(n, default_direction(n)) for n in objectives]
    store.write_config(make_config(store.root.name, sampler=sampler, objectives=chosen, trials=n_trials, seed=seed,
                                   fidelity=make_fidelity(fidelities[0]), **config))
    records = [TrialRecord.from_dict(dict(r)) for r in (synthetic_rows(n_trials, seed, fidelities) if rows is None
                                                          else rows)]
    store.write_records(records)
    return store
