"""Turn what a user typed (a space file or an architecture string) into a Target."""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import SpaceError, shown
from nas.space.architecture import Architecture, parse_architecture
from nas.space.budget import Budget, check_divisor, check_tolerance, parse_budget
from nas.space.paths import display_path, path_kind
from nas.space.schema import DEFAULT_INPUT
from nas.space.space import Space


@dataclass(frozen=True)
class Target:
    """A space (from a file) or a single architecture (from a string), with its default input shape."""

    space: Space | None
    arch: Architecture | None
    input: dict[str, int]
    budget: Budget | None
    label: str

    def single(self) -> Architecture:
        """The one architecture this target names; an error for a space with several."""
        if self.arch is not None:
            return self.arch
        assert self.space is not None
        size = self.space.size()
        if size != 1:
            raise SpaceError(
                f"{self.label} describes {size:,} architectures, not one; use `nas space sample` "
                "or pass an architecture string"
            )
        return next(self.space.enumerate())


def load_target(
    text: str,
    *,
    budget: str | None = None,
    tolerance: float | None = None,
    divisor: int | None = None,
) -> Target:
    """Read a space file or an architecture string; command-line budget options override the file's.

    ``text`` is a file when it exists as one (or as a directory, which is refused) or ends in .yaml/.yml;
    otherwise it is an architecture string. Text that cannot be a path (a NUL byte, longer than
    4,096 bytes) is never handed to the file system.
    """
    if not isinstance(text, str):
        raise SpaceError(f"expected a space file or an architecture string, got {type(text).__name__} {shown(text)}")
    kind = path_kind(text)
    if kind == "dir":
        raise SpaceError(f"{display_path(text)} is a directory, not a space file")
    if kind is not None or text.rstrip().endswith((".yaml", ".yml")):
        space = Space.from_file(text)
        base = space.spec.budget
        shape, label, arch = dict(space.spec.input), display_path(text), None
    else:
        space, base, shape, label = None, None, dict(DEFAULT_INPUT), "architecture"
        arch = parse_architecture(text)
    resolved: Budget | None = None
    if budget is not None or base is not None:
        resolved = Budget(
            params=parse_budget(budget) if budget is not None else base.params,  # type: ignore[union-attr]
            tolerance=check_tolerance(tolerance if tolerance is not None else (base.tolerance if base else 0.05)),
            divisor=check_divisor(divisor if divisor is not None else (base.divisor if base else 8)),
        )
    return Target(space=space, arch=arch, input=shape, budget=resolved, label=label)
