"""Zero-cost proxies (NASWOT, synflow, snip, grad_norm, jacob_cov) of an untrained network on one seeded batch.

Every proxy scores a FRESH model built by the caller's factory under ``torch.manual_seed(seed)`` (inside
``torch.random.fork_rng``, so the caller's RNG state is untouched), so proxies never see each other's side
effects (gradients, BatchNorm statistics) nor the caller's model. Unless said otherwise the network runs in
train mode (BatchNorm uses batch statistics, as the reference's ``bn=True`` measures do) with dropout off.
Parameter-based proxies read only the weights of ``nn.Conv2d`` and ``nn.Linear`` layers, as the reference's
``get_layer_metric_array`` does (biases, norm affines, layer scales and activation scalars are not scored).
References: Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS" (github.com/SamsungLabs/
zero-cost-nas; the same code in automl/NASLib ``naslib/predictors/utils/pruners/measures``), and Mellor et
al. 2021 (github.com/BayesWatch/nas-without-training).

- ``naswot`` (Mellor et al. 2021, v2): every activation module's INPUT is coded c = [pre-activation > 0],
  all units of all activations concatenated (N_A of them); K_H[i, j] = N_A − d_H(c_i, c_j), computed per
  module as (A + s sᵀ) / 2 with s = 2c − 1 and summed; score = log|det K_H| (``slogdet``, float64). Identical
  codes for two images make K_H singular: log 0 = −inf, reported as NaN like every non-finite score.
  Activation modules: ``nas.models.activations.Activation`` and torch's elementwise activations (the
  reference hooks modules whose type name contains "ReLU"; here every σ of the space is hooked).
- ``synflow`` (Tanaka et al. 2020): on a deep COPY in float64 with every parameter and buffer replaced by its
  absolute value, R = Σ f(1) for an all-ones input of batch 1; score = Σ |θ ⊙ ∂R/∂θ|. Norm layers
  (BatchNorm, LayerNorm incl. the channel LayerNorm, GroupNorm) are replaced by identities and dropout is off:
  the reference builds its synflow copy with ``bn=False`` (no BatchNorm); here LayerNorm goes too, because a
  data-dependent normaliser divides out the scale that synflow measures, and an at-init BatchNorm in eval
  mode is the identity up to 1/sqrt(1 + eps) anyway, so both norm choices of the space are scored alike.
  Grouped (depthwise) convs run as unfold + one batched matmul: the same numbers, without float64's
  per-group loop (tens of times slower). Superlinear activations (relu2, starrelu) square the flow at every layer and
  overflow even float64 on most deep nets: NaN, a result to record, as the reference would give.
- ``snip`` (Lee et al. 2019): Σ |g ⊙ θ| with g = ∂L/∂θ of the mean cross-entropy L on the batch (the
  reference takes |∂L/∂mask| of a multiplicative all-ones mask, which is the same number).
- ``grad_norm``: Σ over Conv2d/Linear layers of ‖∂L/∂W‖₂ (Frobenius norm per layer, then summed), as the
  reference does -- not the global gradient norm. snip and grad_norm need the same gradient of the same
  seeded fresh model, so when both are asked for one backward pass serves both and each is charged half.
- ``jacob_cov`` (Mellor et al. 2021, v1): J = ∂(Σ outputs)/∂x by ONE backward over the batch (row i is
  image i's Jacobian of the summed logits); C = corrcoef(J) (float64); score = −Σ_λ (log(λ + k) + 1/(λ + k)),
  k = 1e-5, over the eigenvalues of C (``eigvalsh``: C is symmetric; the reference's ``eig`` may return
  complex noise). In train mode BatchNorm couples the images through the batch statistics, as in the
  reference, so the rows are per-image Jacobians up to O(1/N) cross terms. Weights need no gradient here.

Every proxy is higher-better in its natural form (the metric table of ``nas.objectives``); none is negated. Scores are
deterministic for a fixed seed, batch and torch thread count (float reductions depend on the thread count).
"""

from __future__ import annotations

import copy
import math
import time
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError
from nas.metrics.names import ZERO_COST_NAMES

if TYPE_CHECKING:
    from nas.data import DatasetSplits
    from nas.space import Architecture

JACOB_COV_EPS = 1e-5

_TORCH_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
)  # fmt: skip
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _is_activation(module: nn.Module) -> bool:
    from nas.models.activations import Activation

    return isinstance(module, (Activation, *_TORCH_ACTIVATIONS))


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _train_without_dropout(model: nn.Module) -> nn.Module:
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    return model


def _flat(t: torch.Tensor) -> torch.Tensor:
    """N x (everything else); a channels_last map is flattened as N x H x W x C (a view, no copy)."""
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        t = t.permute(0, 2, 3, 1)
    return t.reshape(t.shape[0], -1)


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """log|det K_H| of the Hamming kernel of the binary activation codes (see the module docstring)."""
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        s = _flat(inputs[0]).gt(0).float().mul_(2).sub_(1)  # ±1 codes: s sᵀ = A − 2 d_H
        kernel.add_((s @ s.T).double().add_(s.shape[1]).div_(2))

    handles = [m.register_forward_hook(hook) for m in model.modules() if _is_activation(m)]
    try:
        with torch.no_grad():
            _train_without_dropout(model)(x)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def _strip_norms(model: nn.Module) -> None:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _NORMS):
                setattr(module, name, nn.Identity())


def _grouped_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` by unfold and one batched matmul: float64 grouped convs otherwise loop over the groups."""
    pad = conv.padding
    if isinstance(pad, str):  # "valid", or "same" at stride 1: PyTorch puts the odd pixel right / bottom
        total = [d * (k - 1) if pad == "same" else 0 for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        x = F.pad(x, (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2))
        pad = (0, 0)
    n, _, h, w = x.shape
    size = [
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip((h, w), pad, conv.dilation, conv.kernel_size, conv.stride, strict=True)
    ]
    cols = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=pad, stride=conv.stride)
    cols = cols.view(n, conv.groups, -1, size[0] * size[1])
    weight = conv.weight.view(conv.groups, conv.out_channels // conv.groups, -1)
    out = torch.einsum("gok,ngkl->ngol", weight, cols).reshape(n, conv.out_channels, *size)
    return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ |θ ⊙ ∂R/∂θ| of an all-positive float64 copy without norm layers on an all-ones input (batch 1)."""
    net = copy.deepcopy(model)
    _strip_norms(net)
    net = net.double().eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.padding_mode == "zeros":
            m.forward = types.MethodType(_grouped_conv, m)  # type: ignore[method-assign]
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    for p in net.parameters():
        p.requires_grad_(True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    if ones.dim() == 4:
        ones = ones.contiguous(memory_format=torch.channels_last)
    net(ones).sum().backward()
    with torch.no_grad():
        terms = [(m.weight * m.weight.grad).abs().sum() for m in _weighted_layers(net) if m.weight.grad is not None]
        return float(torch.stack(terms).sum()) if terms else 0.0


def _loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, ∂L/∂weight) of every Conv2d/Linear layer for the mean cross-entropy L (train mode)."""
    _train_without_dropout(model).zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [(m.weight.detach(), m.weight.grad) for m in _weighted_layers(model) if m.weight.grad is not None]


def _snip_from(grads: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return float(sum((w.double() * g.double()).abs().sum() for w, g in grads)) if grads else 0.0


def _grad_norm_from(grads: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return float(sum(torch.linalg.vector_norm(g.double()) for _, g in grads)) if grads else 0.0


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ |∂L/∂θ ⊙ θ| over Conv2d/Linear weights for the cross-entropy of the batch."""
    return _snip_from(_loss_gradients(model, x, y))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ over Conv2d/Linear layers of ‖∂L/∂W‖₂ for the cross-entropy of the batch."""
    return _grad_norm_from(_loss_gradients(model, x, y))


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """−Σ (log(λ + k) + 1/(λ + k)) over the eigenvalues of the correlation matrix of per-image input Jacobians."""
    _train_without_dropout(model)
    for p in model.parameters():
        p.requires_grad_(False)
    xg = x.detach().clone().requires_grad_(True)
    out = model(xg)
    if not out.requires_grad:
        return math.nan  # the output does not depend on the input
    (jac,) = torch.autograd.grad(out, xg, torch.ones_like(out), allow_unused=True)
    if jac is None:
        return math.nan
    corr = torch.corrcoef(_flat(jac).double())
    if not bool(torch.isfinite(corr).all()):
        return math.nan  # an image whose Jacobian is constant has no correlation
    lam = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(lam + JACOB_COV_EPS) + 1.0 / (lam + JACOB_COV_EPS)).sum())


_FROM_GRADS: dict[str, Callable[[list[tuple[torch.Tensor, torch.Tensor]]], float]] = {
    "snip": _snip_from, "grad_norm": _grad_norm_from,
}  # fmt: skip
_PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "naswot": naswot, "synflow": synflow, "snip": snip, "grad_norm": grad_norm, "jacob_cov": jacob_cov,
}  # fmt: skip


def _check_proxies(proxies: Sequence[str]) -> list[str]:
    if isinstance(proxies, str):
        proxies = (proxies,)
    unknown = [p for p in proxies if p not in _PROXIES]
    if unknown:
        raise ConfigError(
            f"unknown zero-cost prox{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(ZERO_COST_NAMES)}."
        )
    return list(dict.fromkeys(proxies))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def zero_cost_batch(data: DatasetSplits, *, batch_size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed class-balanced batch (normalised float32 images, int64 labels) of the TRAINING split, on the CPU."""
    from nas.data import balanced_indices

    idx = balanced_indices(data.train_y, batch_size, seed).to(data.train_y.device)
    x = data.normalize(data.train_x[idx]).to("cpu", torch.float32)
    return x.contiguous(), data.train_y[idx].to("cpu", torch.int64)


def zero_cost_scores(
    model_factory: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    proxies: Sequence[str] = ZERO_COST_NAMES,
    seed: int = 0,
) -> dict[str, float]:
    """``{"zc_<name>": score, ..., "zc_<name>_s": seconds, ..., "zc_s": total seconds}`` for ``proxies``.

    Each proxy scores its own fresh ``model_factory()`` built under ``torch.manual_seed(seed)`` (a deep copy
    of it, so a factory that hands back a shared model leaves that model untouched), on ``x.device``, fed
    channels_last. A non-finite score is NaN. An unknown proxy name raises ``ConfigError``.
    """
    names = _check_proxies(proxies)
    x = x.detach()
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    y = y.detach().to(x.device)
    devices = [x.device] if x.device.type == "cuda" else []
    pair = set(_FROM_GRADS) <= set(names)  # snip and grad_norm share one backward pass
    grads: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    half = 0.0  # seconds charged to each of snip and grad_norm
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    with torch.random.fork_rng(devices=devices):
        for name in names:
            t0 = time.perf_counter()
            if pair and name in _FROM_GRADS and grads is not None:
                scores[name] = _finite(_FROM_GRADS[name](grads))
                seconds[name] = half + time.perf_counter() - t0
                continue
            torch.manual_seed(seed)
            model = copy.deepcopy(model_factory()).to(x.device)
            if x.dim() == 4:
                model = model.to(memory_format=torch.channels_last)
            try:
                if pair and name in _FROM_GRADS:
                    grads = _loss_gradients(model, x, y)
                    value = _FROM_GRADS[name](grads)
                else:
                    value = _PROXIES[name](model, x, y)
            except torch.linalg.LinAlgError:
                value = math.nan
            del model
            scores[name] = _finite(value)
            seconds[name] = time.perf_counter() - t0
            if pair and name in _FROM_GRADS:
                half = seconds[name] = seconds[name] / 2
    out = {f"zc_{name}": scores[name] for name in names}
    out.update({f"zc_{name}_s": seconds[name] for name in names})
    out["zc_s"] = sum(seconds.values())
    return out


def score_architecture(
    arch: Architecture,
    data: DatasetSplits,
    *,
    seed: int = 0,
    batch_size: int = 64,
    proxies: Sequence[str] = ZERO_COST_NAMES,
    threads: int | None = None,
) -> dict[str, float]:
    """Zero-cost scores of architecture ``arch`` built for ``data`` (``threads``: torch threads meanwhile)."""
    from nas.models import build_model

    names = _check_proxies(proxies)
    x, y = zero_cost_batch(data, batch_size=batch_size, seed=seed)

    def factory() -> nn.Module:
        return build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes,
                           resolution=data.resolution)  # fmt: skip

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return zero_cost_scores(factory, x, y, proxies=names, seed=seed)
    finally:
        torch.set_num_threads(before)
