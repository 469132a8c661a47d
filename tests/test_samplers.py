"""The samplers behind `nas search --sampler`: seeded, and quiet on the conditional space the search uses."""

from __future__ import annotations

import logging

import optuna
import pytest

from nas.errors import ConfigError
from nas.search.samplers import SAMPLERS, check_sampler, make_sampler


def _conditional(trial: optuna.Trial) -> float:
    family = trial.suggest_categorical("family", ["convnext", "basic"])
    norm = trial.suggest_categorical("norm", ["bn", "ln"]) if family == "basic" else "none"
    width = trial.suggest_int("width", 8, 64)
    return width / 64 + (0.1 if norm == "ln" else 0.0)


def test_gp_does_not_warn_on_every_trial_of_a_conditional_space(caplog: pytest.LogCaptureFixture) -> None:
    optuna.logging.enable_propagation()
    try:
        study = optuna.create_study(direction="maximize", sampler=make_sampler("gp", seed=0, population=4))
        with caplog.at_level(logging.WARNING, logger="optuna"):
            study.optimize(_conditional, n_trials=14)
    finally:
        optuna.logging.disable_propagation()
    assert len(study.trials) == 14
    assert not [r for r in caplog.records if "sampled independently" in r.getMessage()]


@pytest.mark.parametrize("name", SAMPLERS)
def test_each_sampler_is_seeded(name: str) -> None:
    def params(seed: int) -> list[dict]:
        study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed=seed, population=4))
        study.optimize(_conditional, n_trials=6)
        return [t.params for t in study.trials]

    assert params(3) == params(3)


def test_an_unknown_sampler_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown sampler"):
        check_sampler("annealing")
