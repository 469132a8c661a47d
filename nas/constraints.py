"""What the sampler learns from besides objective values: failed trials and ceilings, as Optuna constraints.

A run made by this version tells its study every trial outcome as a COMPLETE trial with constraint values
(``trial.set_constraint``; feasible when every value is ≤ 0), so each sampler that reads constraints
(GP, TPE, NSGA-II) learns where networks fail or break a ceiling instead of proposing them again:

- ``trained``: 0 for a trial that trained to finite objectives, 1 for one that failed (diverged,
  non-finite metrics, crashed); a failed trial is told the pessimistic objective values
  (:func:`pessimistic_values`), never a measured one. The run store keeps it as ``failed``, so no
  report counts it as a result.
- one per ceiling (``--max-macs``, ``--max-activation-memory``): the relative excess
  ``(value − ceiling) / ceiling`` of the network as built, computed from the architecture before it is
  trained. A proposal above a ceiling is not trained and is not a trial of the run (as one that cannot meet
  the budget): it is told infeasible with pessimistic values and the sampler asks again.

Pruned trials stay PRUNED. Runs made before (``RunConfig.constraints`` null) keep telling failures as FAIL,
since the samplers need the same constraint names on every complete trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.errors import ConfigError, shown
from nas.objectives import MAXIMIZE, METRICS, Objective
from nas.space.budget import parse_count

TRAINED = "trained"
CEILINGS: dict[str, tuple[str, str]] = {  # name -> (option, what it counts)
    "macs": ("--max-macs", "MAC"),
    "activation_memory": ("--max-activation-memory", "byte"),
}


def parse_ceilings(macs: str | None = None, activation_memory: str | None = None) -> dict[str, int]:
    """The ceilings a user gave (``50M`` MACs, ``256k`` bytes of peak activation memory at batch 1)."""
    given = {"macs": macs, "activation_memory": activation_memory}
    return {name: parse_count(text, CEILINGS[name][0], CEILINGS[name][1])
            for name, text in given.items() if text is not None}


def ceiling_values(arch: Any, shape: Any, names: list[str]) -> dict[str, float]:
    """The measured values of the named ceilings for ``arch`` as built at ``shape`` (one forward pass each)."""
    import torch

    from nas.complexity import count_macs, peak_activation_bytes
    from nas.models import build_model

    model = build_model(arch, in_channels=shape.in_channels, num_classes=shape.num_classes,
                        resolution=shape.resolution)
    example = torch.randn(1, shape.in_channels, shape.resolution, shape.resolution)
    out: dict[str, float] = {}
    if "macs" in names:
        out["macs"] = float(count_macs(model, example)[0])
    if "activation_memory" in names:
        out["activation_memory"] = float(peak_activation_bytes(model, example))
    return out


@dataclass
class Constraints:
    """A run's constraints: ``trained`` and its ceilings, measured per network (cached by semantic hash)."""

    ceilings: dict[str, int]
    shape: Any
    _measured: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @classmethod
    def of_run(cls, stored: Mapping[str, int | None] | None, shape: Any) -> Constraints | None:
        """The constraints a run.yaml names (``{trained: null, macs: 50000000}``), or None for an older run."""
        if stored is None:
            return None
        return cls({k: int(v) for k, v in stored.items() if k != TRAINED and v is not None}, shape)

    def to_config(self) -> dict[str, int | None]:
        return {TRAINED: None, **self.ceilings}

    def values(self, arch: Any) -> dict[str, float]:
        key = arch.semantic_hash
        if key not in self._measured:
            self._measured[key] = ceiling_values(arch, self.shape, list(self.ceilings))
        return self._measured[key]

    def excess(self, arch: Any) -> dict[str, float]:
        """Each ceiling's relative excess for ``arch`` (≤ 0: within it); nothing is built without ceilings."""
        if not self.ceilings:
            return {}
        values = self.values(arch)
        return {name: (values[name] - ceiling) / ceiling for name, ceiling in self.ceilings.items()}

    def broken(self, arch: Any) -> str | None:
        """Which ceilings ``arch`` breaks, in words, or None."""
        values = self.values(arch)
        over = [f"{'MACs' if n == 'macs' else 'peak activation bytes'} {values[n]:,.0f} > {c:,}"
                for n, c in self.ceilings.items() if values[n] > c]
        return "; ".join(over) or None

    def tell(self, study: Any, trial: Any, objectives: list[Objective], arch: Any, values: list[float] | None,
             *, failed: bool) -> None:
        """Tell ``trial`` COMPLETE with ``values``, or pessimistic values when there are none (a trial that
        ``failed``, trained = 1, or a proposal above a ceiling, not trained)."""
        import warnings

        with warnings.catch_warnings():  # a trial cut by a kill after its constraints is told them again on
            warnings.filterwarnings("ignore", message="The constraint value is ignored")  # resume: same values
            trial.set_constraint(TRAINED, 1.0 if failed else 0.0)
            for name, excess in self.excess(arch).items():
                trial.set_constraint(name, excess)
        study.tell(trial, values if values is not None else pessimistic_values(study, objectives))


def pessimistic_values(study: Any, objectives: list[Objective]) -> list[float]:
    """Objective values no trained network is worse than: 0 or 1 for a metric in [0, 1] (accuracy 0,
    polysemanticity 1), else the worst value of the study's complete trials (0 when it has none)."""
    import optuna

    done = [t.values for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    out = []
    for i, objective in enumerate(objectives):
        maximize = objective.direction == MAXIMIZE
        metric = METRICS.get(objective.name)
        if metric is not None and metric.unit:
            out.append(0.0 if maximize else 1.0)
            continue
        seen = [v[i] for v in done if v is not None and math.isfinite(v[i])]
        out.append((min(seen) if maximize else max(seen)) if seen else 0.0)
    return out


def check_ceilings(ceilings: Mapping[str, Any]) -> None:
    """Known names and positive whole values (a hand-edited run.yaml is held to what the options accept)."""
    for name, value in ceilings.items():
        if name == TRAINED:
            continue
        if name not in CEILINGS:
            raise ConfigError(f"unknown constraint {shown(name)}; known: {TRAINED}, {', '.join(CEILINGS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"constraint {name}: the ceiling must be a positive whole number, got {shown(value)}")
