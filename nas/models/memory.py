"""Can a network exist here? Parameter and activation memory, computed from the architecture, against RAM.

Nothing is allocated: the parameter count is ``count_params`` (exact integer arithmetic) and the activation
memory is an upper estimate of the float32 bytes of every layer output in one forward pass of ONE image
(the quantity ``nas.complexity.activation_bytes`` measures with hooks):

- the input image, and the stem's conv, norm and activation outputs (stem width x ceil(R / s)^2 each), plus
  the max-pool's output;
- per block, at the block's INPUT resolution (before its stride) and counting each output at the widest it
  can be: ``LAYERS_PER_BLOCK`` outputs of max(C_in, C_out) channels for the families that do not expand,
  and for the two that do (``inverted``: 1x1 to C_in·e, ``convnext``: 1x1 to C_out·e) their wide layers
  at max(C_in, C_out)·e plus their narrow ones at max(C_in, C_out) (``EXPANDING_LAYERS``);
- squeeze-excitation's scaled map at the expanded width (and its pooled vectors);
- the head's 1x1 conv, norm and activation, the hidden classifier layer and its activation, and the logits.

The estimate is at most a few times the measured value (a test pins the ratio on the baselines). It says
whether a network can be built and run on one image, not whether it can be trained: training adds
gradients, optimiser state and a whole batch, which the trainer does not check.

Memory available: the smaller of the physical memory (``SC_PHYS_PAGES x SC_PAGE_SIZE``) and the cgroup
limit of this process (``memory.max``, cgroup v2, or ``memory.limit_in_bytes``, v1), when there is one.
``MemAvailable`` is not used: it changes with the load of the machine, and a network that fits in memory
at all should not be refused because other programs run beside it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from nas.errors import BudgetError
from nas.space.architecture import Architecture

BYTES_PER_VALUE = 4  # float32
LAYERS_PER_BLOCK = 14  # leaf outputs of the largest family (sandglass: 11) + the residual sum, rounded up
# (wide, narrow) outputs of the expanding families, solu's inner LayerNorm and the residual sum included
EXPANDING_LAYERS = {"inverted": (8, 4), "convnext": (4, 8)}


@dataclass(frozen=True)
class MemoryEstimate:
    """What building ``arch`` and running it on one image needs, in bytes (activations: an upper estimate)."""

    params: int
    param_bytes: int
    activation_bytes: int
    resolution: int

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.activation_bytes


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; 3 * 2**40 -> '3.0 TiB'; beyond exbibytes, '4e+300 B'."""
    if n >= 1024**7:
        return f"{float(n):.3g} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} EiB"


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except (OSError, ValueError):
            continue
        if text.isdigit():
            value = int(text)
            if 0 < value < 1 << 60:  # v1 writes a huge number for "no limit"
                return value
    return None


def available_memory() -> int:
    """Bytes of memory a process here can use at most: physical memory, or the cgroup limit when smaller."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest machine
        physical = 8 << 30
    limit = _cgroup_limit()
    return min(physical, limit) if limit else physical


def _out(size: int, stride: int) -> int:
    return -(-size // stride)  # ceil: every conv here keeps ceil(H / s) (see nas.models.layers.conv_padding)


def activation_elements(arch: Architecture, *, in_channels: int, num_classes: int, resolution: int) -> int:
    """Upper estimate of the values in every layer output of one forward pass (``arch`` as built)."""
    stem = arch.stem
    size = _out(resolution, stem.stride)
    total = in_channels * resolution * resolution + 3 * stem.width * size * size
    if stem.pool:
        size = _out(size, 2)
        total += stem.width * size * size
    c = stem.width
    for stage in arch.stages:
        wide, narrow = EXPANDING_LAYERS.get(stage.block, (0, LAYERS_PER_BLOCK))
        for i in range(stage.depth):
            stride = stage.stride if i == 0 else 1
            channels = max(c, stage.width)
            total += (wide * stage.expansion + narrow) * channels * size * size
            if stage.se:  # the scaled map, and the pooled and squeezed vectors
                total += channels * stage.expansion * (size * size + 2)
            size, c = _out(size, stride), stage.width
    if arch.head.width:
        total += 3 * arch.head.width * size * size
        c = arch.head.width
    if arch.head.hidden:
        total += 2 * arch.head.hidden
    return total + c + num_classes


def estimate_memory(arch: Architecture, *, in_channels: int, num_classes: int, resolution: int) -> MemoryEstimate:
    """Parameters and bytes of ``build_model(arch, ...)`` and of one forward pass (adapted to the input size)."""
    from nas.models.counting import count_params

    built = arch.adapted_to_input(resolution)
    params = count_params(built, in_channels=in_channels, num_classes=num_classes)
    values = activation_elements(built, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    return MemoryEstimate(params, params * BYTES_PER_VALUE, values * BYTES_PER_VALUE, resolution)


def check_memory(
    arch: Architecture,
    *,
    in_channels: int,
    num_classes: int,
    resolution: int,
    available: int | None = None,
) -> MemoryEstimate:
    """The estimate for ``arch``; a BudgetError with the numbers when it cannot fit in ``available`` bytes.

    Called by ``build_model`` before anything is allocated, by ``nas.sampling.fit`` after the budget
    solver, and by ``nas.complexity.measure``; ``available`` defaults to ``available_memory()``.
    """
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
        raise BudgetError(f"the input resolution must be a positive number of pixels, got {resolution!s:.40}")
    estimate = estimate_memory(arch, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    limit = available_memory() if available is None else available
    if estimate.total_bytes > limit:
        side = str(resolution) if resolution < 10**24 else _count(resolution)
        raise BudgetError(
            f"this network cannot be built here: {_count(estimate.params)} parameters "
            f"({format_bytes(estimate.param_bytes)}) and about {format_bytes(estimate.activation_bytes)} of "
            f"activations for one {side}x{side} image need {_count(estimate.total_bytes)} bytes, more than "
            f"the {limit:,} bytes ({format_bytes(limit)}) of memory here; use smaller widths, a smaller budget "
            "or a lower resolution"
        )
    return estimate


def check_param_budget(params: int, *, available: int | None = None) -> None:
    """Refuse, before solving anything, a parameter budget whose weights alone cannot fit in memory."""
    limit = available_memory() if available is None else available
    needed = params * BYTES_PER_VALUE
    if needed > limit:
        raise BudgetError(
            f"a budget of {_count(params)} parameters needs {_count(needed)} bytes ({format_bytes(needed)}) for the "
            f"weights alone, more than the {limit:,} bytes ({format_bytes(limit)}) of memory here; use a smaller budget"
        )


def _count(n: int) -> str:
    """1234567 -> '1,234,567'; a number of more than 24 digits -> '1.23e+30'."""
    return f"{n:,}" if n < 10**24 else f"{float(n):.3g}" if n < 10**300 else f"about 10^{int(math.log10(n))}"
