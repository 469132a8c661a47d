"""Budget solver: scale every width of a reference architecture so its parameters land in [(1 - tol) B, B]."""

from __future__ import annotations

import math
from dataclasses import replace

from nas.errors import BudgetError, shown
from nas.models.memory import check_param_budget
from nas.models.network import ClassifierHead, NetworkStem, stage_params
from nas.space.architecture import Architecture
from nas.space.rules import WIDTH_MAX

_BISECTION_STEPS = 60
# How far the greedy fill may push a width beyond its scaled reference width (None: no limit), tried in turn.
GROWTH_CAPS: tuple[float | None, ...] = (1.5, 2.0, 3.0, None)


def _label(arch: Architecture) -> str:
    """The architecture string, capped for an error message."""
    return shown(arch.to_string(), 120)


def round_to_divisor(value: float, divisor: int) -> int:
    """The multiple of ``divisor`` nearest to ``value`` (halves round up), at least ``divisor``."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


class _Counter:
    """Parameter count of the reference with given widths, memoised per part (stem, stage i, head)."""

    def __init__(self, ref: Architecture, in_channels: int, num_classes: int) -> None:
        self.ref = ref
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.has_head = ref.head.width is not None
        self.has_hidden = ref.head.hidden is not None
        self.n_stages = len(ref.stages)
        self._cache: dict[tuple[int, ...], int] = {}

    def __call__(self, widths: list[int]) -> int:
        """``widths`` = [stem, stage 0, ..., stage n-1] (+ [head] when the reference has a head width)
        (+ [hidden] when it has a hidden classifier layer)."""
        cache, ref = self._cache, self.ref
        key = (-1, 0, widths[0])
        n = cache.get(key)
        if n is None:
            stem = replace(ref.stem, width=widths[0])
            n = cache[key] = NetworkStem.count_params(self.in_channels, stem, ref.stages[0])
        total = n
        for i, stage in enumerate(ref.stages):
            key = (i, widths[i], widths[i + 1])
            n = cache.get(key)
            if n is None:
                n = cache[key] = stage_params(widths[i], widths[i + 1], stage)
            total += n
        c = widths[self.n_stages]
        head_w = widths[self.n_stages + 1] if self.has_head else 0
        hidden = widths[-1] if self.has_hidden else 0
        key = (self.n_stages, c, head_w, hidden)
        n = cache.get(key)
        if n is None:
            head = replace(ref.head, width=head_w or None, hidden=hidden or None)
            n = cache[key] = ClassifierHead.count_params(c, head, ref.stages[-1], self.num_classes)
        return total + n


def _fill(
    count: _Counter, widths: list[int], limits: list[int], budget: int, divisor: int
) -> tuple[list[int], int]:
    """Add divisor steps, each time the fitting step that brings the count closest to the budget, until none fits.

    Candidates are tried head, last stage, ..., first stage, stem, so later parts win ties.
    """
    best = count(widths)
    order = range(len(widths) - 1, -1, -1)
    while best < budget:
        pick, pick_n = -1, best
        for i in order:
            if widths[i] + divisor > limits[i]:
                continue
            widths[i] += divisor
            n = count(widths)
            widths[i] -= divisor
            if pick_n < n <= budget:
                pick, pick_n = i, n
        if pick < 0:
            break
        widths[pick] += divisor
        best = pick_n
    return widths, best


def solve_budget(
    reference: Architecture,
    *,
    budget: int,
    tolerance: float,
    divisor: int,
    in_channels: int,
    num_classes: int,
) -> Architecture:
    """The reference with widths scaled so that ``(1 - tolerance) * budget <= params <= budget``.

    Every width of the reference (stem, stages, head, hidden classifier layer) is a reference width w.
    Bisection finds the largest multiplier m for which the widths ``round_to_divisor(w * m, divisor)`` fit
    the budget; then a greedy pass repeatedly adds one divisor step to the width (stage, stem or head)
    whose step brings the count closest to the budget without exceeding it (ties go to later stages),
    until no step fits.

    One divisor step of a heavy stage can be a fifth of a small budget, so the gap the bisection leaves is
    often filled by the cheap widths; left alone, the greedy pass would blow the stem up to tens of times
    its share (a 600-channel stem at full resolution). So the fill first keeps every width within
    1.5 x w * m (at least one step above its bisection value), and loosens that cap (2x, 3x, none) only when
    the capped result falls short of the tolerance window.
    Raises BudgetError when even the smallest widths exceed the budget, when the best count found is
    below ``(1 - tolerance) * budget``, when the budget's weights alone cannot fit in this machine's memory
    (checked first, so an absurd budget is refused at once), or when meeting it would take a width above
    the field rules' maximum (``nas.space.rules.WIDTH_MAX``).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise BudgetError(f"the parameter budget must be a positive integer, got {budget!s:.40}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0.0 <= tolerance < 1.0:
        raise BudgetError(f"the budget tolerance must be in [0, 1), got {tolerance!s:.40}")
    if isinstance(divisor, bool) or not isinstance(divisor, int) or not 1 <= divisor <= WIDTH_MAX:
        raise BudgetError(f"the width divisor must be an integer from 1 to {WIDTH_MAX:,}, got {divisor!s:.40}")
    check_param_budget(math.ceil((1.0 - tolerance) * budget))

    count = _Counter(reference, in_channels, num_classes)
    refs = [reference.stem.width] + [s.width for s in reference.stages]
    if count.has_head:
        refs.append(reference.head.width)  # type: ignore[arg-type]
    if count.has_hidden:
        refs.append(reference.head.hidden)  # type: ignore[arg-type]

    def widths_at(m: float) -> list[int]:
        return [round_to_divisor(r * m, divisor) for r in refs]

    widths = widths_at(0.0)
    smallest = count(widths)
    if smallest > budget:
        raise BudgetError(
            f"no width fits a budget of {budget:,} parameters: even with every width at the minimum of {divisor} "
            f"channels, {_label(reference)} has {smallest:,} parameters ({in_channels} input channels, {num_classes} "
            "classes). Raise the budget, use a smaller divisor, or a shallower/cheaper architecture."
        )

    # The largest multiplier that keeps every width within WIDTH_MAX: a budget that needs more is refused.
    m_max = min((WIDTH_MAX - divisor / 2) / r for r in refs)
    if count(widths_at(m_max)) < (1.0 - tolerance) * budget:
        raise BudgetError(
            f"a budget of {budget:,} parameters is out of reach for {_label(reference)}: with every width at most "
            f"{WIDTH_MAX:,} channels it has {count(widths_at(m_max)):,} parameters ({in_channels} input channels, "
            f"{num_classes} classes); use a smaller budget or a deeper architecture"
        )

    # Bisection on the multiplier (the count is non-decreasing in every width).
    lo, hi = 0.0, 1.0
    while hi < 2.0**40 and count(w := widths_at(hi)) <= budget:
        lo, hi, widths = hi, 2.0 * hi, w
    for _ in range(_BISECTION_STEPS):
        if hi - lo <= 1e-9 * hi:
            break
        mid = 0.5 * (lo + hi)
        w = widths_at(mid)
        if count(w) <= budget:
            lo, widths = mid, w
        else:
            hi = mid
    if lo > m_max:  # the budget is met only beyond the widest allowed widths: stop at them
        lo, widths = m_max, widths_at(m_max)

    # Greedy fill, first with every width kept within GROWTH_CAPS[0] x its scaled reference width, then
    # with looser caps, and without a cap only when no capped fill reaches the tolerance window.
    start, floor = widths, (1.0 - tolerance) * budget
    for cap in GROWTH_CAPS:
        limits = [
            min(WIDTH_MAX, max(w + divisor, round_to_divisor(r * lo * cap, divisor))) if cap else WIDTH_MAX
            for w, r in zip(start, refs, strict=True)
        ]
        widths, best = _fill(count, list(start), limits, budget, divisor)
        if best >= floor:
            break

    if best < (1.0 - tolerance) * budget:
        raise BudgetError(
            f"the closest count to the budget of {budget:,} parameters for {_label(reference)} is {best:,} "
            f"({best / budget:.1%} of it), below the tolerance of {tolerance:g} (at least "
            f"{math.ceil(floor):,}). Use a larger tolerance or a smaller divisor "
            f"(now {divisor})."
        )
    n_stages = len(reference.stages)
    head_width = widths[n_stages + 1] if count.has_head else None
    hidden = widths[-1] if count.has_hidden else None
    return reference.with_widths(widths[0], widths[1 : n_stages + 1], head_width, hidden)
