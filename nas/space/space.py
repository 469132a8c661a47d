"""Space: the set of architectures a space file describes; exact size, seeded sampling, enumeration.

Each stage reads every choice either from the network-level value (``per: network``)
or from its own value (``per: stage`` or a per-stage override). A choice the stage's
block family does not read (see ``vocabulary.FAMILIES``) is folded away, so the size
counts distinct networks, and a network-level choice no stage reads adds nothing.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nas.errors import SpaceError, shown
from nas.space.architecture import Architecture, Head, Stage, Stem
from nas.space.schema import CHOICE_NAMES, SpaceSpec, load_space_file
from nas.space.vocabulary import FAMILIES

# A choice is "read" by a family unless the family folds it away.
_FOLDABLE = {
    "expansion": "uses_expansion",
    "depthwise": "uses_depthwise",
    "norm": "uses_norm",
    **{name: "uses_se" for name in ("se", "se_of", "se_activation", "se_gate")},
}


def family_reads(block: str, choice: str) -> bool:
    """Whether a block family reads a choice (block, activation and kernel are always read)."""
    attr = _FOLDABLE.get(choice)
    return True if attr is None else getattr(FAMILIES[block], attr)


@dataclass(frozen=True)
class StageSlot:
    """Where each choice of one stage comes from: ``None`` = the network-level value, else own values."""

    index: int
    stride: int
    width: int
    depths: tuple[int, ...]
    own: dict[str, tuple[Any, ...] | None]


class Space:
    """A validated search space: sample, count, enumerate, and suggest through Optuna."""

    def __init__(self, spec: SpaceSpec) -> None:
        self.spec = spec
        self.network_choices = {n: c.values for n, c in spec.choices.items() if c.per == "network"}
        self.slots: list[StageSlot] = []
        for i, st in enumerate(spec.stages):
            own: dict[str, tuple[Any, ...] | None] = {}
            for name in CHOICE_NAMES:
                if name in st.overrides:
                    own[name] = st.overrides[name]
                elif name in self.network_choices:
                    own[name] = None
                else:
                    own[name] = spec.choices[name].values
            self.slots.append(StageSlot(i, st.stride, st.width, st.depths, own))

    @classmethod
    def from_file(cls, path: str) -> Space:
        return cls(load_space_file(path))

    @property
    def name(self) -> str:
        return self.spec.name

    # ---- size -------------------------------------------------------------------
    def size(self) -> int:
        """Exact number of distinct architectures (inactive choices folded).

        Network-level assignments are counted once per distinct network: an assignment
        whose value of choice X is not X's first value counts only when some stage reads
        X; inclusion–exclusion over those choices keeps the count exact.
        """
        names = list(self.network_choices)
        total = 0
        for combo in itertools.product(*(self.network_choices[n] for n in names)):
            net = dict(zip(names, combo, strict=True))
            must_be_read = [n for n in names if net[n] != self.network_choices[n][0]]
            for r in range(len(must_be_read) + 1):
                for unread in itertools.combinations(must_be_read, r):
                    term = math.prod(self._stage_count(slot, net, set(unread)) for slot in self.slots)
                    total += (-1) ** r * term
        return total

    def _stage_count(self, slot: StageSlot, net: dict[str, Any], unread: set[str]) -> int:
        """Distinct folded configurations of one stage that read none of the network choices in ``unread``."""
        if slot.own["block"] is None and "block" in unread:
            return 0
        blocks = slot.own["block"] if slot.own["block"] is not None else (net["block"],)
        count = 0
        for block in blocks:
            per_block = 1
            for name in CHOICE_NAMES:
                if name == "block" or not family_reads(block, name):
                    continue
                values = slot.own[name]
                if values is None:
                    if name in unread:
                        per_block = 0
                        break
                    continue
                per_block *= len(values)
            count += per_block
        return count * len(slot.depths)

    @property
    def is_fixed(self) -> bool:
        return self.size() == 1

    # ---- building architectures ----------------------------------------------
    def build(self, pick: Callable[[str, tuple[Any, ...]], Any]) -> Architecture:
        """Resolve every decision with ``pick(key, values)``; keys read ``net.<choice>`` or ``s<i>.<choice>``.

        Choices a stage's block does not read are not asked for (so Optuna sees them only where active).
        """
        net: dict[str, Any] = {}

        def network_value(name: str) -> Any:
            if name not in net:
                net[name] = pick(f"net.{name}", self.network_choices[name])
            return net[name]

        stages = []
        for slot in self.slots:
            values: dict[str, Any] = {}

            def value(name: str, slot: StageSlot = slot) -> Any:
                own = slot.own[name]
                if own is None:
                    return network_value(name)
                return own[0] if len(own) == 1 else pick(f"s{slot.index}.{name}", own)

            block = value("block")
            for name in CHOICE_NAMES[1:]:
                if family_reads(block, name):
                    values[name] = value(name)
            depth = slot.depths[0] if len(slot.depths) == 1 else pick(f"s{slot.index}.depth", slot.depths)
            stage = Stage(block=block, depth=depth, stride=slot.stride, width=slot.width, **values)
            stages.append(stage.folded())
        spec = self.spec
        return Architecture(
            stem=Stem(**spec.stem),
            stages=tuple(stages),
            head=Head(width=spec.head["width"], dropout=spec.head["dropout"], hidden=spec.head["hidden"]),
        )

    def sample(self, rng: random.Random) -> Architecture:
        """One architecture, each decision drawn uniformly with ``rng``."""
        return self.build(lambda _key, values: values[rng.randrange(len(values))])

    def distinct_samples(self, seed: int) -> Iterator[Architecture]:
        """Draw with a seeded ``rng`` and yield each architecture not drawn before (by semantic hash)."""
        rng = random.Random(seed)
        seen: set[str] = set()
        size = self.size()
        attempts = 0
        while len(seen) < size:
            arch = self.sample(rng)
            attempts += 1
            if arch.semantic_hash not in seen:
                seen.add(arch.semantic_hash)
                yield arch
            elif attempts > 1000 * (len(seen) + 1) + 10_000:
                raise SpaceError(f"could not draw {len(seen) + 1} distinct architectures from {shown(self.name)}")

    def sample_distinct(self, n: int, seed: int) -> list[Architecture]:
        """``n`` distinct architectures (by semantic hash), reproducible for a seed."""
        size = self.size()
        if n > size:
            raise SpaceError(f"space {shown(self.name)} has only {size} distinct architectures; asked for {n}")
        return list(itertools.islice(self.distinct_samples(seed), n))

    def enumerate(self, limit: int = 100_000) -> Iterator[Architecture]:
        """Every distinct architecture, when the space has at most ``limit`` of them."""
        size = self.size()
        if size > limit:
            raise SpaceError(
                f"space {shown(self.name)} has {size:,} architectures, too many to enumerate (limit {limit:,})"
            )
        seen: set[str] = set()
        for arch in self._walk():
            h = arch.semantic_hash
            if h not in seen:
                seen.add(h)
                yield arch

    def _walk(self) -> Iterator[Architecture]:
        """Depth-first walk over every decision path (before de-duplication)."""
        stack: list[list[Any]] = [[]]
        while stack:
            prefix = stack.pop()
            position = 0
            branch: tuple[Any, ...] | None = None

            def pick(_key: str, values: tuple[Any, ...], prefix: list[Any] = prefix) -> Any:
                nonlocal position, branch
                if position < len(prefix):
                    chosen = prefix[position]
                else:
                    if branch is None:
                        branch = values
                    chosen = values[0]
                position += 1
                return chosen

            arch = self.build(pick)
            if branch is None:
                yield arch
            else:
                for v in reversed(branch):
                    stack.append([*prefix, v])

    def suggest(self, trial: Any) -> Architecture:
        """Build an architecture from an Optuna trial (categorical distributions, conditional keys)."""

        def pick(key: str, values: tuple[Any, ...]) -> Any:
            return trial.suggest_categorical(key, list(values))

        return self.build(pick)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary of the space."""
        return {
            "name": self.name,
            "source": self.spec.source,
            "size": self.size(),
            "stages": [
                {
                    "stride": s.stride,
                    "width": s.width,
                    "depth": list(s.depths),
                    **{k: list(v) for k, v in s.own.items() if v is not None},
                }
                for s in self.slots
            ],
            "network_choices": {k: list(v) for k, v in self.network_choices.items()},
            "budget": None
            if self.spec.budget is None
            else {
                "params": self.spec.budget.params,
                "tolerance": self.spec.budget.tolerance,
                "divisor": self.spec.budget.divisor,
            },
        }
