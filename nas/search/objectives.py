"""Objectives and samplers: names a user types → metric columns, directions, Optuna samplers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError

INTERFERENCE_METRICS = ("polysemanticity", "overlap", "outliers", "dead_fraction")
# metric column -> direction
OBJECTIVE_DIRECTIONS: dict[str, str] = {
    "accuracy": "maximize",
    **{m: "minimize" for m in INTERFERENCE_METRICS},
    "params": "minimize",
    "macs": "minimize",
}
SAMPLERS = ("nsga2", "tpe", "gp", "random")


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "direction": self.direction}


def resolve_objectives(text: str, interference: str) -> list[Objective]:
    """``accuracy,interference`` → [accuracy (max), <interference metric> (min)]."""
    if interference not in INTERFERENCE_METRICS:
        raise ConfigError(
            f"unknown interference metric {interference!r}; choose one of {', '.join(INTERFERENCE_METRICS)}"
        )
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--objectives needs at least one name, e.g. accuracy,interference")
    out = []
    for name in names:
        metric = interference if name == "interference" else name
        if metric not in OBJECTIVE_DIRECTIONS:
            raise ConfigError(
                f"unknown objective {name!r}; choose from interference, {', '.join(OBJECTIVE_DIRECTIONS)}"
            )
        out.append(Objective(metric, OBJECTIVE_DIRECTIONS[metric]))
    if len({o.name for o in out}) != len(out):
        raise ConfigError(f"--objectives names one metric twice: {text!r}")
    return out


def make_sampler(name: str, *, seed: int, population: int) -> Any:
    """The Optuna sampler behind ``--sampler``; seeded so that a run is reproducible."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def default_population(trials: int) -> int:
    """NSGA-II population: a quarter of the trials, between 4 and 50, so that several generations run."""
    return max(4, min(50, trials // 4))
