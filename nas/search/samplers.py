"""Samplers of `nas search --sampler`: names a user types → seeded Optuna samplers."""

from __future__ import annotations

from typing import Any

from nas.errors import ConfigError, shown

SAMPLERS = ("nsga2", "tpe", "gp", "random")


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {shown(name)}; choose one of {', '.join(SAMPLERS)}")
    return name


def make_sampler(name: str, *, seed: int, population: int) -> Any:
    """The Optuna sampler behind ``--sampler``; seeded so that a run is reproducible."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
    if name == "gp":
        # The space is conditional (convnext has no norm choice), so GP samples such parameters with its random
        # fallback by design; Optuna would warn about it on every trial of every default search.
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {shown(name)}; choose one of {', '.join(SAMPLERS)}")


def default_population(trials: int) -> int:
    """NSGA-II population: a quarter of the trials, between 4 and 50, so that several generations run."""
    return max(4, min(50, trials // 4))
