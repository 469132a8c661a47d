"""Objectives of an analysis: names, directions, and the minimisation ("loss") space they map to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError

# Interference metrics recorded by every trial (nas.metrics.interference_suite); all are minimised.
INTERFERENCE_METRICS: tuple[str, ...] = ("polysemanticity", "overlap", "outliers", "dead_fraction")
METRIC_COLUMNS: tuple[str, ...] = ("accuracy", *INTERFERENCE_METRICS)
# Other numeric trials.csv columns that may be named as objectives.
OTHER_NUMERIC_COLUMNS: tuple[str, ...] = ("params", "macs", "train_images_per_s", "wall_s")
# Columns that are bookkeeping, never objectives.
NON_OBJECTIVE_COLUMNS: frozenset[str] = frozenset(
    {"trial_id", "status", "reason", "reused", "arch", "arch_hash", "fidelity", "epochs", "seed"}
)
# Metrics known to lie in [0, 1]: their hypervolume reference is fixed (1.0 in loss space).
UNIT_METRICS: frozenset[str] = frozenset({"accuracy", "polysemanticity", "overlap", "dead_fraction"})
MAXIMIZED_BY_DEFAULT: frozenset[str] = frozenset({"accuracy", "train_images_per_s"})
DEFAULT_INTERFERENCE = "polysemanticity"
_DIRECTION_WORDS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


@dataclass(frozen=True)
class Objective:
    """One objective: a trials.csv column and whether larger is better."""

    name: str
    direction: str  # "maximize" | "minimize"

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def unit(self) -> bool:
        """Whether the metric lies in [0, 1] (fixed hypervolume reference)."""
        return self.name in UNIT_METRICS

    @property
    def loss_label(self) -> str:
        """How the objective is written in minimisation space."""
        if self.name == "accuracy":
            return "error = 1 − accuracy"
        if self.maximize:
            return f"1 − {self.name}" if self.unit else f"−{self.name}"
        return self.name

    def to_loss(self, values: Any) -> Any:
        """Map raw values (float or numpy array) to the minimisation space."""
        if not self.maximize:
            return values
        return 1.0 - values if self.unit else -values

    def from_loss(self, loss: Any) -> Any:
        """Inverse of :meth:`to_loss`."""
        if not self.maximize:
            return loss
        return 1.0 - loss if self.unit else -loss

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "direction": self.direction}


def run_objectives(config: Mapping[str, Any]) -> list[Objective]:
    """The objectives a run optimised (run.yaml ``objectives``), defaulting to accuracy + polysemanticity."""
    raw = config.get("objectives")
    out: list[Objective] = []
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for item in raw:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                name = item["name"]
                direction = _DIRECTION_WORDS.get(str(item.get("direction", "")).lower(), _default_direction(name))
                out.append(Objective(name, direction))
            elif isinstance(item, str):
                out.append(Objective(item, _default_direction(item)))
    return out or [Objective("accuracy", "maximize"), Objective(DEFAULT_INTERFERENCE, "minimize")]


def interference_name(config: Mapping[str, Any]) -> str:
    """The interference metric a run optimised: its non-accuracy objective (default polysemanticity)."""
    for obj in run_objectives(config):
        if obj.name in INTERFERENCE_METRICS:
            return obj.name
    for obj in run_objectives(config):
        if obj.name != "accuracy":
            return obj.name
    return DEFAULT_INTERFERENCE


def _default_direction(name: str) -> str:
    return "maximize" if name in MAXIMIZED_BY_DEFAULT else "minimize"


def resolve_objectives(
    requested: Sequence[str] | None, config: Mapping[str, Any], columns: Sequence[str]
) -> list[Objective]:
    """Objectives for an analysis.

    ``requested`` is None (use run.yaml's objectives) or a list of names, each a trials.csv
    metric column, ``interference`` (the interference metric the run optimised), optionally
    suffixed ``:max`` / ``:min`` to force a direction. Directions otherwise come from run.yaml,
    else accuracy and throughput are maximised and everything else minimised.
    """
    known = {o.name: o.direction for o in run_objectives(config)}
    if requested is None:
        objectives = run_objectives(config)
    else:
        items = [part.strip() for item in requested for part in item.split(",") if part.strip()]
        if not items:
            raise ConfigError("--objectives is empty; name one or more metrics, e.g. accuracy,interference.")
        objectives = []
        for item in items:
            name, _, direction_word = item.partition(":")
            name = name.strip()
            if name == "interference":
                name = interference_name(config)
            if direction_word:
                direction = _DIRECTION_WORDS.get(direction_word.strip().lower())
                if direction is None:
                    raise ConfigError(
                        f"objective {item!r}: unknown direction {direction_word!r}; use :max or :min "
                        "(or leave it out for the default)."
                    )
            else:
                direction = known.get(name, _default_direction(name))
            objectives.append(Objective(name, direction))
    names = [o.name for o in objectives]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"objective(s) {', '.join(duplicated)} named twice in --objectives; name each once.")
    available = recordable_columns(columns)
    for obj in objectives:
        if obj.name in NON_OBJECTIVE_COLUMNS or obj.name not in columns:
            raise ConfigError(
                f"the run did not record an objective named {obj.name!r}; its trials.csv has these metrics: "
                f"{', '.join(available) or 'none'} (and 'interference' means the run's own interference metric)."
            )
    return objectives


def recordable_columns(columns: Sequence[str]) -> list[str]:
    """Columns of a trials.csv that can serve as objectives."""
    return [c for c in columns if c not in NON_OBJECTIVE_COLUMNS]
