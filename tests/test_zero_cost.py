"""Tests of nas.metrics.zero_cost: each proxy on tiny networks whose answer is known or computed by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import nas.metrics
from nas.data import load_dataset
from nas.errors import ConfigError
from nas.metrics.zero_cost import (
    JACOB_COV_EPS,
    ZERO_COST_NAMES,
    _grouped_conv,
    naswot,
    score_architecture,
    synflow,
    zero_cost_batch,
    zero_cost_scores,
)
from nas.models.activations import GELU
from nas.space import Architecture

torch.set_num_threads(1)

TINY = "stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/inverted_d1_s2_c16_e2_k3_gelu_dw_ln/head"


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", train_size=200, test_size=20, num_classes=4, channels=1, resolution=8)


def small_convnet(norm: str = "batch") -> nn.Module:
    make_norm = (lambda c: nn.BatchNorm2d(c)) if norm == "batch" else (lambda c: nn.GroupNorm(1, c))
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), make_norm(6), nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, bias=False), make_norm(8), GELU(8),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 4),
    )  # fmt: skip


def scores(model_or_factory, x, y, *proxies: str, seed: int = 0) -> dict[str, float]:
    factory = (
        model_or_factory
        if callable(model_or_factory) and not isinstance(model_or_factory, nn.Module)
        else (lambda: model_or_factory)
    )
    return zero_cost_scores(factory, x, y, proxies=proxies or ZERO_COST_NAMES, seed=seed)


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.arange(n) % 4


# ---- API ---------------------------------------------------------------------------------------------------


def test_names_directions_and_lazy_exports():
    assert ZERO_COST_NAMES == ("naswot", "synflow", "snip", "grad_norm", "jacob_cov")
    from nas.objectives import METRICS

    assert all(METRICS[f"zc_{p}"].direction == "maximize" for p in ZERO_COST_NAMES)
    assert nas.metrics.zero_cost_scores is zero_cost_scores
    assert nas.metrics.ZERO_COST_NAMES is ZERO_COST_NAMES


def test_result_keys_and_timings():
    x, y = batch()
    out = scores(small_convnet, x, y)
    expected = [f"zc_{p}" for p in ZERO_COST_NAMES] + [f"zc_{p}_s" for p in ZERO_COST_NAMES] + ["zc_s"]
    assert list(out) == expected
    assert all(math.isfinite(v) for v in out.values())
    assert all(out[f"zc_{p}_s"] > 0 for p in ZERO_COST_NAMES)
    assert out["zc_s"] == pytest.approx(sum(out[f"zc_{p}_s"] for p in ZERO_COST_NAMES))
    only = scores(small_convnet, x, y, "jacob_cov")
    assert set(only) == {"zc_jacob_cov", "zc_jacob_cov_s", "zc_s"}


@pytest.mark.parametrize("bad", [("naswot", "fisher"), ("NASWOT",)])
def test_unknown_proxy_is_a_config_error(bad, data):
    x, y = batch()
    with pytest.raises(ConfigError, match=r"allowed: naswot, synflow, snip, grad_norm, jacob_cov"):
        scores(small_convnet, x, y, *bad)
    with pytest.raises(ConfigError, match=repr(bad[-1])):
        score_architecture(Architecture.parse(TINY), data, proxies=bad)


# ---- NASWOT ------------------------------------------------------------------------------------------------


class TwoCodes(nn.Module):
    """Two activation modules, one on x and one on -x: the codes of the second are the complement of the first."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.ReLU(), GELU(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(-x)], dim=1)


def test_naswot_is_logdet_of_the_hamming_kernel():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 40, generator=g)  # 10 images, 40 units per activation module
    codes = (x > 0).numpy()
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    kernel = 2 * (40 - hamming)  # N_A = 80 units; the complement codes have the same Hamming distances
    expected = np.linalg.slogdet(kernel.astype(np.float64))[1]
    got = scores(TwoCodes, x, torch.zeros(10, dtype=torch.long), "naswot")["zc_naswot"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_naswot_identical_codes_are_nan_and_diverse_codes_score_higher():
    g = torch.Generator().manual_seed(2)
    diverse = torch.randn(8, 64, generator=g)
    close = diverse[:1].repeat(8, 1)
    close[torch.arange(8), torch.arange(8)] *= -1  # each image flips one unit of a shared code
    y = torch.zeros(8, dtype=torch.long)
    s_diverse = scores(TwoCodes, diverse, y, "naswot")["zc_naswot"]
    s_close = scores(TwoCodes, close, y, "naswot")["zc_naswot"]
    assert math.isfinite(s_close) and s_close < s_diverse - 5
    constant = torch.ones(8, 64)  # every image has the same code: K_H = N_A everywhere, singular
    assert math.isnan(scores(TwoCodes, constant, y, "naswot")["zc_naswot"])


def test_naswot_hooks_the_space_activations():
    torch.manual_seed(0)  # 32 units: six inputs' codes are distinct, so the kernel is not singular
    model = nn.Sequential(nn.Linear(5, 32), GELU(32))
    x = torch.randn(6, 5)
    assert math.isfinite(naswot(model, x, torch.zeros(6, dtype=torch.long)))
    assert math.isnan(scores(nn.Identity, x, torch.zeros(6, dtype=torch.long), "naswot")["zc_naswot"])  # no codes


# ---- synflow -----------------------------------------------------------------------------------------------


def two_layer(norm: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(3)
    layers = [nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False)]
    if norm is not None:
        layers.insert(1, norm)
    return nn.Sequential(*layers)


def test_synflow_closed_form_and_weight_scaling():
    model = two_layer()
    w1, w2 = model[0].weight.detach().double().abs(), model[2].weight.detach().double().abs()
    flow = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(5, dtype=torch.float64))
    x = torch.randn(7, 5)
    y = torch.zeros(7, dtype=torch.long)
    assert synflow(model, x, y) == pytest.approx(2 * flow, rel=1e-12)  # Euler: each layer carries the whole flow
    doubled = copy.deepcopy(model)
    with torch.no_grad():
        doubled[0].weight.mul_(-2)  # the sign is dropped, the scale doubles the flow through both layers
    assert synflow(doubled, x, y) == pytest.approx(4 * flow, rel=1e-12)


def test_synflow_ignores_the_batch_and_the_norm_layers():
    x1, y1 = batch(seed=1)
    x2, y2 = batch(n=5, seed=2)
    a = scores(small_convnet, x1, y1, "synflow")["zc_synflow"]
    assert a > 0
    assert scores(small_convnet, x2 * 100, y2, "synflow")["zc_synflow"] == pytest.approx(a, rel=1e-12)
    x, y = torch.randn(4, 5), torch.zeros(4, dtype=torch.long)
    plain = synflow(two_layer(), x, y)
    assert synflow(two_layer(nn.BatchNorm1d(4)), x, y) == pytest.approx(plain, rel=1e-12)
    assert synflow(two_layer(nn.LayerNorm(4)), x, y) == pytest.approx(plain, rel=1e-12)


def test_synflow_leaves_the_model_alone():
    model = small_convnet()
    before = copy.deepcopy(model.state_dict())
    x, y = batch()
    synflow(model, x, y)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert next(model.parameters()).dtype == torch.float32


# ---- snip and grad_norm ------------------------------------------------------------------------------------


class Detached(nn.Module):
    """A linear layer whose output is multiplied by zero: the loss does not depend on the parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(36, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * 0.0


def test_snip_and_grad_norm_are_zero_without_parameter_dependence():
    x, y = batch()
    out = scores(Detached, x, y, "snip", "grad_norm")
    assert out["zc_snip"] == 0.0 and out["zc_grad_norm"] == 0.0
    live = scores(small_convnet, x, y, "snip", "grad_norm")
    assert live["zc_snip"] > 0 and live["zc_grad_norm"] > 0


def test_snip_and_grad_norm_match_hand_computed_gradients():
    x, y = batch()
    torch.manual_seed(0)
    model = small_convnet().to(memory_format=torch.channels_last)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y).backward()
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    snip_hand = sum(float((m.weight.grad * m.weight.detach()).abs().sum()) for m in layers)
    per_layer = sum(float(m.weight.grad.norm()) for m in layers)
    global_norm = float(torch.cat([m.weight.grad.flatten() for m in layers]).norm())
    both = scores(small_convnet, x, y, "snip", "grad_norm")
    assert both["zc_snip"] == pytest.approx(snip_hand, rel=1e-5)
    assert both["zc_grad_norm"] == pytest.approx(per_layer, rel=1e-5)  # per layer, then summed ...
    assert both["zc_grad_norm"] > 1.1 * global_norm  # ... not the global norm
    alone = scores(small_convnet, x, y, "grad_norm", "naswot")  # the unshared path gives the same numbers
    assert alone["zc_grad_norm"] == both["zc_grad_norm"]
    assert scores(small_convnet, x, y, "snip")["zc_snip"] == both["zc_snip"]


# ---- jacob_cov ---------------------------------------------------------------------------------------------


class Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x**2).sum(dim=(1, 2, 3)).unsqueeze(1)  # the Jacobian of image i is 2 x_i


def test_jacob_cov_formula_and_ordering():
    x, y = batch(n=12)
    corr = np.corrcoef(x.flatten(1).double().numpy())
    lam = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(lam + JACOB_COV_EPS) + 1 / (lam + JACOB_COV_EPS))
    decorrelated = scores(Square, x, y, "jacob_cov")["zc_jacob_cov"]
    assert decorrelated == pytest.approx(expected, rel=1e-9)
    identical = scores(lambda: nn.Sequential(nn.Flatten(), nn.Linear(36, 4)), x, y, "jacob_cov")["zc_jacob_cov"]
    assert identical < -1e5 < decorrelated  # a linear net has the same Jacobian for every image


def test_non_finite_scores_are_nan():
    x, y = batch()
    blown = lambda: nn.Sequential(nn.Flatten(), nn.Linear(36, 4), Scale(math.inf))  # noqa: E731
    out = scores(blown, x, y, "snip", "grad_norm", "jacob_cov", "synflow")
    assert all(math.isnan(out[f"zc_{p}"]) for p in ("snip", "grad_norm", "jacob_cov", "synflow"))
    flat = scores(lambda: nn.Sequential(nn.Flatten(), nn.Linear(36, 4), Scale(0.0)), x, y, "jacob_cov")
    assert math.isnan(flat["zc_jacob_cov"])  # zero Jacobians: no correlation


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


# ---- isolation and determinism ------------------------------------------------------------------------------


def test_caller_model_and_rng_are_untouched():
    model = small_convnet()
    before = copy.deepcopy(model.state_dict())
    x, y = batch()
    torch.manual_seed(1234)
    rng = torch.get_rng_state()
    scores(model, x, y)  # a factory that hands back the caller's own model
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running statistics
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_scores_are_deterministic_for_a_seed(data):
    arch = Architecture.parse(TINY)
    a = score_architecture(arch, data, seed=0, batch_size=16, threads=2)
    torch.manual_seed(99)  # the caller's RNG state plays no part
    b = score_architecture(arch, data, seed=0, batch_size=16, threads=2)
    c = score_architecture(arch, data, seed=1, batch_size=16, threads=2)
    names = [f"zc_{p}" for p in ZERO_COST_NAMES]
    assert all(math.isfinite(a[n]) for n in names)
    assert [a[n] for n in names] == [b[n] for n in names]
    assert all(a[n] != c[n] for n in ("zc_naswot", "zc_snip", "zc_grad_norm", "zc_jacob_cov"))
    assert torch.get_num_threads() == 1  # restored after each call


def test_zero_cost_batch_is_balanced_fixed_and_from_the_training_split(data):
    x, y = zero_cost_batch(data, batch_size=16, seed=0)
    assert x.dtype == torch.float32 and x.device.type == "cpu" and x.shape == (16, 1, 8, 8)
    assert torch.bincount(y, minlength=4).tolist() == [4, 4, 4, 4]
    x2, y2 = zero_cost_batch(data, batch_size=16, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = zero_cost_batch(data, batch_size=16, seed=1)
    assert not torch.equal(x, x3)
    train = data.normalize(data.train_x).flatten(1)
    assert all(bool((train == row).all(dim=1).any()) for row in x.flatten(1))
    val = data.normalize(data.val_x).flatten(1)
    assert not any(bool((val == row).all(dim=1).any()) for row in x.flatten(1))


@pytest.mark.parametrize(
    "kw",
    [
        {"in_channels": 6, "out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 6},
        {"in_channels": 6, "out_channels": 12, "kernel_size": 5, "stride": 2, "padding": 2, "groups": 3, "bias": False},
        {"in_channels": 4, "out_channels": 4, "kernel_size": 4, "padding": "same", "groups": 4, "dilation": 2},
        {"in_channels": 4, "out_channels": 8, "kernel_size": (3, 2), "stride": (2, 1), "groups": 2},
    ],
)
def test_synflow_grouped_conv_matches_conv2d(kw):
    conv = nn.Conv2d(**kw).double()
    x = torch.randn(2, kw["in_channels"], 9, 7, dtype=torch.float64)
    assert torch.allclose(_grouped_conv(conv, x), conv(x), atol=1e-12)
