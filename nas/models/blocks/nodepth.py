"""``nodepth``: the NoDepth bottleneck of Hollard et al. (2025), as we read it.

The paper's full text was not available to us; this block is our reading of its abstract: channel
compression is kept linear and separate from the non-linear spatial transform, and there is no
depthwise convolution. Layers: 1x1 to m = max(1, round(C_in / e)) -> norm (linear, no σ) ->
dense k x k stride s on m -> norm -> σ -> 1x1 to C_out -> norm (linear) -> (+ shortcut).
The shortcut is the identity when stride is 1 and the widths match, otherwise a projection
(1x1 stride-s conv + norm). There is no σ after the addition. ``depthwise`` is ignored (always dense).
"""

from __future__ import annotations

from torch import nn

from nas.models.blocks.base import Block, projection_shortcut, projection_shortcut_params, register_block
from nas.models.layers import ConvNorm, reduced
from nas.space.architecture import Stage


@register_block("nodepth")
class NoDepthBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        mid = reduced(c_in, s.expansion)
        self.body = nn.Sequential(
            ConvNorm(c_in, mid, 1, norm=s.norm),
            ConvNorm(mid, mid, s.kernel, stride, norm=s.norm, act=s.activation),
            ConvNorm(mid, c_out, 1, norm=s.norm),
        )
        self.shortcut = projection_shortcut(c_in, c_out, stride, s.norm)

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        mid = reduced(c_in, s.expansion)
        return (
            ConvNorm.count_params(c_in, mid, 1, norm=s.norm)
            + ConvNorm.count_params(mid, mid, s.kernel, norm=s.norm, act=s.activation)
            + ConvNorm.count_params(mid, c_out, 1, norm=s.norm)
            + projection_shortcut_params(c_in, c_out, stride, s.norm)
        )
