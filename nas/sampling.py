"""Sample → budget-solve → count: the pipeline behind `nas space sample` and the search's proposals."""

from __future__ import annotations

from dataclasses import dataclass

from nas.space.architecture import Architecture
from nas.space.budget import Budget
from nas.space.space import Space


@dataclass(frozen=True)
class Shape:
    """What a network is built for: input channels, square resolution, number of classes."""

    in_channels: int
    resolution: int
    num_classes: int

    @classmethod
    def from_mapping(cls, mapping: dict[str, int]) -> Shape:
        return cls(mapping["channels"], mapping["resolution"], mapping["classes"])


@dataclass(frozen=True)
class Solved:
    """An architecture with absolute widths and its exact parameter count."""

    arch: Architecture
    params: int


def fit(arch: Architecture, budget: Budget | None, shape: Shape) -> Solved:
    """Scale ``arch`` to the budget (widths as reference widths) or take it as written."""
    from nas.models import count_params, solve_budget

    if budget is not None:
        arch = solve_budget(
            arch,
            budget=budget.params,
            tolerance=budget.tolerance,
            divisor=budget.divisor,
            in_channels=shape.in_channels,
            num_classes=shape.num_classes,
        )
    return Solved(arch, count_params(arch, in_channels=shape.in_channels, num_classes=shape.num_classes))


@dataclass(frozen=True)
class Sample:
    """Fitted architectures, and the draws skipped because no width of theirs meets the budget window."""

    solved: list[Solved]
    infeasible: list[str]


def sample_solved(space: Space, n: int, *, seed: int, budget: Budget | None, shape: Shape) -> Sample:
    """``n`` distinct architectures of ``space`` (seeded), each fitted to the budget.

    A draw the budget solver cannot fit (rounding puts it outside the tolerance window) is skipped and
    named, as the search skips it; when no draw at all fits, the solver's error is raised.
    """
    from nas.errors import BudgetError, SpaceError

    size = space.size()
    if n > size:
        raise SpaceError(f"space {space.name!r} has only {size} distinct architectures; asked for {n}")
    solved: list[Solved] = []
    infeasible: list[str] = []
    for arch in space.distinct_samples(seed):
        if len(solved) == n:
            break
        try:
            solved.append(fit(arch, budget, shape))
        except BudgetError:
            infeasible.append(arch.to_string())
            if not solved and len(infeasible) >= 20:
                raise
    return Sample(solved, infeasible)
