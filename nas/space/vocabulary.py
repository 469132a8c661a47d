"""The words of the search-space language: block families, activations, norms.

The model registry (``nas.models``) implements exactly these names; a test checks
that the two agree. Kept free of torch so that parsing and hashing stay light.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyInfo:
    """Which per-stage choices a block family reads, and its paper anchor."""

    uses_expansion: bool
    uses_depthwise: bool
    uses_norm: bool
    anchor: str
    uses_se: bool = False


# Choices a family does not read are folded to a canonical value before hashing.
FAMILIES: dict[str, FamilyInfo] = {
    "basic": FamilyInfo(False, False, True, "ResNet-18"),
    "bottleneck": FamilyInfo(True, True, True, "ResNet-50 (e=4)"),
    "inverted": FamilyInfo(True, True, True, "MobileNetV2 (MobileNetV3 / EfficientNet MBConv with SE)", uses_se=True),
    "separable": FamilyInfo(False, False, True, "MobileNetV1"),
    "convnext": FamilyInfo(True, True, False, "ConvNeXt (always LayerNorm)"),
    "sandglass": FamilyInfo(True, True, True, "MobileNeXt"),
    "nodepth": FamilyInfo(True, False, True, "NoDepth bottleneck (our reading)"),
}

# name -> superlinear?
ACTIVATIONS: dict[str, bool] = {
    "relu": False,
    "relu6": False,
    "gelu": False,
    "silu": False,
    "hardswish": False,
    "relu2": True,
    "starrelu": True,
    "solu": True,
}

NORMS: tuple[str, ...] = ("batch", "layer")

# Squeeze-excitation: the width it squeezes is a ratio of the block's expanded width (MobileNetV3) or of its
# input width (EfficientNet); the gate that scales the channels.
SE_BASES: tuple[str, ...] = ("expanded", "input")
SE_GATES: tuple[str, ...] = ("hardsigmoid", "sigmoid")

# Values a family ignores are replaced by these in the canonical form.
FOLDED_EXPANSION = 1
FOLDED_DEPTHWISE = False
FOLDED_NORM = "layer"  # convnext is always LayerNorm
FOLDED_SE = {"se": 0.0, "se_of": "expanded", "se_activation": "relu", "se_gate": "hardsigmoid"}  # no SE


def is_superlinear(activation: str) -> bool:
    """Whether an activation grows faster than linearly (relu2, starrelu, solu)."""
    return ACTIVATIONS[activation]
