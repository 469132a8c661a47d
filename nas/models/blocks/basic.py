"""``basic``: the ResNet BasicBlock (He et al. 2016; ResNet-18/34).

Layers: k x k stride s -> norm -> σ -> k x k -> norm -> (+ shortcut) -> σ. The shortcut is the identity
when stride is 1 and the widths match, otherwise a projection (1x1 stride-s conv + norm, "option B").
Reads kernel, activation and norm; expansion and depthwise are ignored (both convolutions are dense).
"""

from __future__ import annotations

from torch import nn

from nas.models.activations import activation_params, make_activation
from nas.models.blocks.base import Block, projection_shortcut, projection_shortcut_params, register_block
from nas.models.layers import ConvNorm
from nas.space.architecture import Stage


@register_block("basic")
class BasicBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        self.body = nn.Sequential(
            ConvNorm(c_in, c_out, s.kernel, stride, norm=s.norm, act=s.activation),
            ConvNorm(c_out, c_out, s.kernel, norm=s.norm),
        )
        self.shortcut = projection_shortcut(c_in, c_out, stride, s.norm)
        self.post = make_activation(s.activation, c_out)

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        return (
            ConvNorm.count_params(c_in, c_out, s.kernel, norm=s.norm, act=s.activation)
            + ConvNorm.count_params(c_out, c_out, s.kernel, norm=s.norm)
            + projection_shortcut_params(c_in, c_out, stride, s.norm)
            + activation_params(s.activation, c_out)
        )
