"""Activations by name (``@register_activation``), each flagged superlinear or not as in the vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import SpaceError, shown
from nas.models.norms import ChannelLayerNorm
from nas.space.vocabulary import ACTIVATIONS


class Activation(nn.Module):
    """Base class: constructed with the channel count it acts on (only ``solu`` needs it)."""

    name: ClassVar[str] = ""
    superlinear: ClassVar[bool] = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    @classmethod
    def count_params(cls, channels: int) -> int:
        """Learnable parameters of ``cls(channels)``."""
        return 0

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


ACTIVATION_REGISTRY: dict[str, type[Activation]] = {}

A = TypeVar("A", bound=type[Activation])


def register_activation(name: str) -> Callable[[A], A]:
    """Class decorator: register an activation under a vocabulary name and set its ``superlinear`` flag."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not in nas.space.vocabulary.ACTIVATIONS")

    def decorate(cls: A) -> A:
        if name in ACTIVATION_REGISTRY:
            raise ValueError(f"activation {name!r} registered twice")
        cls.name = name
        cls.superlinear = ACTIVATIONS[name]
        ACTIVATION_REGISTRY[name] = cls
        return cls

    return decorate


def _lookup(name: str) -> type[Activation]:
    try:
        return ACTIVATION_REGISTRY[name]
    except KeyError:
        raise SpaceError(f"unknown activation {shown(name)}; allowed: {', '.join(ACTIVATION_REGISTRY)}") from None


def make_activation(name: str, channels: int) -> Activation:
    """The activation ``name`` for a map with ``channels`` channels."""
    return _lookup(name)(channels)


def activation_params(name: str, channels: int) -> int:
    """Learnable parameters of ``make_activation(name, channels)``."""
    return _lookup(name).count_params(channels)


@register_activation("relu")
class ReLU(Activation):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


@register_activation("relu6")
class ReLU6(Activation):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x)


@register_activation("gelu")
class GELU(Activation):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


@register_activation("silu")
class SiLU(Activation):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


@register_activation("hardswish")
class Hardswish(Activation):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


@register_activation("relu2")
class ReLU2(Activation):
    """Squared ReLU (Primer, So et al. 2021): relu(x)^2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


@register_activation("starrelu")
class StarReLU(Activation):
    """StarReLU (MetaFormer, Yu et al. 2022): s * relu(x)^2 + b, learnable scalars s=0.8944, b=-0.4472 at init."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.scale = nn.Parameter(torch.full((1,), 0.8944))
        self.bias = nn.Parameter(torch.full((1,), -0.4472))

    @classmethod
    def count_params(cls, channels: int) -> int:
        return 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).square() + self.bias


@register_activation("solu")
class SoLU(Activation):
    """SoLU (Elhage et al. 2022): x * softmax(x) over the channels, then LayerNorm over the channels."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.norm = ChannelLayerNorm(channels)

    @classmethod
    def count_params(cls, channels: int) -> int:
        return 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x * torch.softmax(x, dim=1))
