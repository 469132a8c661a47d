"""Block families, one per module, registered by name in ``BLOCK_REGISTRY`` (keys = vocabulary.FAMILIES)."""

from __future__ import annotations

from nas.models.blocks import (  # noqa: F401  (importing registers the families)
    basic,
    bottleneck,
    convnext,
    inverted,
    nodepth,
    sandglass,
    separable,
)
from nas.models.blocks.base import BLOCK_REGISTRY, Block, register_block

__all__ = ["BLOCK_REGISTRY", "Block", "register_block"]
