"""A trial record: the final outcome of one evaluation of one architecture at one fidelity.

The columns of ``trials.csv`` are :data:`TRIAL_COLUMNS`, in that order; everything else a trial
measured (training and metrics seconds, final loss, whether activations stayed finite, the precision
it trained in, a study's cell, …) is kept in ``extra`` and written to ``trials/<id>/metrics.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from nas.errors import RunStoreError, shown
from nas.objectives import INTERFERENCE_METRICS, ZERO_COST_NAMES, Objective, front_ranks, loss_matrix

STATUSES: tuple[str, ...] = ("complete", "failed", "pruned")
ZERO_COST_COLUMNS: tuple[str, ...] = tuple(f"zc_{n}" for n in ZERO_COST_NAMES)
TRIAL_COLUMNS: tuple[str, ...] = (
    "trial_id", "status", "reason", "reused", "arch", "arch_hash", "params", "macs", "fidelity", "epochs",
    "seed", "accuracy", *INTERFERENCE_METRICS, *ZERO_COST_COLUMNS, "train_images_per_s", "wall_s",
)
_INTS = ("trial_id", "params", "macs", "epochs", "seed")
_FLOATS = ("accuracy", *INTERFERENCE_METRICS, *ZERO_COST_COLUMNS, "train_images_per_s", "wall_s")
_TEXTS = ("status", "reason", "arch", "arch_hash", "fidelity")


@dataclass
class TrialRecord:
    """One row of trials.csv plus everything else the trial measured (``extra``)."""

    trial_id: int
    status: str
    arch: str
    arch_hash: str
    fidelity: str
    reason: str = ""
    reused: bool = False
    params: int | None = None
    macs: int | None = None
    epochs: int | None = None
    seed: int | None = None
    accuracy: float | None = None
    polysemanticity: float | None = None
    overlap: float | None = None
    outliers: float | None = None
    dead_fraction: float | None = None
    zc_naswot: float | None = None
    zc_synflow: float | None = None
    zc_snip: float | None = None
    zc_grad_norm: float | None = None
    zc_jacob_cov: float | None = None
    train_images_per_s: float | None = None
    wall_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RunStoreError(f"trial {self.trial_id}: status {shown(self.status)} is not one of "
                                f"{', '.join(STATUSES)}")

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def value(self, name: str) -> Any:
        """A column or an extra measurement by name (None when the trial did not record it)."""
        if name in _FIELDS:
            return getattr(self, name)
        return self.extra.get(name)

    def finite(self, name: str) -> float | None:
        """The named value as a float when it is a finite number, else None."""
        v = self.value(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None

    def measured(self, name: str) -> float | None:
        """The named value when the trial measured it: any finite value of a complete trial, and the accuracy of
        a trial that failed after training (an objective not finite, e.g. a diverged network's interference;
        accuracy was still measured, at chance). None otherwise: such a trial's interference is not a measurement.
        """
        if self.complete or (name == "accuracy" and self.status == "failed"):
            return self.finite(name)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping written to metrics.json: the columns, then the extras."""
        out = {name: getattr(self, name) for name in TRIAL_COLUMNS}
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    def row(self) -> dict[str, Any]:
        """The trials.csv row (missing values as empty cells)."""
        return {k: "" if getattr(self, k) is None else getattr(self, k) for k in TRIAL_COLUMNS}

    def replace(self, **changes: Any) -> TrialRecord:
        """A copy with ``changes``; keys that are not columns go to ``extra``."""
        data = self.to_dict()
        data.update(changes)
        return TrialRecord.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "a trial record") -> TrialRecord:
        """Build from a flat mapping (a metrics.json, or a trial's report); unknown keys go to ``extra``.

        Raises RunStoreError naming ``where`` and the field when a column has the wrong type.
        """
        if not isinstance(data, dict):
            raise RunStoreError(f"{where} is not a mapping")
        missing = [k for k in ("trial_id", "status", "arch", "arch_hash", "fidelity") if data.get(k) in (None, "")]
        if missing:
            raise RunStoreError(f"{where} lacks {', '.join(missing)}")
        kwargs: dict[str, Any] = {}
        for name in _INTS:
            kwargs[name] = _number(data.get(name), int, name, where)
        for name in _FLOATS:
            kwargs[name] = _number(data.get(name), float, name, where)
        for name in _TEXTS:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise RunStoreError(f"{where}: {name} should be text, got {shown(value)}")
            kwargs[name] = value or ""
        kwargs["reused"] = _boolean(data.get("reused"), where)
        extra = {k: v for k, v in data.items() if k not in _FIELDS}
        return cls(**kwargs, extra=extra)


_FIELDS = frozenset(f.name for f in fields(TrialRecord)) - {"extra"}
assert set(TRIAL_COLUMNS) == _FIELDS, "TrialRecord fields and TRIAL_COLUMNS disagree"


def _number(value: Any, kind: type, name: str, where: str) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunStoreError(f"{where}: {name} should be a number, got {shown(value)}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise RunStoreError(f"{where}: {name} should be a whole number, got {shown(value)}")
        return int(value)
    return float(value)


def _boolean(value: Any, where: str) -> bool:
    if value in (None, "", False, "False", "false"):
        return False
    if value in (True, "True", "true"):
        return True
    raise RunStoreError(f"{where}: reused should be true or false, got {shown(value)}")


def one_per_architecture(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """One record per architecture hash, the original (not reused, lowest trial id); ordered by trial id."""
    first: dict[str, TrialRecord] = {}
    for record in sorted(records, key=lambda r: (r.reused, r.trial_id)):
        first.setdefault(record.arch_hash, record)
    return sorted(first.values(), key=lambda r: r.trial_id)


def pareto_front(records: Sequence[TrialRecord], objectives: Sequence[Objective], fidelity: str) -> list[TrialRecord]:
    """The non-dominated complete records of one fidelity (finite objectives), one per architecture, by trial id."""
    pool = [r for r in records if r.complete and r.fidelity == fidelity
            and all(r.finite(o.name) is not None for o in objectives)]
    if not pool:
        return []
    ranks = front_ranks(loss_matrix([[r.finite(o.name) for o in objectives] for r in pool], objectives))
    return one_per_architecture([r for r, rank in zip(pool, ranks, strict=True) if rank == 1])
