"""``bottleneck``: the ResNet-50 bottleneck (He et al. 2016), e = 4 in the original.

Layers: 1x1 to m = max(1, round(C_out / e)) -> norm -> σ -> dw? k x k stride s on m -> norm -> σ ->
1x1 to C_out -> norm -> (+ shortcut) -> σ. ``dw?`` is depthwise (groups = m) when the stage says
``depthwise``, dense otherwise (dense is ResNet-50). The stride sits on the k x k conv (torchvision's
"ResNet v1.5"). The shortcut is the identity when stride is 1 and the widths match, otherwise a
projection (1x1 stride-s conv + norm).
"""

from __future__ import annotations

from torch import nn

from nas.models.activations import activation_params, make_activation
from nas.models.blocks.base import Block, projection_shortcut, projection_shortcut_params, register_block
from nas.models.layers import ConvNorm, reduced
from nas.space.architecture import Stage


@register_block("bottleneck")
class BottleneckBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        mid = reduced(c_out, s.expansion)
        self.body = nn.Sequential(
            ConvNorm(c_in, mid, 1, norm=s.norm, act=s.activation),
            ConvNorm(mid, mid, s.kernel, stride, groups=mid if s.depthwise else 1, norm=s.norm, act=s.activation),
            ConvNorm(mid, c_out, 1, norm=s.norm),
        )
        self.shortcut = projection_shortcut(c_in, c_out, stride, s.norm)
        self.post = make_activation(s.activation, c_out)

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        mid = reduced(c_out, s.expansion)
        return (
            ConvNorm.count_params(c_in, mid, 1, norm=s.norm, act=s.activation)
            + ConvNorm.count_params(mid, mid, s.kernel, groups=mid if s.depthwise else 1, norm=s.norm, act=s.activation)
            + ConvNorm.count_params(mid, c_out, 1, norm=s.norm)
            + projection_shortcut_params(c_in, c_out, stride, s.norm)
            + activation_params(s.activation, c_out)
        )
