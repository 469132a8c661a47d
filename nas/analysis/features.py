"""Design-choice features of a trial, read from its architecture string.

For each choice the value is the one every stage agrees on, else ``mixed``; a choice that no stage's
family reads is ``n/a`` (e.g. expansion in a ``basic`` network). Depthwise and norm are the effective
ones: ``separable`` is always depthwise, ``basic`` and ``nodepth`` always dense, ``convnext`` always
LayerNorm. ``se`` is the squeeze-excitation ratio (0: none, as in every family that has no SE).
``superlinear`` is ``yes`` when every stage's activation is superlinear, ``no`` when none is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from nas.errors import RunStoreError, SpaceError
from nas.space.architecture import Architecture, Stage
from nas.space.vocabulary import ACTIVATIONS, FAMILIES, FOLDED_NORM

if TYPE_CHECKING:
    import pandas as pd

CHOICES: tuple[str, ...] = (
    "block", "activation", "superlinear", "expansion", "depthwise", "kernel", "norm", "se", "depth"
)
MIXED = "mixed"
NOT_APPLICABLE = "n/a"
ALWAYS_DEPTHWISE = frozenset({"separable"})  # families without the choice whose spatial conv is depthwise


def _agree(values: Iterable[object]) -> str:
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return NOT_APPLICABLE
    if len(distinct) > 1:
        return MIXED
    value = distinct[0]
    return str(value).lower() if isinstance(value, bool) else str(value)


def _depthwise(stage: Stage) -> str:
    if FAMILIES[stage.block].uses_depthwise:
        return "dw" if stage.depthwise else "dense"
    return "dw" if stage.block in ALWAYS_DEPTHWISE else "dense"


def arch_features(arch: Architecture) -> dict[str, str]:
    """The choice features of one architecture (all values are strings)."""
    stages = arch.stages
    superlinear = [ACTIVATIONS[s.activation] for s in stages]
    return {
        "block": _agree(s.block for s in stages),
        "activation": _agree(s.activation for s in stages),
        "superlinear": "yes" if all(superlinear) else "no" if not any(superlinear) else MIXED,
        "expansion": _agree(s.expansion for s in stages if FAMILIES[s.block].uses_expansion),
        "depthwise": _agree(_depthwise(s) for s in stages),
        "kernel": _agree(s.kernel for s in stages),
        "norm": _agree(s.norm if FAMILIES[s.block].uses_norm else FOLDED_NORM for s in stages),
        "se": _agree(f"{s.se:g}" for s in stages),
        "depth": str(arch.depth),
    }


def choice_frame(archs: Iterable[str], trial_ids: Iterable[int]) -> pd.DataFrame:
    """One row of choice features per architecture string; a string that does not parse is a RunStoreError."""
    import pandas as pd

    cache: dict[str, dict[str, str]] = {}
    rows = []
    for text, trial_id in zip(archs, trial_ids, strict=True):
        if text not in cache:
            try:
                cache[text] = arch_features(Architecture.parse(text))
            except SpaceError as exc:
                raise RunStoreError(f"trial {trial_id} has an architecture string that does not parse: {exc}") from None
        rows.append(cache[text])
    return pd.DataFrame(rows, columns=list(CHOICES))


_VOCABULARY_ORDER: dict[str, list[str]] = {"block": list(FAMILIES), "activation": list(ACTIVATIONS)}


def value_order(values: Iterable[str], choice: str | None = None) -> list[str]:
    """Distinct values in a natural order: vocabulary order for block and activation, numbers numerically,
    other words alphabetically; mixed and n/a last."""
    preferred = _VOCABULARY_ORDER.get(choice or "", [])

    def key(v: str) -> tuple[int, float, str]:
        if v in (MIXED, NOT_APPLICABLE):
            return (3, 0.0, v)
        if v in preferred:
            return (0, float(preferred.index(v)), v)
        try:
            return (1, float(v), v)
        except ValueError:
            return (2, 0.0, v)

    return sorted(set(values), key=key)
