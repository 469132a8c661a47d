"""``sandglass``: the MobileNeXt sandglass block (Zhou et al. 2020).

Layers: dw? k x k on C_in -> norm -> σ -> 1x1 to m = max(1, round(C_in / e)) -> norm (linear) ->
1x1 to C_out -> norm -> σ -> dw? k x k stride s on C_out -> norm (linear) -> (+ identity).
The residual connects the wide ends, the bottleneck sits in the middle, and the stride is on the last
spatial conv, as in the paper. ``dw?`` is depthwise when the stage says ``depthwise`` (MobileNeXt),
dense otherwise.

Deviation from DESIGN.md's generic rule ("otherwise a projection"): as in MobileNeXt, the residual is
added only when stride is 1 and C_in == C_out; otherwise there is no shortcut (no projection).
"""

from __future__ import annotations

from torch import nn

from nas.models.blocks.base import Block, identity_or_none, register_block
from nas.models.layers import ConvNorm, reduced
from nas.space.architecture import Stage


@register_block("sandglass")
class SandglassBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        mid = reduced(c_in, s.expansion)
        self.body = nn.Sequential(
            ConvNorm(c_in, c_in, s.kernel, groups=c_in if s.depthwise else 1, norm=s.norm, act=s.activation),
            ConvNorm(c_in, mid, 1, norm=s.norm),
            ConvNorm(mid, c_out, 1, norm=s.norm, act=s.activation),
            ConvNorm(c_out, c_out, s.kernel, stride, groups=c_out if s.depthwise else 1, norm=s.norm),
        )
        self.shortcut = identity_or_none(c_in, c_out, stride)

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        mid = reduced(c_in, s.expansion)
        return (
            ConvNorm.count_params(
                c_in, c_in, s.kernel, groups=c_in if s.depthwise else 1, norm=s.norm, act=s.activation
            )
            + ConvNorm.count_params(c_in, mid, 1, norm=s.norm)
            + ConvNorm.count_params(mid, c_out, 1, norm=s.norm, act=s.activation)
            + ConvNorm.count_params(c_out, c_out, s.kernel, groups=c_out if s.depthwise else 1, norm=s.norm)
        )
