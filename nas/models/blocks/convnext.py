"""``convnext``: the ConvNeXt block (Liu et al. 2022), always with LayerNorm.

Layers: dw? k x k on C -> LayerNorm -> 1x1 to C * e -> σ -> 1x1 to C -> layer scale (per-channel,
init 1e-6) -> (+ identity). Canonical ConvNeXt uses k = 7, e = 4 and GELU; here kernel, expansion,
activation and depthwise come from the stage (``dw?`` is depthwise when the stage says so, dense
otherwise). The block itself never strides and never changes the width: as in ConvNeXt that is done
by a separate downsample layer in front of the stage's first block -- LayerNorm + s x s stride-s conv
(2x2/2 for stride 2), or LayerNorm + 1x1 conv when only the width changes. So that every family has the
same ``Block(c_in, c_out, stride, stage)`` signature, the downsample layer is held by the first block
as its ``downsample`` attribute and runs before the block body; the residual then joins the
downsample's output (``residual`` is always ``identity``).

Deviations from DESIGN.md's "every conv is followed by a norm, without bias", kept from ConvNeXt:
the two 1x1 convs (ConvNeXt's ``pwconv1``/``pwconv2`` linears) and the downsample conv are not
followed by a norm, so they keep their bias; the k x k conv is followed by the LayerNorm and has none.
The downsample pads the bottom/right edge with zeros when the size is not a multiple of the stride, so
the output is ceil(H / s) x ceil(W / s) like every other family (ConvNeXt would drop the last row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.models.activations import activation_params, make_activation
from nas.models.blocks.base import Block, register_block
from nas.models.layers import conv2d, conv_params, expanded
from nas.models.norms import ChannelLayerNorm, norm_params
from nas.space.architecture import Stage

LAYER_SCALE_INIT = 1e-6


class Downsample(nn.Module):
    """ConvNeXt downsample layer: LayerNorm -> s x s stride-s conv (1x1 when s == 1), with bias."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.norm = ChannelLayerNorm(c_in)
        self.conv = nn.Conv2d(c_in, c_out, stride, stride, bias=True)

    @staticmethod
    def count_params(c_in: int, c_out: int, stride: int) -> int:
        return norm_params("layer", c_in) + conv_params(c_in, c_out, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        s = self.stride
        if s > 1:
            pad_h, pad_w = -x.shape[-2] % s, -x.shape[-1] % s
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.conv(x)


@register_block("convnext")
class ConvNeXtBlock(Block):
    def __init__(self, c_in: int, c_out: int, stride: int, stage: Stage) -> None:
        super().__init__(c_in, c_out, stride, stage)
        s = stage.folded()
        hidden = expanded(c_out, s.expansion)
        self.downsample = Downsample(c_in, c_out, stride) if stride != 1 or c_in != c_out else None
        self.body = nn.Sequential(
            conv2d(c_out, c_out, s.kernel, groups=c_out if s.depthwise else 1),
            ChannelLayerNorm(c_out),
            nn.Conv2d(c_out, hidden, 1, bias=True),
            make_activation(s.activation, hidden),
            nn.Conv2d(hidden, c_out, 1, bias=True),
        )
        self.gamma = nn.Parameter(torch.full((c_out,), LAYER_SCALE_INIT))
        self.shortcut = nn.Identity()

    @classmethod
    def count_params(cls, c_in: int, c_out: int, stride: int, stage: Stage) -> int:
        s = stage.folded()
        hidden = expanded(c_out, s.expansion)
        down = Downsample.count_params(c_in, c_out, stride) if stride != 1 or c_in != c_out else 0
        return (
            down
            + conv_params(c_out, c_out, s.kernel, groups=c_out if s.depthwise else 1)
            + norm_params("layer", c_out)
            + conv_params(c_out, hidden, 1, bias=True)
            + activation_params(s.activation, hidden)
            + conv_params(hidden, c_out, 1, bias=True)
            + c_out  # layer scale
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return x + self.body(x) * self.gamma[:, None, None]
