"""The search-space language: schema, Space, Architecture, budgets (no torch imported here)."""

from __future__ import annotations

from nas.space.architecture import Architecture, Head, Stage, Stem, parse_architecture
from nas.space.budget import Budget, format_count, parse_budget
from nas.space.resolve import Target, load_target
from nas.space.schema import SpaceSpec, load_space_file, parse_space
from nas.space.space import Space

__all__ = [
    "Architecture",
    "Budget",
    "Head",
    "Space",
    "SpaceSpec",
    "Stage",
    "Stem",
    "Target",
    "format_count",
    "load_space_file",
    "load_target",
    "parse_architecture",
    "parse_budget",
    "parse_space",
]
