"""Norm layers: BatchNorm2d (``batch``) and LayerNorm over the channels of an N x C x H x W map (``layer``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import SpaceError, shown


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel dim of an N x C x H x W tensor (timm's LayerNorm2d; eps 1e-6, affine).

    The permute to N x H x W x C is free for a channels_last tensor, so this is the fast path there.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps, elementwise_affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


# keys == nas.space.vocabulary.NORMS (tested)
NORM_REGISTRY: dict[str, type[nn.Module]] = {"batch": nn.BatchNorm2d, "layer": ChannelLayerNorm}


def make_norm(kind: str, channels: int) -> nn.Module:
    """A norm layer of the given kind (``batch`` or ``layer``) over ``channels`` channels."""
    try:
        cls = NORM_REGISTRY[kind]
    except KeyError:
        raise SpaceError(f"unknown norm {shown(kind)}; allowed: {', '.join(NORM_REGISTRY)}") from None
    return cls(channels)


def norm_params(kind: str, channels: int) -> int:
    """Learnable parameters of ``make_norm(kind, channels)``: a scale and a shift per channel."""
    if kind not in NORM_REGISTRY:
        raise SpaceError(f"unknown norm {shown(kind)}; allowed: {', '.join(NORM_REGISTRY)}")
    return 2 * channels
