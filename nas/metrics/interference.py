"""Interference suite: streaming float64 statistics of probe-layer feature maps, and the metrics built on them.

For a probe layer, ``r_c(x)`` is the spatial mean of channel ``c`` for image ``x`` and
``M[k, c]`` the mean of ``r_c`` over probe images of class ``k``; ``K`` is the number of classes
present in the probe set (classes with no image are left out). Definitions (DESIGN.md, "Interference metrics"):

* **polysemanticity** — ``q[k,c] = M[k,c] - min_k M[k,c]``, ``w_c = sum_k q[k,c]``,
  ``p = q / w_c``, ``P_c = (exp(H(p_c)) - 1) / (K - 2)`` with ``H`` the entropy in nats; layer
  score ``sum_c w_c P_c / sum_c w_c`` over live channels. DESIGN.md divides by ``K - 1``, but
  ``q`` is 0 for the class with the lowest mean, so ``exp(H) <= K - 1`` and that scale tops out
  at ``(K - 2) / (K - 1)``; dividing by ``K - 2`` makes the scale span [0, 1] as intended: 0 when
  a channel answers one class, 1 when every class but the least active drives it alike. With
  ``K = 2`` a channel always answers one class and the score is 0.
* **dead_fraction** — share of channels with ``w_c ≈ 0``, precisely
  ``w_c <= DEAD_RTOL * sum_k |M[k,c]|`` (an all-zero channel is dead; so is a channel whose class
  means agree to ~9 significant digits, far below float32 resolution). Dead channels have no
  ``p`` and drop out of polysemanticity; a layer whose every channel is dead has NaN
  polysemanticity.
* **overlap** — ``u_k = (M[k] - mean_k M) / ||.||``, ``O`` = mean over ``k != j`` of
  ``(u_k . u_j)^2``, rescaled ``O' = (O - b) / (1 - b)`` with ``b = 1 / (K' - 1)^2``. ``O' = 0``
  for a regular simplex (the least overlap ``K'`` centred directions can have: frame-potential
  bound), ``1`` when all directions are colinear; forced above 0 when there are fewer channels
  than ``K' - 1``. A class whose mean equals the grand mean (``||M[k] - mean|| <= DEAD_RTOL *
  ||M[k]||``) has no direction and is left out; ``K'`` counts the classes kept. With ``K' < 3``
  the overlap is NaN: two centred class means are always antipodal, simplex and colinear at once.
* **outliers** — excess kurtosis ``n M4 / M2^2 - 3`` of every element of the layer's output,
  streamed with Chan/Pébay pairwise moment updates (float64, centred per batch); NaN for a
  constant layer.

Network scores are the mean over probe layers; a NaN layer makes the network score NaN. A layer
whose activations contain NaN or inf is marked non-finite and all its metrics are NaN; the suite
itself never raises on such values — call :func:`require_finite` to turn them into
:class:`nas.errors.NonFiniteMetric`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.errors import NonFiniteMetric
from nas.metrics.accuracy import eval_mode
from nas.metrics.names import METRIC_NAMES

DEAD_RTOL = 1e-9  # relative tolerance for "w_c ≈ 0" and "class mean = grand mean" (see module docstring)

_NAN = float("nan")


# --------------------------------------------------------------------------- metrics from class means


def polysemanticity_from_means(means: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Layer polysemanticity from class means ``M`` (K x C, K >= 2).

    Returns ``(score, P, dead)``: the ``w``-weighted mean of ``P_c`` over live channels (NaN if none
    is live), per-channel ``P_c`` (NaN for dead channels) and the dead-channel mask.
    """
    m = means.to(torch.float64)
    k = m.shape[0]
    if k < 2:
        raise ValueError(f"polysemanticity needs at least 2 classes, got {k}")
    q = m - m.min(dim=0).values
    w = q.sum(dim=0)
    dead = w <= DEAD_RTOL * m.abs().sum(dim=0)
    live = ~dead
    p = q[:, live] / w[live]
    entropy = -torch.special.xlogy(p, p).sum(dim=0)
    per_channel = torch.full_like(w, _NAN)
    per_channel[live] = torch.expm1(entropy) / max(1, k - 2)
    if not bool(live.any()):
        return _NAN, per_channel, dead
    w_live = w[live]
    return float((w_live * per_channel[live]).sum() / w_live.sum()), per_channel, dead


def overlap_from_means(means: torch.Tensor) -> float:
    """Rescaled overlap ``O'`` of the centred class-mean directions of ``M`` (K x C); NaN if fewer than 3."""
    m = means.to(torch.float64)
    if m.shape[0] == 0:
        return _NAN
    d = m - m.mean(dim=0)
    norms = d.norm(dim=1)
    keep = norms > DEAD_RTOL * m.norm(dim=1)
    kk = int(keep.sum())
    if kk < 3:
        return _NAN
    u = d[keep] / norms[keep, None]
    g2 = (u @ u.T).square()
    off = (g2.sum() - g2.diagonal().sum()) / (kk * (kk - 1))
    base = 1.0 / (kk - 1) ** 2
    return float((off - base) / (1.0 - base))


def excess_kurtosis_from_moments(n: float, m2: float, m4: float) -> float:
    """Excess kurtosis ``n M4 / M2^2 - 3`` from the count and centred power sums; NaN if undefined."""
    if n < 1 or not m2 > 0.0:
        return _NAN
    return n * (m4 / m2) / m2 - 3.0  # divided twice: m2 * m2 may underflow for tiny activations


# --------------------------------------------------------------------------- streaming accumulator


def _float64_copy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh 1-D float64 copy of ``x`` (N x C x H x W or N x C) in its memory order, and ``r`` (N x C).

    Channels-last maps are copied as N x H x W x C, so neither copy reorders memory; ``r`` (the
    spatial mean per image and channel) is taken from the copy before the caller centres it.
    """
    n, c = x.shape[0], x.shape[1]
    if x.dim() == 2:
        rows = x.to(torch.float64, memory_format=torch.contiguous_format, copy=True)
        return rows.view(-1), rows
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1).to(torch.float64, memory_format=torch.contiguous_format, copy=True)
        return nhwc.view(-1), nhwc.view(n, -1, c).mean(dim=1)
    nchw = x.to(torch.float64, memory_format=torch.contiguous_format, copy=True)
    return nchw.view(-1), nchw.view(n, c, -1).mean(dim=2)


class InterferenceAccumulator:
    """Streaming float64 statistics of one probe layer: per-class sums of ``r_c`` and pooled moments.

    ``update`` takes a feature map (N x C x H x W, or N x C) and int64 labels on the same device and
    never synchronises with it (pass ``num_classes`` to avoid one ``labels.max()`` per batch).
    """

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes
        self.channels: int | None = None
        self.class_sums: torch.Tensor | None = None  # K x C, float64
        self.class_counts: torch.Tensor | None = None  # K, float64
        self.n = 0  # number of activation values seen
        self.images = 0
        self.mean: torch.Tensor | None = None  # 0-d float64 tensors on the feature device
        self.m2: torch.Tensor | None = None
        self.m3: torch.Tensor | None = None
        self.m4: torch.Tensor | None = None

    def _ensure(self, c: int, k: int, device: torch.device) -> None:
        if self.class_sums is None:
            self.channels = c
            self.class_sums = torch.zeros(k, c, dtype=torch.float64, device=device)
            self.class_counts = torch.zeros(k, dtype=torch.float64, device=device)
            return
        assert self.class_counts is not None
        if c != self.channels:
            raise ValueError(f"feature map has {c} channels, earlier batches had {self.channels}")
        grow = k - self.class_sums.shape[0]
        if grow > 0:
            self.class_sums = torch.cat([self.class_sums, self.class_sums.new_zeros(grow, c)])
            self.class_counts = torch.cat([self.class_counts, self.class_counts.new_zeros(grow)])

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``features`` N x C x H x W (or N x C), ``labels`` N int64 class indices."""
        if features.dim() not in (2, 4):
            raise ValueError(f"probe feature map must be N x C x H x W or N x C, got shape {tuple(features.shape)}")
        nb_img, c = features.shape[0], features.shape[1]
        if labels.shape != (nb_img,):
            raise ValueError(f"{nb_img} feature rows but labels of shape {tuple(labels.shape)}")
        if nb_img == 0:
            return
        flat, r = _float64_copy(features.detach())
        labels = labels.to(device=flat.device, dtype=torch.int64)
        k = self.num_classes if self.num_classes is not None else int(labels.max()) + 1
        self._ensure(c, k, flat.device)
        assert self.class_sums is not None and self.class_counts is not None
        self.class_sums.index_add_(0, labels, r)
        self.class_counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
        self.images += nb_img

        # Centred power sums of this batch (in place on our copy; dot products fuse multiply and
        # sum), merged pairwise into the running moments (Chan et al. 1979; Pébay 2008).
        count = flat.numel()
        mb = flat.mean()
        d = flat.sub_(mb)
        d2 = d * d
        m2b = d2.sum()
        m3b = torch.dot(d2, d)
        m4b = torch.dot(d2, d2)
        if self.mean is None or self.m2 is None or self.m3 is None or self.m4 is None:
            self.n, self.mean, self.m2, self.m3, self.m4 = count, mb, m2b, m3b, m4b
            return
        na, nb = float(self.n), float(count)  # floats: na * na * nb overflows int64 for large layers
        ma, m2a, m3a, m4a = self.mean, self.m2, self.m3, self.m4
        n = na + nb
        delta = mb - ma
        dn = delta / n
        self.mean = ma + nb * dn
        self.m4 = (
            m4a
            + m4b
            + delta * dn**3 * na * nb * (na * na - na * nb + nb * nb)
            + 6.0 * dn * dn * (na * na * m2b + nb * nb * m2a)
            + 4.0 * dn * (na * m3b - nb * m3a)
        )
        self.m3 = m3a + m3b + delta * dn * dn * na * nb * (na - nb) + 3.0 * dn * (na * m2b - nb * m2a)
        self.m2 = m2a + m2b + delta * dn * na * nb
        self.n += count

    def class_means(self) -> torch.Tensor:
        """``M`` (K x C, float64, CPU) over the classes that have at least one image."""
        if self.class_sums is None or self.class_counts is None:
            return torch.zeros(0, 0, dtype=torch.float64)
        sums, counts = self.class_sums.cpu(), self.class_counts.cpu()
        present = counts > 0
        return sums[present] / counts[present, None]

    def compute(self, name: str = "") -> LayerStats:
        """Finish: the layer's metrics (NaN where undefined or non-finite)."""
        means = self.class_means()
        k, c = means.shape[0], (self.channels or 0)
        nonfinite_channels = int((~torch.isfinite(means)).any(dim=0).sum()) if k else 0
        moments = [float(t) if t is not None else _NAN for t in (self.mean, self.m2, self.m4)]
        finite = nonfinite_channels == 0 and (self.n == 0 or all(math.isfinite(v) for v in moments))
        stats = LayerStats(
            name=name, channels=c, classes=k, images=self.images, finite=finite, nonfinite_channels=nonfinite_channels
        )
        if not finite:
            stats.notes.append("non-finite activations")
            return stats
        if self.n == 0:
            stats.notes.append("no probe images")
            return stats
        stats.outliers = excess_kurtosis_from_moments(self.n, moments[1], moments[2])
        if math.isnan(stats.outliers):
            stats.notes.append("outliers undefined: constant layer")
        if k < 2:
            stats.notes.append(f"only {k} class in the probe set")
            return stats
        stats.polysemanticity, _, dead = polysemanticity_from_means(means)
        stats.dead_fraction = float(dead.to(torch.float64).mean())
        if math.isnan(stats.polysemanticity):
            stats.notes.append("polysemanticity undefined: every channel is dead")
        stats.overlap = overlap_from_means(means)
        if math.isnan(stats.overlap):
            stats.notes.append("overlap undefined: fewer than 3 classes with a class-mean direction")
        return stats


# --------------------------------------------------------------------------- results


@dataclass
class LayerStats:
    """Metrics of one probe layer; NaN where undefined (``notes`` says why)."""

    name: str
    channels: int
    classes: int
    images: int
    finite: bool
    nonfinite_channels: int = 0
    polysemanticity: float = _NAN
    overlap: float = _NAN
    outliers: float = _NAN
    dead_fraction: float = _NAN
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channels": self.channels,
            "classes": self.classes,
            "images": self.images,
            "finite": self.finite,
            "nonfinite_channels": self.nonfinite_channels,
            **{m: getattr(self, m) for m in METRIC_NAMES},
            "notes": list(self.notes),
        }


def _mean_over_layers(layers: Sequence[LayerStats], metric: str) -> float:
    values = [getattr(layer, metric) for layer in layers]
    return sum(values) / len(values) if values else _NAN  # NaN/inf propagate (math.fsum would raise on inf - inf)


@dataclass
class InterferenceResult(Mapping[str, Any]):
    """Network scores (mean over probe layers) and per-layer stats; reads like ``to_dict()``."""

    layers: list[LayerStats]
    polysemanticity: float = _NAN
    overlap: float = _NAN
    outliers: float = _NAN
    dead_fraction: float = _NAN

    @classmethod
    def from_layers(cls, layers: Sequence[LayerStats]) -> InterferenceResult:
        return cls(list(layers), **{m: _mean_over_layers(layers, m) for m in METRIC_NAMES})

    @property
    def finite(self) -> bool:
        """True when every probe layer's activations were finite (metrics may still be NaN if undefined)."""
        return all(layer.finite for layer in self.layers)

    def reason(self, names: Iterable[str] = METRIC_NAMES) -> str | None:
        """Why some of ``names`` is NaN/inf (one line), or None when all are finite numbers."""
        bad = [n for n in names if not math.isfinite(getattr(self, n))]
        if not bad:
            return None
        if not self.layers:
            return f"{', '.join(bad)} undefined: no probe layers"
        why = []
        for i, layer in enumerate(self.layers):
            if not all(math.isfinite(getattr(layer, n)) for n in bad):
                label = layer.name or f"probe {i}"
                extra = f" ({layer.nonfinite_channels} of {layer.channels} channels)" if not layer.finite else ""
                why.append(f"layer {label!r}: {'; '.join(layer.notes) or 'undefined'}{extra}")
        return f"{', '.join(bad)} not finite: " + " | ".join(why)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: getattr(self, m) for m in METRIC_NAMES}
        out["finite"] = self.finite
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter((*METRIC_NAMES, "finite", "layers"))

    def __len__(self) -> int:
        return len(METRIC_NAMES) + 2


def require_finite(result: InterferenceResult, names: Iterable[str]) -> None:
    """Raise :class:`NonFiniteMetric` naming the metric and the layer if any of ``names`` is NaN or inf."""
    names = list(names)
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown interference metric(s) {unknown}; known: {list(METRIC_NAMES)}")
    why = result.reason(names)
    if why is not None:
        raise NonFiniteMetric(
            f"{why}. The trial is recorded as failed with this reason; superlinear activations after "
            "BatchNorm are the usual cause of non-finite activations (try norm: layer)."
        )


# --------------------------------------------------------------------------- the suite


def _module_names(model: nn.Module, modules: Sequence[nn.Module]) -> list[str]:
    by_id = {id(m): name for name, m in model.named_modules()}
    return [by_id.get(id(m), f"probe{i}") for i, m in enumerate(modules)]


def interference_suite(
    model: nn.Module,
    probe_modules: Sequence[nn.Module],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int | None = None,
) -> InterferenceResult:
    """Run ``batches`` (float images, int64 labels; on the model's device) through ``model`` once.

    Forward hooks on ``probe_modules`` feed one :class:`InterferenceAccumulator` each (eval mode, no
    grad; hooks removed and the model's mode restored afterwards, also on error). Never raises on
    NaN/inf activations: the result is marked (``finite``) and :func:`require_finite` decides.
    ``num_classes`` (optional) saves one device sync per batch.
    """
    accs = [InterferenceAccumulator(num_classes) for _ in probe_modules]
    current: dict[str, torch.Tensor] = {}

    def make_hook(acc: InterferenceAccumulator) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"probe module returned {type(output).__name__}, expected a feature-map tensor")
            acc.update(output, current["labels"])

        return hook

    handles = [m.register_forward_hook(make_hook(acc)) for m, acc in zip(probe_modules, accs, strict=True)]
    try:
        with eval_mode(model), torch.inference_mode():
            for xb, yb in batches:
                current["labels"] = yb
                model(xb)
    finally:
        for h in handles:
            h.remove()
    names = _module_names(model, probe_modules)
    return InterferenceResult.from_layers([acc.compute(name) for acc, name in zip(accs, names, strict=True)])
