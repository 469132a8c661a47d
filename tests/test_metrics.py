"""Tests of nas.metrics: accuracy and the interference suite on feature maps with known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

from nas.errors import NonFiniteMetric
from nas.metrics import (
    METRIC_DESCRIPTIONS,
    METRIC_DIRECTIONS,
    METRIC_NAMES,
    InterferenceAccumulator,
    InterferenceResult,
    accuracy,
    interference_suite,
    predict_logits,
    require_finite,
)
from nas.metrics.interference import overlap_from_means, polysemanticity_from_means

torch.set_num_threads(1)


class Tap(nn.Module):
    """A model that passes its input through one probe module (so batches *are* feature maps)."""

    def __init__(self) -> None:
        super().__init__()
        self.tap = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tap(x)


def make_fmap(means: torch.Tensor, per_class: int, hw: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps whose spatial mean, for every image of class k, is exactly ``means[k]`` (K x C).

    Each image is its class mean plus a ±0.5 checkerboard (zero spatial mean), so activation values
    vary while the class means stay as given.
    """
    k = means.shape[0]
    y = torch.arange(k).repeat_interleave(per_class)
    board = (torch.arange(hw)[:, None] + torch.arange(hw)[None, :]) % 2 - 0.5
    x = means[y][:, :, None, None] + board.to(means.dtype)
    return x.float(), y


def run_suite(x: torch.Tensor, y: torch.Tensor, batch: int | None = None, **kw: object) -> InterferenceResult:
    model = Tap()
    step = batch or len(x)
    batches = [(x[i : i + step], y[i : i + step]) for i in range(0, len(x), step)]
    return interference_suite(model, [model.tap], batches, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- polysemanticity / dead


def test_one_class_per_channel_is_monosemantic() -> None:
    g = torch.Generator().manual_seed(0)
    k = 5
    means = torch.diag(0.5 + torch.rand(k, generator=g))  # channel c active only for class c
    means = torch.cat([means, means[:, 2:3] * 3], dim=1)  # an extra channel for class 2 only
    x, y = make_fmap(means.double(), per_class=7)
    layer = run_suite(x, y).layers[0]
    assert abs(layer.polysemanticity) < 1e-12
    assert layer.dead_fraction == 0.0
    assert layer.finite and layer.classes == k and layer.channels == k + 1


def test_polysemanticity_known_values() -> None:
    # K = 3. channel 0: q = (0, 1, 1) -> p = (0, .5, .5), exp(H) = 2, P = (2 - 1) / (3 - 2) = 1, w = 2.
    # channel 1: q = (0, 0, 2) -> P = 0, w = 2.  channel 2: constant -> dead.
    means = torch.tensor([[0.0, 1.0, 5.0], [1.0, 1.0, 5.0], [1.0, 3.0, 5.0]])
    x, y = make_fmap(means, per_class=4)
    result = run_suite(x, y)
    assert result.polysemanticity == pytest.approx((2 * 1.0 + 2 * 0.0) / 4, abs=1e-12)
    assert result.dead_fraction == pytest.approx(1 / 3)
    _, per_channel, dead = polysemanticity_from_means(means.double())
    assert per_channel[0] == pytest.approx(1.0) and per_channel[1] == pytest.approx(0.0)
    assert math.isnan(per_channel[2]) and dead.tolist() == [False, False, True]


@pytest.mark.parametrize("k", [3, 10, 100])
def test_polysemanticity_ceiling_when_all_classes_but_one_alike(k: int) -> None:
    # q is 0 for the lowest class, so exp(H) <= K - 1; dividing by K - 2 puts that maximum at exactly 1.
    means = torch.ones(k, 6)
    means[0] = 0.0
    score, _, dead = polysemanticity_from_means(means.double())
    assert score == pytest.approx(1.0, abs=1e-12)
    assert not dead.any()


def test_identical_class_means_are_dead() -> None:
    g = torch.Generator().manual_seed(1)
    row = torch.randn(1, 8, generator=g, dtype=torch.float64)
    x, y = make_fmap(row.repeat(4, 1), per_class=5)
    result = run_suite(x, y)
    assert result.dead_fraction == 1.0
    assert math.isnan(result.polysemanticity) and math.isnan(result.overlap)
    assert math.isfinite(result.outliers) and result.finite
    assert "every channel is dead" in " ".join(result.layers[0].notes)
    with pytest.raises(NonFiniteMetric, match="dead"):
        require_finite(result, ["polysemanticity"])
    require_finite(result, ["outliers", "dead_fraction"])


def test_all_zero_channel_is_dead_and_tiny_channel_is_alive() -> None:
    means = torch.tensor([[0.0, 1e-30, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    _, _, dead = polysemanticity_from_means(means)
    assert dead.tolist() == [True, False, False]


# --------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("k", [3, 4, 10])
def test_overlap_regular_simplex_is_zero(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    q, _ = torch.linalg.qr(torch.randn(16, k, generator=g, dtype=torch.float64))  # 16 x k orthonormal columns
    means = 3.0 * q.T + torch.randn(16, generator=g, dtype=torch.float64)  # scaled, rotated, shifted I_k
    assert abs(overlap_from_means(means)) < 1e-12
    x, y = make_fmap(means, per_class=3)
    assert abs(run_suite(x, y).overlap) < 1e-9


def test_overlap_identical_directions_is_one() -> None:
    v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    offset = torch.tensor([10.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    means = torch.tensor([0.0, 1.0, 3.0, -2.0])[:, None].double() * v + offset  # K = 4, colinear
    assert overlap_from_means(means) == pytest.approx(1.0, abs=1e-12)
    x, y = make_fmap(means, per_class=3)
    assert run_suite(x, y).overlap == pytest.approx(1.0, abs=1e-9)


def test_overlap_two_classes_undefined_and_range() -> None:
    # Two centred class means are always antipodal (a simplex and colinear at once): NaN.
    assert math.isnan(overlap_from_means(torch.tensor([[0.0, 1.0], [2.0, 5.0]])))
    # A class at the grand mean has no direction; it is left out (here leaving 2 -> NaN).
    assert math.isnan(overlap_from_means(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])))
    g = torch.Generator().manual_seed(3)
    for c in (2, 9, 64):
        value = overlap_from_means(torch.randn(10, c, generator=g, dtype=torch.float64))
        assert -1e-12 <= value <= 1 + 1e-12
    # 10 classes in 2 channels cannot form a simplex: overlap is forced well above 0.
    assert overlap_from_means(torch.randn(10, 2, generator=g, dtype=torch.float64)) > 0.2


# --------------------------------------------------------------------------- outliers


def _kurtosis(x: torch.Tensor) -> float:
    acc = InterferenceAccumulator(num_classes=1)
    acc.update(x, torch.zeros(len(x), dtype=torch.int64))
    return acc.compute().outliers


def test_outliers_gaussian_and_laplace() -> None:
    g = torch.Generator().manual_seed(0)
    shape = (64, 16, 64, 64)  # 4.2M values: standard error of the kurtosis ~0.0025 (Gaussian)
    assert abs(_kurtosis(torch.randn(shape, generator=g))) < 0.05
    u = torch.rand(shape, generator=g, dtype=torch.float64) - 0.5
    laplace = -torch.sign(u) * torch.log1p(-2 * u.abs())
    assert _kurtosis(5.0 + 2.0 * laplace.float()) == pytest.approx(3.0, abs=0.15)
    assert _kurtosis(torch.rand(shape, generator=g)) == pytest.approx(-1.2, abs=0.02)
    assert math.isnan(_kurtosis(torch.full((4, 3, 2, 2), 7.0)))


# --------------------------------------------------------------------------- streaming


def _close(a: float, b: float, tol: float = 1e-10) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def test_streaming_equals_one_batch_and_reference() -> None:
    g = torch.Generator().manual_seed(7)
    k, n = 5, 240
    y = torch.randint(0, k, (n,), generator=g)
    shift = torch.randn(k, 6, generator=g)
    x = 100.0 + shift[y][:, :, None, None] + torch.randn(n, 6, 5, 5, generator=g) ** 3
    whole = run_suite(x, y)
    sizes = [1, 13, 50, 7, 129, 40]  # the first batch holds one class only: K grows while streaming
    batches, start = [], 0
    for s in sizes:
        batches.append((x[start : start + s], y[start : start + s]))
        start += s
    model = Tap()
    streamed = interference_suite(model, [model.tap], batches)
    known_k = run_suite(x, y, batch=17, num_classes=k)
    for other in (streamed, known_k):
        for name in METRIC_NAMES:
            assert _close(getattr(whole, name), getattr(other, name)), name
    # Against a direct float64 computation.
    xd = x.double().numpy()
    r = xd.mean(axis=(2, 3))
    m = np.stack([r[y.numpy() == c].mean(axis=0) for c in range(k)])
    assert _close(whole.outliers, float(stats.kurtosis(xd.ravel(), fisher=True, bias=True)))
    assert _close(whole.polysemanticity, polysemanticity_from_means(torch.from_numpy(m))[0])
    assert _close(whole.overlap, overlap_from_means(torch.from_numpy(m)))


def test_two_dim_features_and_bad_shapes() -> None:
    means = torch.eye(4, dtype=torch.float64)
    y = torch.arange(4).repeat(3)
    result = run_suite(means[y].float(), y)
    assert abs(result.polysemanticity) < 1e-12 and abs(result.overlap) < 1e-12
    acc = InterferenceAccumulator()
    with pytest.raises(ValueError, match="N x C"):
        acc.update(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.int64))
    acc.update(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="channels"):
        acc.update(torch.zeros(2, 5), torch.zeros(2, dtype=torch.int64))


# --------------------------------------------------------------------------- hooks, NaN, result


def test_hooks_removed_and_mode_restored_also_on_error() -> None:
    model = Tap()
    model.train()
    x, y = make_fmap(torch.eye(3, dtype=torch.float64), per_class=2)
    interference_suite(model, [model.tap], [(x, y)])
    assert not model.tap._forward_hooks and model.training

    def failing() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield x, y
        raise RuntimeError("data loader broke")

    with pytest.raises(RuntimeError, match="broke"):
        interference_suite(model, [model.tap], failing())
    assert not model.tap._forward_hooks and model.training


class TwoTaps(nn.Module):
    """Probe 'clean' sees the input; probe 'broken' sees it with one NaN (and one inf)."""

    def __init__(self) -> None:
        super().__init__()
        self.clean = nn.Identity()
        self.broken = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.clean(x)
        b = a.clone()
        b[0, 1, 0, 0] = float("nan")
        b[1, 2, 0, 0] = float("inf")
        return self.broken(b)


def test_nan_feature_map_is_marked_not_raised() -> None:
    model = TwoTaps()
    x, y = make_fmap(torch.eye(4, dtype=torch.float64), per_class=3)
    result = interference_suite(model, [model.clean, model.broken], [(x, y)])
    assert not result.finite
    clean, broken = result.layers
    assert clean.finite and abs(clean.polysemanticity) < 1e-12
    assert not broken.finite and broken.nonfinite_channels == 2
    assert all(math.isnan(getattr(broken, m)) for m in METRIC_NAMES)
    assert math.isnan(result.polysemanticity)
    with pytest.raises(NonFiniteMetric, match="broken") as info:
        require_finite(result, ["polysemanticity"])
    assert "non-finite activations" in str(info.value) and "2 of 4 channels" in str(info.value)
    with pytest.raises(ValueError, match="unknown"):
        require_finite(result, ["accuracy"])


def test_result_reads_as_mapping_and_serialises() -> None:
    x, y = make_fmap(torch.eye(3, dtype=torch.float64), per_class=2)
    result = run_suite(x, y)
    d = result.to_dict()
    assert set(METRIC_NAMES) <= set(d) and isinstance(d["layers"], list) and d["finite"] is True
    assert dict(result) == d and result["overlap"] == result.overlap
    assert all(isinstance(d[m], float) for m in METRIC_NAMES)
    assert json.loads(json.dumps(d))["layers"][0]["name"] == "tap"
    require_finite(result, METRIC_NAMES)


def test_metric_names_are_torch_free() -> None:
    assert METRIC_NAMES == ("polysemanticity", "overlap", "outliers", "dead_fraction")
    assert all(METRIC_DIRECTIONS[m] == "minimize" and METRIC_DESCRIPTIONS[m] for m in METRIC_NAMES)
    code = "import sys, nas.metrics; assert 'torch' not in sys.modules; print(len(nas.metrics.METRIC_NAMES))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"


# --------------------------------------------------------------------------- accuracy


class OneHot(nn.Module):
    """Reads the label written in pixel (0, 0) and returns it one-hot (shifted by ``shift``)."""

    def __init__(self, k: int, shift: int = 0) -> None:
        super().__init__()
        self.k, self.shift = k, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert not self.training
        return F.one_hot((x[:, 0, 0, 0].round().long() + self.shift) % self.k, self.k).float()


def test_accuracy_of_one_hot_model() -> None:
    k, n = 10, 53
    y = torch.arange(n) % k
    x = y.to(torch.uint8)[:, None, None, None].expand(n, 1, 3, 3).clone()
    model = OneHot(k)
    model.train()
    assert accuracy(model, x, y, normalize=lambda t: t.float(), batch_size=8) == 1.0
    assert model.training
    assert accuracy(OneHot(k, shift=1), x, y, normalize=lambda t: t.float()) == 0.0
    logits = predict_logits(model, x, normalize=lambda t: t.float(), batch_size=7)
    assert logits.shape == (n, k) and torch.equal(logits.argmax(1), y)
    # The submodule nas.metrics.accuracy may shadow the function on the package; it is callable too.
    module = sys.modules["nas.metrics.accuracy"]
    assert module(model, x, y, normalize=lambda t: t.float()) == 1.0  # type: ignore[operator]


# --------------------------------------------------------------------------- a tiny real CNN


def test_tiny_cnn_two_probes() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    ).to(memory_format=torch.channels_last)
    n, k = 80, 10
    y = torch.arange(n) % k
    x = torch.randn(n, 1, 12, 12) + y[:, None, None, None] * 0.3
    batches = [(x[i : i + 32].contiguous(memory_format=torch.channels_last), y[i : i + 32]) for i in range(0, n, 32)]
    result = interference_suite(model, [model[0], model[1]], batches, num_classes=k)
    assert result.finite and [layer.name for layer in result.layers] == ["0", "1"]
    assert [layer.channels for layer in result.layers] == [8, 16]
    assert all(layer.images == n and layer.classes == k for layer in result.layers)
    assert 0.0 < result.polysemanticity <= 1.0
    assert 0.0 <= result.overlap <= 1.0 and 0.0 <= result.dead_fraction <= 1.0
    assert math.isfinite(result.outliers)
    assert result.polysemanticity == pytest.approx(sum(la.polysemanticity for la in result.layers) / 2)
    require_finite(result, METRIC_NAMES)
