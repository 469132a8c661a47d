"""The metric table, objectives, the one rule for "the interference objective", and the one non-dominated sort.

Every metric a trial records is a row of :data:`METRICS`: its name (the trial-record column), whether
larger or smaller is better, its kind (``accuracy``, ``interference``, ``cost`` or ``proxy``), how it is
shown, and whether it lies in [0, 1] (then its hypervolume reference is fixed at 1 in loss space).

An :class:`Objective` is a metric and a direction. All multi-objective arithmetic happens in
minimisation ("loss") space: ``loss = 1 − value`` for a maximised unit metric (error = 1 − accuracy),
``−value`` for another maximised metric, ``value`` for a minimised one. Search, analysis and retraining
all ask :func:`interference_objective` which objective is the interference one, and rank with
:func:`front_ranks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, shown
from nas.metrics.names import METRIC_NAMES, ZERO_COST_NAMES

if TYPE_CHECKING:
    import numpy as np

MAXIMIZE, MINIMIZE = "maximize", "minimize"
KINDS = ("accuracy", "interference", "cost", "proxy")


@dataclass(frozen=True)
class Metric:
    """One recorded metric: column name, better direction, kind, display name, and whether it lies in [0, 1]."""

    name: str
    direction: str
    kind: str
    label: str
    unit: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", MAXIMIZE, "accuracy", "accuracy", unit=True),
        Metric("polysemanticity", MINIMIZE, "interference", "polysemanticity", unit=True),
        Metric("overlap", MINIMIZE, "interference", "overlap", unit=True),
        Metric("outliers", MINIMIZE, "interference", "outliers (excess kurtosis)"),
        Metric("dead_fraction", MINIMIZE, "interference", "dead fraction", unit=True),
        Metric("params", MINIMIZE, "cost", "parameters"),
        Metric("macs", MINIMIZE, "cost", "MACs"),
        Metric("latency_ms", MINIMIZE, "cost", "latency (ms)"),
        Metric("train_images_per_s", MAXIMIZE, "cost", "training images/s"),
        Metric("wall_s", MINIMIZE, "cost", "wall seconds"),
        *(Metric(f"zc_{n}", MAXIMIZE, "proxy", f"zero-cost {n}") for n in ZERO_COST_NAMES),
    )
}
INTERFERENCE_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.kind == "interference")
assert INTERFERENCE_METRICS == METRIC_NAMES, "the metric table and nas.metrics.names disagree"
DEFAULT_INTERFERENCE = "polysemanticity"
SEARCH_OBJECTIVES: tuple[str, ...] = ("accuracy", *INTERFERENCE_METRICS, "params", "macs", "latency_ms")
OBJECTIVE_ALIASES = {"latency": "latency_ms"}  # what users type -> the recorded column
_DIRECTION_WORDS = {"max": MAXIMIZE, "maximize": MAXIMIZE, "min": MINIMIZE, "minimize": MINIMIZE}


def default_direction(name: str) -> str:
    """The table's direction for a metric; a column the table does not know is minimised."""
    metric = METRICS.get(name)
    return metric.direction if metric else MINIMIZE


@dataclass(frozen=True)
class Objective:
    """A metric and whether larger is better."""

    name: str
    direction: str

    def __post_init__(self) -> None:
        if self.direction not in (MAXIMIZE, MINIMIZE):
            raise ConfigError(f"objective {shown(self.name)}: direction must be {MAXIMIZE} or {MINIMIZE}")

    @property
    def maximize(self) -> bool:
        return self.direction == MAXIMIZE

    @property
    def kind(self) -> str:
        metric = METRICS.get(self.name)
        return metric.kind if metric else "cost"

    @property
    def unit(self) -> bool:
        """Whether the metric lies in [0, 1] (fixed hypervolume reference)."""
        metric = METRICS.get(self.name)
        return bool(metric and metric.unit)

    @property
    def loss_label(self) -> str:
        """How the objective is written in minimisation space."""
        if self.name == "accuracy":
            return "error = 1 − accuracy"
        if self.maximize:
            return f"1 − {self.name}" if self.unit else f"−{self.name}"
        return self.name

    def to_loss(self, values: Any) -> Any:
        """Raw values (float or numpy array) → minimisation space."""
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

    @classmethod
    def from_dict(cls, data: Any) -> Objective:
        if not isinstance(data, dict) or set(data) != {"name", "direction"} or not isinstance(data["name"], str):
            raise ConfigError(f"an objective is a mapping {{name, direction}}, got {shown(data)}")
        return cls(data["name"], data["direction"])


def parse_objectives(text: str, interference: str) -> list[Objective]:
    """What `nas search --objectives` means: ``accuracy,interference`` → [accuracy (max), <interference> (min)]."""
    if interference not in INTERFERENCE_METRICS:
        raise ConfigError(
            f"unknown interference metric {shown(interference)}; choose one of {', '.join(INTERFERENCE_METRICS)}"
        )
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--objectives needs at least one name, e.g. accuracy,interference")
    out = []
    for name in names:
        metric = interference if name == "interference" else OBJECTIVE_ALIASES.get(name, name)
        if metric not in SEARCH_OBJECTIVES:
            raise ConfigError(f"unknown objective {shown(name)}; choose from interference, latency, "
                              f"{', '.join(SEARCH_OBJECTIVES)}")
        out.append(Objective(metric, default_direction(metric)))
    _refuse_repeats(out, text)
    return out


def resolve_objectives(
    requested: Sequence[str] | None, run_objectives: Sequence[Objective], columns: Iterable[str]
) -> list[Objective]:
    """The objectives of an analysis: the run's own (``requested`` None) or names the user typed.

    A name is a recorded metric column or ``interference`` (the run's interference objective), optionally
    suffixed ``:max`` / ``:min``; otherwise its direction is the run's, else the table's.
    """
    if requested is None:
        return list(run_objectives)
    items = [part.strip() for item in requested for part in item.split(",") if part.strip()]
    if not items:
        raise ConfigError("--objectives is empty; name one or more metrics, e.g. accuracy,interference.")
    known = {o.name: o.direction for o in run_objectives}
    columns = list(columns)
    out = []
    for item in items:
        name, _, word = (part.strip() for part in item.partition(":"))
        if name == "interference":
            inter = interference_objective(run_objectives)
            if inter is None:
                raise ConfigError("'interference' names the run's interference objective, but the run optimised none "
                                  f"({', '.join(o.name for o in run_objectives)}); name a metric instead.")
            name = inter.name
        if word:
            direction = _DIRECTION_WORDS.get(word.lower())
            if direction is None:
                raise ConfigError(f"objective {shown(item)}: unknown direction {shown(word)}; use :max or :min")
        else:
            direction = known.get(name, default_direction(name))
        if name not in columns or (name not in METRICS and name not in known):
            available = [c for c in columns if c in METRICS]
            raise ConfigError(f"the run did not record an objective named {shown(name)}; its metrics are: "
                              f"{', '.join(available) or 'none'} (and 'interference' means the run's own).")
        out.append(Objective(name, direction))
    _refuse_repeats(out, ",".join(items))
    return out


def _refuse_repeats(objectives: Sequence[Objective], text: str) -> None:
    names = [o.name for o in objectives]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--objectives names {', '.join(repeated)} twice ({shown(text)}); name each once")


def interference_objective(objectives: Sequence[Objective]) -> Objective | None:
    """The interference objective: the first objective whose metric is an interference metric, else None.

    With none (e.g. ``accuracy,params``), callers say that no interference metric was optimised rather
    than treat another objective as interference.
    """
    return next((o for o in objectives if o.kind == "interference"), None)


def loss_matrix(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """(n, k) raw objective values → (n, k) losses (smaller is better in every column)."""
    import numpy as np

    values = np.asarray(values, dtype=float).reshape(len(values), len(objectives))
    return np.column_stack([o.to_loss(values[:, i]) for i, o in enumerate(objectives)]) if objectives else values


def front_ranks(losses: np.ndarray) -> np.ndarray:
    """Front number of every point (1 = non-dominated; equal points share a front), by moocore's Pareto ranking."""
    import moocore
    import numpy as np

    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(losses.reshape(len(losses), -1)), dtype=int) + 1
