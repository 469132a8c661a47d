"""What a comparison is made of: its members (architecture, group, origin) and seeds, as run.yaml stores them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nas.run import RunConfig

GROUPS = ("winner", "random", "baseline", "arch")


@dataclass(frozen=True)
class Member:
    """One architecture of the comparison, its group and where it came from."""

    group: str
    label: str  # "s0 trial 15", "random 3", "mobilenet_v2", "arch 1"
    arch: str  # absolute widths, as trained
    params: int
    source: dict[str, Any] = field(default_factory=dict)  # run and trial with its search numbers, or the adaptation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seeds_of(config: RunConfig) -> list[int]:
    """The training seeds of a comparison, in trial order."""
    return list((config.design or {})["seeds"])


def members_of(config: RunConfig) -> list[Member]:
    """The members of a comparison, in the order their trial ids follow."""
    return [Member(**m) for m in (config.design or {})["members"]]


def planned_trials(config: RunConfig) -> int:
    """Every member at every seed, plus one long-recipe trial per group present when there is a long recipe."""
    members = members_of(config)
    long = len({m.group for m in members}) if (config.design or {}).get("long") else 0
    return len(members) * len(seeds_of(config)) + long
