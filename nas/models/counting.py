"""Analytic parameter counts (pure integer arithmetic, no tensors); equal to the built model's count."""

from __future__ import annotations

from nas.models.network import ClassifierHead, NetworkStem, stage_params
from nas.space.architecture import Architecture


def count_params(arch: Architecture, *, in_channels: int, num_classes: int) -> int:
    """Learnable parameters of ``build_model(arch, ...)`` (independent of the input resolution)."""
    n = NetworkStem.count_params(in_channels, arch.stem, arch.stages[0])
    c = arch.stem.width
    for stage in arch.stages:
        n += stage_params(c, stage.width, stage)
        c = stage.width
    return n + ClassifierHead.count_params(c, arch.head, arch.stages[-1], num_classes)
