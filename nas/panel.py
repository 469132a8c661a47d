"""A stratified panel of architectures: every level of every stratifying choice appears about equally often.

Used by `nas audit` (a panel to rank) and by benchmarks. For a panel of ``n`` and a factor with ``L``
levels (e.g. ``block`` with 7 families), the factor's level for architecture ``i`` is entry ``i`` of a
sequence made of seeded random permutations of the levels laid end to end, so each level appears
``floor(n / L)`` or ``ceil(n / L)`` times, and factors are assigned independently of each other. Every
other decision is drawn uniformly with a seeded ``random.Random``; a draw that cannot meet the budget is
drawn again with the same stratified levels (up to ``MAX_REDRAWS`` times) before it is given up and named.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import BudgetError, ConfigError
from nas.sampling import Shape, Solved, fit
from nas.space import Budget, Space

DEFAULT_STRATA: tuple[str, ...] = ("block", "activation", "norm")
MAX_REDRAWS = 200


@dataclass(frozen=True)
class Panel:
    """The fitted architectures of a panel, and the stratified assignments that could not meet the budget."""

    members: list[Solved]
    given_up: list[dict[str, Any]]


def choice_levels(space: Space, name: str) -> tuple[Any, ...]:
    """Every value ``name`` can take anywhere in the space (network-wide or per stage), in first-seen order."""
    values: list[Any] = list(space.network_choices.get(name) or ())
    for slot in space.slots:
        values.extend(slot.own.get(name) or ())
    return tuple(dict.fromkeys(values))


def stratified_panel(
    space: Space,
    n: int,
    *,
    seed: int,
    budget: Budget | None,
    shape: Shape,
    strata: Sequence[str] = DEFAULT_STRATA,
) -> Panel:
    """``n`` distinct architectures of ``space``, stratified over ``strata``, each fitted to ``budget``."""
    if n < 1:
        raise ConfigError(f"a panel needs at least 1 architecture, got {n}")
    rng = random.Random(seed)
    plan: dict[str, list[Any]] = {}
    for name in strata:
        levels = choice_levels(space, name)
        if not levels:
            raise ConfigError(f"cannot stratify on {name!r}: it is not a choice of space {space.name!r}")
        sequence: list[Any] = []
        while len(sequence) < n:
            sequence.extend(rng.sample(levels, len(levels)))
        plan[name] = sequence[:n]
    members: list[Solved] = []
    given_up: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(n):
        levels = {name: plan[name][i] for name in strata}

        def pick(key: str, values: tuple[Any, ...], levels: dict[str, Any] = levels) -> Any:
            wanted = levels.get(key.split(".", 1)[1], _UNSET)
            return wanted if wanted in values else values[rng.randrange(len(values))]

        for _ in range(MAX_REDRAWS):
            arch = space.build(pick)
            if arch.semantic_hash in seen:
                continue
            try:
                solved = fit(arch, budget, shape)
            except BudgetError:
                continue
            if solved.arch.semantic_hash in seen:
                continue
            seen.update((arch.semantic_hash, solved.arch.semantic_hash))
            members.append(solved)
            break
        else:
            given_up.append(levels)
    return Panel(members, given_up)


_UNSET = object()
