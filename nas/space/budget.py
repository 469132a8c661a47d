"""Parameter budgets: parse "1.5M", "1500k", "1500000", "1.5e6" and describe them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nas.errors import BudgetError

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE][+]?\d+)?)\s*([kKmM]?)\s*$")
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
    if isinstance(text, bool):
        raise BudgetError(f"budget {text!r} is not a parameter count")
    if isinstance(text, int | float):
        text = repr(text)
    m = _BUDGET.match(str(text))
    if not m:
        raise BudgetError(
            f"budget {text!r} is not a parameter count; write it like 1.5M, 1500k, 1500000 or 1.5e6"
        )
    value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(value) or value < 1 or value != round(value):
        raise BudgetError(f"budget {text!r} must be a positive whole number of parameters")
    return round(value)


def check_tolerance(tolerance: float) -> float:
    if not 0.0 < tolerance < 1.0:
        raise BudgetError(f"budget tolerance must lie in (0, 1), got {tolerance!r}")
    return float(tolerance)


def check_divisor(divisor: int) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 1:
        raise BudgetError(f"channel divisor must be a positive integer, got {divisor!r}")
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
