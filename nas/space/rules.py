"""The field rules of the search-space language: one table that both spellings (YAML, strings) obey.

A value must be a plain integer (not a bool, float or string) unless the rule says otherwise:

==========================  ==========================================================================
field                       rule
==========================  ==========================================================================
stem width, stage width,    1 … 16,384 channels (``WIDTH_MAX``); a head width is optional (``null`` in
head width                  YAML, no ``_c`` in a string) but, when given, obeys the same rule
stem kernel                 1 … 15; odd, or even as a patchify kernel: equal to the stride (ConvNeXt's
                            4x4/4), or at stride 1 (what a patchify stem becomes on small inputs,
                            which drop the stem's downsampling; "same" padding)
stem stride                 1, 2 or 4
stage kernel                odd, 1 … 15 (padding k // 2 keeps every block's output at ceil(H / s))
stage stride                1 or 2
stage depth                 1 … 128 blocks
stages                      1 … 32 of them
expansion                   a number 1 … 16; a fraction is kept to 4 decimals (``EXPANSION_DECIMALS``)
squeeze-excitation (se)     0 (none) or a ratio in (0, 1]
head hidden width           optional, 1 … 16,384 (the hidden classifier layer)
head dropout                a number in [0, 1)
input resolution            4 … 16,384 px
input channels              1 … 1,024
input classes               2 … 1,000,000
==========================  ==========================================================================

``problem(field, value)`` returns what is wrong with a value (``None`` when it is fine) so that each caller
can say where the value came from (a YAML key path, a stage of an architecture string).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import shown

WIDTH_MAX = 16_384
KERNEL_MAX = 15
DEPTH_MAX = 128
STAGES_MAX = 32
EXPANSION_MAX = 16
EXPANSION_DECIMALS = 4
RESOLUTION_MIN, RESOLUTION_MAX = 4, 16_384
CHANNELS_MAX = 1_024
CLASSES_MAX = 1_000_000
STEM_STRIDES = (1, 2, 4)
STAGE_STRIDES = (1, 2)


@dataclass(frozen=True)
class IntRule:
    """An integer field: ``low`` ≤ value ≤ ``high``, or one of ``allowed``; odd when ``odd``."""

    low: int = 1
    high: int = 1
    allowed: tuple[int, ...] = ()
    odd: bool = False

    def describe(self) -> str:
        if self.allowed:
            return " or ".join(", ".join(map(str, self.allowed)).rsplit(", ", 1))
        what = "an odd integer" if self.odd else "a positive integer" if self.low == 1 else "an integer"
        return f"{what} from {self.low:,} to {self.high:,}"

    def problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            kind = type(value).__name__
            return f"must be {self.describe()}, got {kind} {shown(value)}"
        if self.allowed:
            if value not in self.allowed:
                return f"must be {self.describe()}, got {shown(value)}"
            return None
        if not self.low <= value <= self.high:
            return f"must be {self.describe()}, got {shown(value)}"
        if self.odd and value % 2 == 0:
            return f"must be odd (1, 3, 5 … {self.high}), got {value}"
        return None


RULES: dict[str, IntRule] = {
    "width": IntRule(1, WIDTH_MAX),
    "depth": IntRule(1, DEPTH_MAX),
    "stride": IntRule(allowed=STAGE_STRIDES),
    "kernel": IntRule(1, KERNEL_MAX, odd=True),
    "stem.width": IntRule(1, WIDTH_MAX),
    "stem.kernel": IntRule(1, KERNEL_MAX),
    "stem.stride": IntRule(allowed=STEM_STRIDES),
    "head.width": IntRule(1, WIDTH_MAX),
    "head.hidden": IntRule(1, WIDTH_MAX),
    "resolution": IntRule(RESOLUTION_MIN, RESOLUTION_MAX),
    "channels": IntRule(1, CHANNELS_MAX),
    "classes": IntRule(2, CLASSES_MAX),
}


def problem(field: str, value: object) -> str | None:
    """What is wrong with ``value`` for ``field`` (a key of ``RULES``, or ``expansion``/``se``), or ``None``."""
    if field == "expansion":
        return expansion_problem(value)
    if field == "se":
        return se_problem(value)
    return RULES[field].problem(value)


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def expansion_problem(value: object) -> str | None:
    """Expansion: a number from 1 to ``EXPANSION_MAX`` (whole, or a fraction such as 3.6667)."""
    if not _number(value) or not 1 <= value <= EXPANSION_MAX:  # type: ignore[operator]
        return f"must be a number from 1 to {EXPANSION_MAX}, got {shown(value)}"
    return None


def canonical_expansion(value: float) -> int | float:
    """An expansion as stored: a whole number as an int, a fraction rounded to ``EXPANSION_DECIMALS`` places."""
    rounded = round(float(value), EXPANSION_DECIMALS)
    return int(rounded) if rounded.is_integer() else rounded


def se_problem(value: object) -> str | None:
    """Squeeze-excitation ratio: 0 for none, else a number in (0, 1]."""
    if not _number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        return f"must be 0 (no squeeze-excitation) or a ratio in (0, 1], got {shown(value)}"
    return None


def stem_problem(kernel: int, stride: int) -> str | None:
    """The rule that ties the stem's kernel to its stride: odd, or even as a patchify kernel (== stride, or stride 1).

    Stride 1 is allowed with an even kernel because that is what a patchify stem (``stem_c40_k4_s4``)
    becomes on small inputs (``Architecture.adapted_to_input``): it keeps its kernel and its parameters.
    """
    if kernel % 2 == 0 and stride not in (1, kernel):
        return (
            f"kernel must be odd, or an even patchify kernel equal to the stride (e.g. kernel 4, stride 4); "
            f"got kernel {kernel}, stride {stride}"
        )
    return None


def dropout_problem(value: object) -> str | None:
    """Head dropout: a finite number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"must be a number in [0, 1), got {shown(value)}"
    if not 0 <= value < 1:
        return f"must be a number in [0, 1), got {shown(value)}"
    return None


def stages_problem(count: int) -> str | None:
    """The number of stages."""
    if not 1 <= count <= STAGES_MAX:
        return f"an architecture has 1 to {STAGES_MAX} stages, got {count:,}"
    return None
