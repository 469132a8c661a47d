"""``inverted``: the MobileNetV2 inverted residual (Sandler et al. 2018).

Layers: 1x1 to h = C_in * e -> norm -> σ -> dw? k x k stride s on h -> norm -> σ -> [squeeze-excitation on
h] -> 1x1 to C_out -> norm (linear bottleneck, no σ) -> (+ identity). As in torchvision, the expansion conv is
skipped when h == C_in (the block starts at the k x k conv on C_in). With SE and a fractional expansion this
is the MBConv of MobileNetV3 and EfficientNet (see ``nas.models.layers.expanded`` and ``se_width``).
``dw?`` is depthwise (groups = h) when the stage says
``depthwise`` (MobileNetV2), dense otherwise.

Deviation from DESIGN.md's generic rule ("otherwise a projection"): as in MobileNetV2, the residual is
added only when stride is 1 and C_in == C_out; a block that changes the shape has NO shortcut at all
(no projection), which is what makes the MobileNetV2 reference count exact.
"""

from __future__ import annotations

from torch import nn

from nas.models.blocks.base import Block, identity_or_none, register_block
from nas.models.layers import ConvNorm, SqueezeExcite, expanded, se_width
from nas.space.architecture import Stage


@register_block("inverted")
class InvertedResidual(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        hidden = expanded(c_in, s.expansion)
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers.append(ConvNorm(c_in, hidden, 1, norm=s.norm, act=s.activation))
        layers.append(
            ConvNorm(
                hidden, hidden, s.kernel, stride, groups=hidden if s.depthwise else 1, norm=s.norm, act=s.activation
            )
        )
        if s.se:
            squeezed = se_width(c_in, hidden, s.se, s.se_of)
            layers.append(SqueezeExcite(hidden, squeezed, act=s.se_activation, gate=s.se_gate))
        layers.append(ConvNorm(hidden, c_out, 1, norm=s.norm))
        self.body = nn.Sequential(*layers)
        self.shortcut = identity_or_none(c_in, c_out, stride)

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        hidden = expanded(c_in, s.expansion)
        n = ConvNorm.count_params(c_in, hidden, 1, norm=s.norm, act=s.activation) if hidden != c_in else 0
        if s.se:
            n += SqueezeExcite.count_params(hidden, se_width(c_in, hidden, s.se, s.se_of), act=s.se_activation)
        return (
            n
            + ConvNorm.count_params(
                hidden, hidden, s.kernel, groups=hidden if s.depthwise else 1, norm=s.norm, act=s.activation
            )
            + ConvNorm.count_params(hidden, c_out, 1, norm=s.norm)
        )
