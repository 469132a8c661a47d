"""Models: activations, norms, block families, the network builder, analytic counts and the budget solver."""

from __future__ import annotations

from nas.models.activations import ACTIVATION_REGISTRY, make_activation, register_activation
from nas.models.blocks import BLOCK_REGISTRY, Block, register_block
from nas.models.budget import round_to_divisor, solve_budget
from nas.models.build import build_model
from nas.models.counting import count_params
from nas.models.network import Network
from nas.models.norms import ChannelLayerNorm, make_norm

__all__ = [
    "ACTIVATION_REGISTRY",
    "BLOCK_REGISTRY",
    "Block",
    "ChannelLayerNorm",
    "Network",
    "build_model",
    "count_params",
    "make_activation",
    "make_norm",
    "register_activation",
    "register_block",
    "round_to_divisor",
    "solve_budget",
]
