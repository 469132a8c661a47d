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


def sample_solved(space: Space, n: int, *, seed: int, budget: Budget | None, shape: Shape) -> list[Solved]:
    """``n`` distinct architectures of ``space`` (seeded), each fitted to the budget."""
    return [fit(arch, budget, shape) for arch in space.sample_distinct(n, seed)]
