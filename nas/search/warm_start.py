"""`nas search --warm-start RUN ...`: a new search's study starts knowing every finished trial of earlier runs.

An earlier run qualifies when it searched the same space at the same budget, fidelity and data set (a
mismatch is refused by name before anything starts). Its complete trials with finite values for every
objective of the new run are added to the new study as COMPLETE trials (``study.add_trial``), with the
Optuna parameters that name their architecture (recovered from the architecture and checked to rebuild
it) and the user attribute ``warm_start`` = ``<run>:<trial id>``: the sampler learns from them, nothing
is retrained, and they are not trials of the new run (its trials.csv holds only what it trained).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.constraints import Constraints
from nas.errors import ConfigError, shown
from nas.run import RunConfig, RunStore, TrialRecord
from nas.space import Space
from nas.space.architecture import Architecture
from nas.space.space import family_reads

ATTRIBUTE = "warm_start"


def open_sources(paths: Sequence[str], config: RunConfig, results_dir: Any) -> list[RunStore]:
    """The earlier runs, each checked to match ``config`` (the new run) in space, budget, fidelity and data."""
    out = []
    for text in dict.fromkeys(paths):
        store = RunStore.open(text, results_dir)
        other = store.read_config()
        if other.kind != "search":
            raise ConfigError(f"--warm-start {store.root} is a `nas {other.kind}` run; a search starts from searches")
        for what, mine, theirs in (
            ("space", config.space, other.space), ("budget", config.budget, other.budget),
            ("fidelity", config.fidelity.name, other.fidelity.name), ("data set", config.dataset, other.dataset),
            ("input resolution", config.resolution, other.resolution),
        ):
            if mine != theirs:
                shown_mine, shown_theirs = _label(what, mine, config), _label(what, theirs, other)
                raise ConfigError(f"--warm-start {store.root} searched another {what} ({shown(shown_theirs, 80)}, "
                                  f"this search: {shown(shown_mine, 80)}); only runs of the same space, budget, "
                                  "fidelity and data set can warm-start it")
        out.append(store)
    return out


def _label(what: str, value: Any, config: RunConfig) -> str:
    if what == "space":
        return config.space_name
    if what == "budget":
        return "none" if value is None else f"{value.params:,} parameters, tolerance {value.tolerance:g}"
    return str(value)


def params_of(space: Space, arch: Architecture) -> dict[str, Any] | None:
    """The Optuna parameters (as ``Space.suggest`` asks them) that build ``arch``, or None when ``space`` cannot
    build it. Widths are not parameters: the architecture is compared with the space's build at its own widths."""
    params: dict[str, Any] = {}
    stages = arch.stages
    if len(stages) != len(space.slots):
        return None

    def pick(key: str, values: tuple[Any, ...]) -> Any:
        scope, _, name = key.partition(".")
        if scope == "net":
            readers = [s for s in stages if name == "block" or family_reads(s.block, name)]
            value = getattr(readers[0], name) if readers else values[0]
        else:
            value = getattr(stages[int(scope[1:])], name)
        if value not in values:
            raise LookupError(key)
        params[key] = value
        return value

    try:
        built = space.build(pick)
    except (LookupError, ValueError):
        return None
    rebuilt = built.with_widths(arch.stem.width, [s.width for s in arch.stages], arch.head.width, arch.head.hidden)
    return params if rebuilt == arch else None


@dataclass
class WarmStart:
    """What was told: trials added per source run, and records left out with why."""

    told: int
    skipped: dict[str, int]
    sources: list[str]

    def line(self) -> str:
        left = "; ".join(f"{n} {why}" for why, n in self.skipped.items())
        return (f"warm start: {self.told} finished trial(s) of {', '.join(self.sources)} told to the study"
                + (f" (left out: {left})" if left else ""))


def already_told(study: Any) -> bool:
    """Whether the study holds warm-start trials already (a resumed run told them when it started)."""
    return any(ATTRIBUTE in t.user_attrs for t in study.get_trials(deepcopy=False))


def tell_earlier_trials(study: Any, space: Space, config: RunConfig, sources: Sequence[RunStore],
                        constraints: Constraints | None) -> WarmStart:
    """Add the complete trials of ``sources`` to ``study`` as COMPLETE trials (with the run's constraint
    values when it has constraints: every complete trial of such a study carries them)."""
    import optuna

    told, skipped = 0, {}
    seen: set[str] = set()
    for store in sources:
        for record in store.records():
            why = _unusable(record, config, seen)
            if why is None:
                params = params_of(space, Architecture.parse(record.arch))
                why = "not built by this space's parameters" if params is None else None
            if why is not None:
                skipped[why] = skipped.get(why, 0) + 1
                continue
            assert params is not None
            distributions = {key: optuna.distributions.CategoricalDistribution(_choices(space, key))
                             for key in params}
            values = [float(record.value(o.name)) for o in config.objectives]
            attrs = {ATTRIBUTE: f"{store.root.name}:{record.trial_id}", "arch_hash": record.arch_hash}
            if constraints is None:
                study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=values,
                                                          user_attrs=attrs))
            else:
                study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
                trial = study.ask(fixed_distributions=distributions)
                constraints.tell(study, trial, config.objectives, Architecture.parse(record.arch), values,
                                 failed=False)
            seen.add(record.arch_hash)
            told += 1
    return WarmStart(told, skipped, [s.root.name for s in sources])


def _unusable(record: TrialRecord, config: RunConfig, seen: set[str]) -> str | None:
    if not record.complete or record.fidelity != config.fidelity.name:
        return "not complete at the fidelity"
    if record.arch_hash in seen:
        return "the same network twice"
    values = [record.value(o.name) for o in config.objectives]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return "an objective not finite"
    return None


def _choices(space: Space, key: str) -> list[Any]:
    """The values ``Space.build`` offers for ``key`` (as ``Space.suggest`` declares them to Optuna)."""
    scope, _, name = key.partition(".")
    if scope == "net":
        return list(space.network_choices[name])
    slot = space.slots[int(scope[1:])]
    return list(slot.depths if name == "depth" else slot.own[name])
