"""Parameter budgets: parse "1.5M", "1500k", "1500000", "1.5e6" and describe them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nas.errors import BudgetError, shown

_BUDGET = re.compile(r"[ \t]*([0-9]+(?:\.[0-9]*)?(?:[eE][+]?[0-9]+)?)[ \t]*([kKmM]?)[ \t]*")
_MAX_TEXT = 64  # no parameter count needs more characters
_SUFFIX = {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}


@dataclass(frozen=True)
class Budget:
    """A hard parameter budget: every architecture lands in [(1 - tolerance) * params, params]."""

    params: int
    tolerance: float = 0.05
    divisor: int = 8

    @property
    def lower(self) -> int:
        return math.ceil((1.0 - self.tolerance) * self.params)

    def describe(self) -> str:
        return f"{format_count(self.params)} params (−{self.tolerance:.0%} tolerance, channels ÷ {self.divisor})"


def parse_budget(text: str | int | float) -> int:
    """Read a parameter count written as 1.5M, 1500k, 1500000 or 1.5e6; anything else is an error."""
    return parse_count(text, "budget", "parameter")


def parse_count(text: str | int | float, what: str, unit: str) -> int:
    """Read a positive whole count written as 1.5M, 1500k, 1500000 or 1.5e6 (``what``: the value's name in
    errors, ``unit``: what it counts, singular); anything else is a BudgetError."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise BudgetError(f"{what} {shown(text)} is not a {unit} count")
    if isinstance(text, int) and text.bit_length() > 128:
        raise BudgetError(f"{what} {shown(text)} is not a usable {unit} count")
    if isinstance(text, int | float):
        text = repr(text)
    m = _BUDGET.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if not m:
        raise BudgetError(
            f"{what} {shown(text)} is not a {unit} count; write it like 1.5M, 1500k, 1500000 or 1.5e6"
        )
    value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(value) or value < 1 or value != round(value):
        raise BudgetError(f"{what} {shown(text)} must be a positive whole number of {unit}s")
    return round(value)


def check_tolerance(tolerance: float) -> float:
    """A budget tolerance: a number strictly between 0 and 1."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0.0 < tolerance < 1.0:
        raise BudgetError(f"budget tolerance must lie in (0, 1), got {shown(tolerance)}")
    return float(tolerance)


DIVISOR_MAX = 1024


def check_divisor(divisor: int) -> int:
    """A channel divisor: an integer from 1 to ``DIVISOR_MAX``."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or not 1 <= divisor <= DIVISOR_MAX:
        raise BudgetError(f"channel divisor must be an integer from 1 to {DIVISOR_MAX:,}, got {shown(divisor)}")
    return divisor


def format_count(n: float) -> str:
    """1_500_000 -> '1.50M', 83_000 -> '83.0k'."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(int(n))
