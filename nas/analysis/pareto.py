"""Hypervolume and its history, with a stated reference point.

All computations run in minimisation ("loss") space (see ``Objective.to_loss``): error = 1 − accuracy,
interference metrics as they are. Ranks come from :func:`nas.objectives.front_ranks` (the one
non-dominated sort); volumes from Optuna's exact hypervolume (WFG; a sweep in 2-D), a private Optuna
helper used here in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas.objectives import Objective

REFERENCE_MARGIN = 0.1  # unbounded objectives: reference = worst observed loss + 10 % of its magnitude


@dataclass(frozen=True)
class ReferencePoint:
    """Hypervolume reference in loss space, with the rule that set each coordinate."""

    loss: tuple[float, ...]
    rules: tuple[str, ...]

    def as_array(self) -> np.ndarray:
        return np.asarray(self.loss, dtype=float)

    def to_dict(self, objectives: Sequence[Objective]) -> dict[str, dict[str, object]]:
        return {
            o.name: {"loss": o.loss_label, "reference": float(r), "rule": rule}
            for o, r, rule in zip(objectives, self.loss, self.rules, strict=True)
        }


def reference_point(losses: np.ndarray, objectives: Sequence[Objective]) -> ReferencePoint:
    """Stable reference: 1.0 for metrics in [0, 1] (error 1 = accuracy 0; interference 1 = worst);
    otherwise the worst observed loss plus 10 % of its magnitude (of the spread if it is 0)."""
    ref: list[float] = []
    rules: list[str] = []
    losses = np.asarray(losses, dtype=float).reshape(-1, len(objectives))
    for i, obj in enumerate(objectives):
        if obj.unit:
            ref.append(1.0)
            rules.append("fixed: 1.0 (accuracy 0)" if obj.maximize else f"fixed: 1.0 ({obj.name} at its maximum)")
            continue
        col = losses[:, i][np.isfinite(losses[:, i])]
        if col.size == 0:
            ref.append(1.0)
            rules.append("fixed: 1.0 (no finite value observed)")
            continue
        worst, best = float(col.max()), float(col.min())
        margin = REFERENCE_MARGIN * (abs(worst) or (worst - best) or 1.0)
        ref.append(worst + margin)
        if obj.maximize:
            rules.append(f"observed: −(min {obj.name} − 10 % of |min|) = {worst + margin:.6g}")
        else:
            rules.append(f"observed: max {obj.name} + 10 % of |max| = {worst + margin:.6g}")
    return ReferencePoint(tuple(ref), tuple(rules))


def hypervolume(losses: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``losses`` and bounded by ``reference``; points beyond the reference add nothing."""
    losses = np.asarray(losses, dtype=float).reshape(-1, len(reference))
    inside = losses[np.all(losses <= reference, axis=1)]
    if len(inside) == 0:
        return 0.0
    return _volume(inside, np.asarray(reference, dtype=float))


def hypervolume_history(losses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume of the first t points, t = 1..n (points in trial order).

    Keeps the current non-dominated set and recomputes the volume only when a point enters it,
    so a 1,000-trial run costs a few hundred small exact computations.
    """
    losses = np.asarray(losses, dtype=float).reshape(-1, len(reference))
    reference = np.asarray(reference, dtype=float)
    out = np.zeros(len(losses))
    front = np.empty((0, len(reference)))
    current = 0.0
    for t, point in enumerate(losses):
        if np.all(point <= reference) and not np.any(np.all(front <= point, axis=1)):
            front = np.vstack([front[~np.all(point <= front, axis=1)], point])
            current = _volume(front, reference)
        out[t] = current
    return out


def _volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of ``points`` (losses, all inside ``reference``) by moocore."""
    import moocore

    return float(moocore.hypervolume(points, ref=reference))
