"""``build_model``: check that a network can exist here, then build it (the one entry point that allocates)."""

from __future__ import annotations

from nas.models.memory import check_memory
from nas.models.network import Network
from nas.space.architecture import Architecture


def build_model(arch: Architecture, *, in_channels: int, num_classes: int, resolution: int) -> Network:
    """Build ``arch`` for inputs of ``in_channels`` x ``resolution`` px and ``num_classes`` classes.

    Small inputs (<= 64 px) drop the stem's downsampling first (``Architecture.adapted_to_input``).
    Before anything is allocated, ``nas.models.memory.check_memory`` compares the parameters and the
    activation memory of one image (computed from the architecture) with the memory of this machine, and
    raises a BudgetError stating the numbers when the network cannot exist here.
    """
    check_memory(arch, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    return Network(arch.adapted_to_input(resolution), in_channels=in_channels, num_classes=num_classes)
