"""Tests for nas.models: registries, activations, norms, block families, the builder and analytic counts."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nas.errors import SpaceError
from nas.models import (
    ACTIVATION_REGISTRY,
    BLOCK_REGISTRY,
    ChannelLayerNorm,
    Network,
    build_model,
    count_params,
    make_activation,
)
from nas.models.blocks.convnext import Downsample
from nas.models.norms import NORM_REGISTRY
from nas.space.architecture import Architecture, Head, Stage, Stem
from nas.space.vocabulary import ACTIVATIONS, FAMILIES, NORMS

torch.set_num_threads(1)

RESNET18 = (
    "stem_c64_k7_s2_pool/basic_d2_s1_c64_k3_relu_bn/basic_d2_s2_c128_k3_relu_bn/"
    "basic_d2_s2_c256_k3_relu_bn/basic_d2_s2_c512_k3_relu_bn"
)
MOBILENETV2 = (
    "stem_c32_k3_s2/inverted_d1_s1_c16_e1_k3_relu6_dw_bn/inverted_d2_s2_c24_e6_k3_relu6_dw_bn/"
    "inverted_d3_s2_c32_e6_k3_relu6_dw_bn/inverted_d4_s2_c64_e6_k3_relu6_dw_bn/"
    "inverted_d3_s1_c96_e6_k3_relu6_dw_bn/inverted_d3_s2_c160_e6_k3_relu6_dw_bn/"
    "inverted_d1_s1_c320_e6_k3_relu6_dw_bn/head_c1280_p0.2"
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def random_arch(rng: random.Random, *, n_stages: int | None = None) -> Architecture:
    stages = []
    for _ in range(n_stages or rng.randint(1, 4)):
        stages.append(
            Stage(
                block=rng.choice(list(FAMILIES)),
                depth=rng.randint(1, 3),
                stride=rng.choice([1, 2]),
                width=rng.randint(1, 48),
                expansion=rng.randint(1, 6),
                kernel=rng.choice([3, 5, 3, 5, 1, 7]),  # odd only: the field rules refuse even kernels
                activation=rng.choice(list(ACTIVATIONS)),
                depthwise=rng.random() < 0.5,
                norm=rng.choice(NORMS),
            )
        )
    stem_stride = rng.choice([1, 2])
    stem_kernel = rng.choice([3, 5, 7, stem_stride])  # odd, or a patchify kernel (kernel == stride)
    stem = Stem(width=rng.randint(1, 32), kernel=stem_kernel, stride=stem_stride, pool=rng.random() < 0.3)
    head = Head(width=rng.choice([None, rng.randint(1, 96)]), dropout=rng.choice([0.0, 0.2]))
    return Architecture(stem, tuple(stages), head)


# ---- registries ---------------------------------------------------------------


def test_registries_match_vocabulary() -> None:
    assert set(ACTIVATION_REGISTRY) == set(ACTIVATIONS)
    assert set(BLOCK_REGISTRY) == set(FAMILIES)
    assert tuple(NORM_REGISTRY) == NORMS
    for name, cls in BLOCK_REGISTRY.items():
        assert cls.family == name


def test_unknown_activation_is_a_space_error() -> None:
    with pytest.raises(SpaceError, match="allowed"):
        make_activation("tanh", 4)


# ---- activations and norms -----------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_finite_and_flagged(name: str) -> None:
    act = make_activation(name, 6)
    x = torch.randn(2, 6, 5, 5) * 3
    y = act(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert act.superlinear is ACTIVATIONS[name]
    assert act.superlinear is (name in {"relu2", "starrelu", "solu"})
    assert n_params(act) == type(act).count_params(6)


def test_activation_values() -> None:
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0]).reshape(1, 5, 1, 1)
    torch.testing.assert_close(make_activation("relu2", 5)(x), torch.relu(x) ** 2)
    torch.testing.assert_close(make_activation("starrelu", 5)(x), 0.8944 * torch.relu(x) ** 2 - 0.4472)
    solu = make_activation("solu", 5)
    expected = nn.functional.layer_norm((x * torch.softmax(x, 1)).permute(0, 2, 3, 1), (5,), eps=1e-6)
    torch.testing.assert_close(solu(x), expected.permute(0, 3, 1, 2))
    assert n_params(make_activation("starrelu", 7)) == 2
    assert n_params(solu) == 10


def test_channel_layer_norm_matches_layer_norm_and_channels_last() -> None:
    x = torch.randn(2, 8, 4, 3)
    ln = ChannelLayerNorm(8)
    assert ln.eps == 1e-6 and n_params(ln) == 16
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)
    torch.testing.assert_close(ln(x.contiguous(memory_format=torch.channels_last)), ref)


# ---- blocks ----------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(8, 8, 1), (8, 12, 1), (8, 12, 2), (8, 8, 2)])
def test_block_shapes_and_counts(family: str, c_in: int, c_out: int, stride: int) -> None:
    stage = Stage(family, 1, stride, c_out, expansion=3, kernel=3, activation="relu", depthwise=True)
    block = BLOCK_REGISTRY[family](c_in, c_out, stride, stage).eval()
    y = block(torch.randn(2, c_in, 9, 9))
    side = 9 if stride == 1 else 5
    assert y.shape == (2, c_out, side, side)
    assert n_params(block) == type(block).count_params(c_in, c_out, stride, stage)


RESIDUAL = {  # family -> (same shape, stride 2, width change at stride 1)
    "basic": ("identity", "projection", "projection"),
    "bottleneck": ("identity", "projection", "projection"),
    "nodepth": ("identity", "projection", "projection"),
    "inverted": ("identity", "none", "none"),
    "sandglass": ("identity", "none", "none"),
    "separable": ("none", "none", "none"),
    "convnext": ("identity", "identity", "identity"),  # after its downsample layer
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_residual_rules(family: str) -> None:
    stage = Stage(family, 1, 1, 8, expansion=2)
    cls = BLOCK_REGISTRY[family]
    same, strided, wider = cls(8, 8, 1, stage), cls(8, 8, 2, stage), cls(8, 16, 1, stage)
    assert (same.residual, strided.residual, wider.residual) == RESIDUAL[family]
    if same.residual == "identity":
        assert isinstance(same.shortcut, nn.Identity)
    if family == "convnext":
        assert same.downsample is None
        assert isinstance(strided.downsample, Downsample) and strided.downsample.conv.kernel_size == (2, 2)
        assert isinstance(wider.downsample, Downsample) and wider.downsample.conv.kernel_size == (1, 1)


def test_inverted_skips_expansion_when_e_is_1() -> None:
    cls = BLOCK_REGISTRY["inverted"]
    convs = lambda b: [m for m in b.modules() if isinstance(m, nn.Conv2d)]  # noqa: E731
    assert len(convs(cls(8, 8, 1, Stage("inverted", 1, 1, 8, expansion=1)))) == 2
    assert len(convs(cls(8, 8, 1, Stage("inverted", 1, 1, 8, expansion=4)))) == 3


def test_depthwise_choice() -> None:
    for family in ("bottleneck", "inverted", "sandglass", "convnext"):
        cls = BLOCK_REGISTRY[family]
        dw = cls(8, 8, 1, Stage(family, 1, 1, 8, expansion=2, depthwise=True))
        dense = cls(8, 8, 1, Stage(family, 1, 1, 8, expansion=2, depthwise=False))
        assert max(m.groups for m in dw.modules() if isinstance(m, nn.Conv2d)) > 1
        assert all(m.groups == 1 for m in dense.modules() if isinstance(m, nn.Conv2d))
    sep = BLOCK_REGISTRY["separable"](8, 8, 1, Stage("separable", 1, 1, 8, depthwise=False))
    assert max(m.groups for m in sep.modules() if isinstance(m, nn.Conv2d)) == 8
    nod = BLOCK_REGISTRY["nodepth"](8, 8, 1, Stage("nodepth", 1, 1, 8, depthwise=True))
    assert all(m.groups == 1 for m in nod.modules() if isinstance(m, nn.Conv2d))


def test_convs_without_bias_except_convnext_pointwise() -> None:
    stages = "/".join(f"{f}_d1_s2_c16_e2_k3_relu_dw_bn" for f in FAMILIES)
    model = build_model(
        Architecture.parse(f"stem_c8_k3_s1/{stages}/head_c16"), in_channels=1, num_classes=10, resolution=28
    )
    biased = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert biased and all(".downsample." in n or n.endswith(("body.2", "body.4")) for n in biased), biased
    assert all(
        type(b).family == "convnext"
        for stage in model.stages
        for b in stage
        if any(c.bias is not None for c in b.modules() if isinstance(c, nn.Conv2d))
    )


# ---- network -------------------------------------------------------------------------


def test_reference_counts() -> None:
    for text, expected in ((RESNET18, 11_689_512), (MOBILENETV2, 3_504_872)):
        arch = Architecture.parse(text)
        assert count_params(arch, in_channels=3, num_classes=1000) == expected
        with torch.device("meta"):
            model = build_model(arch, in_channels=3, num_classes=1000, resolution=224)
        assert n_params(model) == expected


def test_resnet18_structure_and_forward() -> None:
    model = build_model(Architecture.parse(RESNET18), in_channels=3, num_classes=7, resolution=224).eval()
    assert model.arch.stem.stride == 2 and model.arch.stem.pool
    stem_conv = model.stem[0]
    assert stem_conv.kernel_size == (7, 7) and stem_conv.padding == (3, 3) and stem_conv.stride == (2, 2)
    assert isinstance(model.stem[-1], nn.MaxPool2d)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64 + 1, 64 + 1)).shape == (1, 7)  # 65 px is not adapted


def test_small_input_adaptation() -> None:
    arch = Architecture.parse(RESNET18)
    model = build_model(arch, in_channels=1, num_classes=10, resolution=28)
    assert model.arch == arch.adapted_to_input(28)
    assert model.arch.stem.stride == 1 and not model.arch.stem.pool
    assert model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.stem)


def test_count_matches_build_for_random_architectures() -> None:
    rng = random.Random(0)
    seen = {"families": set(), "acts": set(), "norms": set()}
    for _ in range(200):
        arch = random_arch(rng)
        for s in arch.stages:
            seen["families"].add(s.block)
            seen["acts"].add(s.activation)
            seen["norms"].add(s.norm)
        classes, channels = rng.choice([(10, 1), (1000, 3)])
        with torch.device("meta"):
            model = build_model(arch, in_channels=channels, num_classes=classes, resolution=rng.choice([28, 224]))
        assert count_params(arch, in_channels=channels, num_classes=classes) == n_params(model), arch
    assert seen == {"families": set(FAMILIES), "acts": set(ACTIVATIONS), "norms": set(NORMS)}


def test_spelling_does_not_change_the_network() -> None:
    # choices a family ignores (basic's expansion, convnext's norm, nodepth's depthwise) change nothing
    a = Architecture.parse("stem_c8_k3_s1/basic_d1_s1_c8_e4_k3_relu_dw_bn/convnext_d1_s2_c16_e2_k3_gelu_bn")
    b = Architecture.parse("stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/convnext_d1_s2_c16_e2_k3_gelu_dw_ln")
    ma = build_model(a, in_channels=1, num_classes=3, resolution=16)
    mb = build_model(b, in_channels=1, num_classes=3, resolution=16)
    assert [(k, v.shape) for k, v in ma.state_dict().items()] == [(k, v.shape) for k, v in mb.state_dict().items()]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_small_network_forward(family: str) -> None:
    torch.manual_seed(0)
    text = (
        f"stem_c8_k3_s2_pool/{family}_d2_s1_c8_e2_k3_relu_dw_bn/{family}_d1_s2_c16_e2_k5_starrelu_dense_ln/"
        f"{family}_d1_s2_c24_e3_k3_solu_dw_bn/head_c32_p0.1"
    )
    model = build_model(Architecture.parse(text), in_channels=1, num_classes=10, resolution=28)
    assert isinstance(model, Network)
    probes = model.probe_modules()
    assert probes == [stage[-1] for stage in model.stages] and len(probes) == 3
    shapes: list[tuple[int, ...]] = []
    hooks = [p.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape))) for p in probes]
    x = torch.randn(2, 1, 28, 28)
    model.train()
    model(x).sum().backward()
    model.eval()
    shapes.clear()
    with torch.no_grad():
        y = model(x.contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    assert shapes == [(2, 8, 28, 28), (2, 16, 14, 14), (2, 24, 7, 7)]


def test_convnext_stem_is_patchify() -> None:
    arch = Architecture.parse("stem_c8_k4_s4/convnext_d1_s1_c8_e4_k7_gelu_dw/head")
    model = build_model(arch, in_channels=3, num_classes=5, resolution=224)
    assert isinstance(model.stem[1], ChannelLayerNorm) and len(model.stem) == 2
    with torch.no_grad():
        assert model.stem(torch.randn(1, 3, 32, 32)).shape == (1, 8, 8, 8)
