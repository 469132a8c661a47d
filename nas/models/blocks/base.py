"""Block base class, the ``@register_block`` decorator and ``BLOCK_REGISTRY``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

from nas.models.layers import ConvNorm
from nas.space.architecture import Stage
from nas.space.vocabulary import FAMILIES


class Block(nn.Module, ABC):
    """One block: ``Block(c_in, c_out, stride, stage)`` maps N x c_in x H x W to N x c_out x ceil(H/s) x ceil(W/s).

    The stage supplies the choices (expansion, kernel, activation, depthwise, norm); its ``width`` and
    ``stride`` are ignored in favour of the arguments. Choices the family does not read are folded first.
    Subclasses set ``body`` (main path), ``shortcut`` (``nn.Identity``, a projection, or ``None`` for no
    residual) and ``post`` (what follows the addition), and implement ``count_params`` to match.
    """

    family: ClassVar[str] = ""
    body: nn.Module
    shortcut: nn.Module | None
    post: nn.Module

    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.shortcut = None
        self.post = nn.Identity()

    @classmethod
    @abstractmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        """Learnable parameters of ``cls(c_in, c_out, stride, stage)``, computed without tensors."""

    @property
    def residual(self) -> str:
        """``identity``, ``projection`` or ``none``."""
        if self.shortcut is None:
            return "none"
        return "identity" if isinstance(self.shortcut, nn.Identity) else "projection"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.post(out)

    def extra_repr(self) -> str:
        return f"{self.c_in} -> {self.c_out}, stride={self.stride}, residual={self.residual}"


BLOCK_REGISTRY: dict[str, type[Block]] = {}

B = TypeVar("B", bound=type[Block])


def register_block(name: str) -> Callable[[B], B]:
    """Class decorator: register a block family under its vocabulary name."""
    if name not in FAMILIES:
        raise ValueError(f"block family {name!r} is not in nas.space.vocabulary.FAMILIES")

    def decorate(cls: B) -> B:
        if name in BLOCK_REGISTRY:
            raise ValueError(f"block family {name!r} registered twice")
        cls.family = name
        BLOCK_REGISTRY[name] = cls
        return cls

    return decorate


# ---- shortcuts -----------------------------------------------------------------


def projection_shortcut(c_in: int, c_out: int, stride: int, norm: str) -> nn.Module:
    """Identity when shapes match, else a 1x1 stride-s conv + norm (ResNet option B)."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return ConvNorm(c_in, c_out, 1, stride, norm=norm)


def projection_shortcut_params(c_in: int, c_out: int, stride: int, norm: str) -> int:
    """Parameters of :func:`projection_shortcut`."""
    if stride == 1 and c_in == c_out:
        return 0
    return ConvNorm.count_params(c_in, c_out, 1, norm=norm)


def identity_or_none(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """Identity when shapes match, else no residual at all (MobileNetV2 / MobileNeXt rule)."""
    return nn.Identity() if stride == 1 and c_in == c_out else None
