"""The network builder: Architecture -> ``Network`` (stem, stages of blocks, classifier head)."""

from __future__ import annotations

import torch
from torch import nn

from nas.models.activations import activation_params, make_activation
from nas.models.blocks import BLOCK_REGISTRY, Block
from nas.models.layers import ConvNorm, conv2d, conv_params
from nas.models.norms import make_norm, norm_params
from nas.space.architecture import Architecture, Head, Stage, Stem


def _stem_norm(first: Stage) -> str:
    return "layer" if first.block == "convnext" else first.folded().norm


def _stem_activation(stem: Stem, first: Stage) -> str:
    return stem.activation or first.activation


class NetworkStem(nn.Sequential):
    """conv k x k stride s -> norm -> σ (the stem's own, else the first stage's) [-> 3x3/2 max-pool].

    When the first stage is ``convnext`` the stem is ConvNeXt's patchify stem: conv -> LayerNorm, no σ.
    """

    def __init__(self, in_channels: int, stem: Stem, first: Stage) -> None:
        norm = _stem_norm(first)
        layers: list[nn.Module] = [
            conv2d(in_channels, stem.width, stem.kernel, stem.stride),
            make_norm(norm, stem.width),
        ]
        if first.block != "convnext":
            layers.append(make_activation(_stem_activation(stem, first), stem.width))
        if stem.pool:
            layers.append(nn.MaxPool2d(3, 2, padding=1))
        super().__init__(*layers)

    @staticmethod
    def count_params(in_channels: int, stem: Stem, first: Stage) -> int:
        n = conv_params(in_channels, stem.width, stem.kernel) + norm_params(_stem_norm(first), stem.width)
        if first.block != "convnext":
            n += activation_params(_stem_activation(stem, first), stem.width)
        return n


class ClassifierHead(nn.Module):
    """[1x1 conv to head width -> norm -> σ] -> global average pool [-> linear to hidden -> σ] -> dropout -> linear.

    σ is the last stage's activation (MobileNetV3's hidden classifier layer uses the last blocks' hard-swish).
    """

    def __init__(self, c_in: int, head: Head, last: Stage, num_classes: int) -> None:
        super().__init__()
        last = last.folded()
        self.conv: nn.Module = (
            ConvNorm(c_in, head.width, 1, norm=last.norm, act=last.activation) if head.width else nn.Identity()
        )
        pooled = head.width or c_in
        self.hidden: nn.Module = (
            nn.Sequential(nn.Linear(pooled, head.hidden), make_activation(last.activation, head.hidden))
            if head.hidden
            else nn.Identity()
        )
        self.dropout = nn.Dropout(head.dropout)
        self.fc = nn.Linear(head.hidden or pooled, num_classes)

    @staticmethod
    def count_params(c_in: int, head: Head, last: Stage, num_classes: int) -> int:
        n = 0
        last = last.folded()
        if head.width:
            n = ConvNorm.count_params(c_in, head.width, 1, norm=last.norm, act=last.activation)
        pooled = head.width or c_in
        if head.hidden:
            n += conv_params(pooled, head.hidden, 1, bias=True) + activation_params(last.activation, head.hidden)
        return n + conv_params(head.hidden or pooled, num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(self.conv(x).mean(dim=(2, 3)))
        return self.fc(self.dropout(x))


def make_stage(c_in: int, stage: Stage) -> nn.Sequential:
    """``stage.depth`` blocks: the first one strides and changes the width, the others are width -> width."""
    cls = BLOCK_REGISTRY[stage.block]
    blocks = [cls(c_in, stage.width, stage.stride, stage)]
    blocks += [cls(stage.width, stage.width, 1, stage) for _ in range(stage.depth - 1)]
    return nn.Sequential(*blocks)


def stage_params(c_in: int, c_out: int, stage: Stage) -> int:
    """Parameters of ``make_stage(c_in, stage)`` with the stage's width set to ``c_out``."""
    cls = BLOCK_REGISTRY[stage.block]
    n = cls.count_params(c_in, c_out, stage.stride, stage)
    if stage.depth > 1:
        n += (stage.depth - 1) * cls.count_params(c_out, c_out, 1, stage)
    return n


class Network(nn.Module):
    """A built architecture. ``arch`` is the architecture as built (already adapted to the input size)."""

    def __init__(self, arch: Architecture, *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem = NetworkStem(in_channels, arch.stem, arch.stages[0])
        self.stages = nn.ModuleList()
        c = arch.stem.width
        for stage in arch.stages:
            self.stages.append(make_stage(c, stage))
            c = stage.width
        self.head = ClassifierHead(c, arch.head, arch.stages[-1], num_classes)
        self.apply(_init_weights)

    def probe_modules(self) -> list[nn.Module]:
        """The last block of every stage (its output is an N x C x H x W feature map)."""
        return [stage[-1] for stage in self.stages]

    def blocks(self) -> list[Block]:
        return [b for stage in self.stages for b in stage]  # type: ignore[misc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def _init_weights(m: nn.Module) -> None:
    """torchvision's ResNet/MobileNetV2 init: He (fan-out) convs, small-normal classifier, zero biases."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)
