"""``separable``: the MobileNetV1 depthwise-separable block (Howard et al. 2017).

Layers: depthwise k x k stride s on C_in -> norm -> σ -> 1x1 to C_out -> norm -> σ. No residual, ever.
Reads kernel, activation and norm; the spatial conv is always depthwise and there is no expansion.
"""

from __future__ import annotations

from torch import nn

from nas.models.blocks.base import Block, register_block
from nas.models.layers import ConvNorm
from nas.space.architecture import Stage


@register_block("separable")
class SeparableBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        self.body = nn.Sequential(
            ConvNorm(c_in, c_in, s.kernel, stride, groups=c_in, norm=s.norm, act=s.activation),
            ConvNorm(c_in, c_out, 1, norm=s.norm, act=s.activation),
        )

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        return ConvNorm.count_params(c_in, c_in, s.kernel, groups=c_in, norm=s.norm, act=s.activation) + (
            ConvNorm.count_params(c_in, c_out, 1, norm=s.norm, act=s.activation)
        )
