"""Sample → budget-solve → count: the pipeline behind `nas space sample` and the search's proposals."""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import BudgetError, ConfigError, SpaceError, shown
from nas.space import rules
from nas.space.architecture import Architecture
from nas.space.budget import Budget
from nas.space.space import Space


@dataclass(frozen=True)
class Shape:
    """What a network is built for: input channels, square resolution, number of classes.

    Each obeys its field rule (``nas.space.rules``: channels 1 … 1,024, resolution 4 … 16,384 px,
    classes 2 … 1,000,000); a value outside it is a ConfigError.
    """

    in_channels: int
    resolution: int
    num_classes: int

    def __post_init__(self) -> None:
        for name, field in (("in_channels", "channels"), ("resolution", "resolution"), ("num_classes", "classes")):
            problem = rules.problem(field, getattr(self, name))
            if problem is not None:
                raise ConfigError(f"the input {field} {problem}")

    @classmethod
    def from_mapping(cls, mapping: dict[str, int]) -> Shape:
        return cls(mapping["channels"], mapping["resolution"], mapping["classes"])


@dataclass(frozen=True)
class Solved:
    """An architecture with absolute widths and its exact parameter count."""

    arch: Architecture
    params: int


def _solve(arch: Architecture, budget: Budget | None, shape: Shape) -> Solved:
    """The budget solver alone: a BudgetError when no widths of ``arch`` meet the budget window."""
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


def _check_memory(solved: Solved, shape: Shape) -> None:
    from nas.models.memory import check_memory

    check_memory(solved.arch, in_channels=shape.in_channels, num_classes=shape.num_classes, resolution=shape.resolution)


def _check_budget(budget: Budget | None) -> None:
    from nas.models.memory import check_param_budget

    if budget is not None:
        check_param_budget(budget.lower)


def fit(arch: Architecture, budget: Budget | None, shape: Shape) -> Solved:
    """Scale ``arch`` to the budget (widths as reference widths) or take it as written.

    Nothing is allocated, and what cannot exist is refused with a BudgetError stating the numbers: a
    budget whose weights alone exceed this machine's memory (before solving), and a network whose
    parameters and activations for one ``shape.resolution`` image do (``nas.models.memory.check_memory``).
    """
    _check_budget(budget)
    solved = _solve(arch, budget, shape)
    _check_memory(solved, shape)
    return solved


@dataclass(frozen=True)
class Sample:
    """Fitted architectures, and the draws skipped because no width of theirs meets the budget window."""

    solved: list[Solved]
    infeasible: list[str]


def sample_solved(space: Space, n: int, *, seed: int, budget: Budget | None, shape: Shape) -> Sample:
    """``n`` distinct architectures of ``space`` (seeded), each fitted to the budget.

    A draw the budget solver cannot fit (rounding puts it outside the tolerance window) is skipped and
    named, as the search skips it. When no draw fits (20 in a row, or every architecture of a smaller
    space), a BudgetError says so with the solver's reason. A network too large for this machine's memory
    is not skipped: the BudgetError of ``fit`` is raised at once. ``n`` below 1 is a ConfigError.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of architectures to sample must be at least 1, got {shown(n)}")
    size = space.size()
    if n > size:
        raise SpaceError(f"space {shown(space.name)} has only {size:,} distinct architectures; asked for {n:,}")
    _check_budget(budget)
    solved: list[Solved] = []
    infeasible: list[str] = []
    reason = ""
    for arch in space.distinct_samples(seed):
        if len(solved) == n:
            break
        try:
            one = _solve(arch, budget, shape)
        except BudgetError as exc:
            infeasible.append(arch.to_string())
            reason = str(exc)
            if not solved and len(infeasible) >= _GIVE_UP:
                break
            continue
        _check_memory(one, shape)
        solved.append(one)
    if not solved:
        assert budget is not None  # without a budget nothing is infeasible
        raise BudgetError(
            f"none of the {len(infeasible):,} architectures drawn from {shown(space.name)} meets the budget of "
            f"{budget.params:,} parameters (tolerance {budget.tolerance:g}); the last one: {shown(reason, 200)}"
        )
    return Sample(solved, infeasible)


_GIVE_UP = 20  # infeasible draws in a row before sample_solved gives up
