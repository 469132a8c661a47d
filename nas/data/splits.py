"""DatasetSplits, class-balanced sampling and the seeded stratified validation slice."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nas.errors import DataError


@dataclass(frozen=True, eq=False)
class RawData:
    """What a source loader returns: train and test images (uint8 N x C x H x W) and labels (int64)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: tuple[str, ...]
    hflip: bool  # whether a horizontal flip keeps an image in its class


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Train / validation / test splits held as uint8 image tensors and int64 labels, plus their statistics.

    Images are contiguous uint8 ``N x C x H x W``; labels are int64. The validation split is a seeded,
    stratified slice of the training files; the test split is the data set's own test set, untouched.
    ``mean`` and ``std`` are per-channel statistics on the 0..1 scale, computed on all training files.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    in_channels: int
    resolution: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool
    _affine: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )  # normalisation constants per device, so normalize() never copies host to device per batch

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise DataError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes.")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise DataError(f"{self.name}: mean/std need one value per channel ({self.in_channels}).")
        if any(s <= 0 for s in self.std):
            raise DataError(f"{self.name}: a channel has zero standard deviation; the images are constant.")
        shape = (self.in_channels, self.resolution, self.resolution)
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != shape:
                got = f"{x.dtype} {tuple(x.shape)}"
                raise DataError(f"{self.name}: {split} images must be uint8 N x {shape}, got {got}.")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise DataError(f"{self.name}: {split} labels must be int64 of length {x.shape[0]}.")

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.train_x.device

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Return float32 ``(x / 255 - mean) / std`` for a uint8 batch (or a float batch on the 0..255 scale)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a batch N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        if x.device not in self._affine:
            mean = torch.tensor(self.mean, dtype=torch.float64).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float64).view(1, -1, 1, 1)
            shift, scale = (-mean / std).float(), (1.0 / (255.0 * std)).float()
            self._affine[x.device] = (shift.to(x.device), scale.to(x.device))
        shift, scale = self._affine[x.device]
        return torch.addcmul(shift, x.to(torch.float32), scale)

    def to(self, device: torch.device | str) -> DatasetSplits:
        """Return a copy whose tensors live on ``device`` (``self`` when they already do)."""
        device = torch.device(device)
        if self.train_x.device == device:
            return self
        moved = {f: getattr(self, f).to(device) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)

    def __repr__(self) -> str:
        return (
            f"DatasetSplits({self.name!r}, train={len(self.train_y)}, val={len(self.val_y)}, "
            f"test={len(self.test_y)}, {self.num_classes} classes, {self.in_channels}x{self.resolution}x"
            f"{self.resolution}, device={self.device})"
        )


_TENSOR_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def _class_counts(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    classes, counts = torch.unique(labels, sorted=True, return_counts=True)
    return classes, counts


def _take_per_class(labels: torch.Tensor, quota: torch.Tensor, classes: torch.Tensor, counts: torch.Tensor,
                    gen: torch.Generator) -> torch.Tensor:
    """Boolean mask selecting ``quota[k]`` random members of each class ``classes[k]`` (vectorised)."""
    total = labels.numel()
    perm = torch.randperm(total, generator=gen)
    permuted = labels[perm]
    order = torch.argsort(permuted, stable=True)
    grouped = perm[order]  # indices grouped by class, random order inside each class
    cls = torch.searchsorted(classes, permuted[order])
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total) - starts[cls]
    mask = torch.zeros(total, dtype=torch.bool)
    mask[grouped[rank < quota[cls]]] = True
    return mask


def _balanced_quota(counts: Sequence[int], n: int, gen: torch.Generator) -> list[int]:
    """Split ``n`` over classes as equally as their sizes allow; leftover singletons go to seeded random classes."""
    quota = [0] * len(counts)
    remaining = n
    open_ = [k for k, c in enumerate(counts) if c > 0]
    while remaining > 0 and open_:
        share = remaining // len(open_)
        if share == 0:
            for j in torch.randperm(len(open_), generator=gen)[:remaining].tolist():
                quota[open_[j]] += 1
            break
        for k in open_:
            take = min(share, counts[k] - quota[k])
            quota[k] += take
            remaining -= take
        open_ = [k for k in open_ if quota[k] < counts[k]]
    return quota


def balanced_indices(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Return ``n`` sorted indices into ``labels`` whose classes are as equal in number as possible.

    A class smaller than its share gives all its members and the rest is spread over the others.
    Deterministic for a seed; works on labels from any device (the result is a CPU LongTensor).
    """
    labels = labels.detach().to("cpu", torch.int64).flatten()
    if not 0 <= n <= labels.numel():
        raise DataError(f"cannot pick {n} images from a split of {labels.numel()}; ask for at most {labels.numel()}.")
    gen = torch.Generator().manual_seed(seed)
    classes, counts = _class_counts(labels)
    quota = torch.tensor(_balanced_quota(counts.tolist(), n, gen), dtype=torch.int64)
    mask = _take_per_class(labels, quota, classes, counts, gen)
    return mask.nonzero().flatten()


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (keep, held_out) with ``round(fraction * N)`` held out in proportion to class sizes.

    Every class keeps at least one member when it has one; both index tensors are sorted and disjoint.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"a held-out fraction must be in [0, 1), got {fraction}.")
    labels = labels.detach().to("cpu", torch.int64).flatten()
    total = labels.numel()
    gen = torch.Generator().manual_seed(seed)
    classes, counts = _class_counts(labels)
    exact = counts.double() * fraction
    cap = (counts - 1).clamp(min=0)  # every class keeps at least one member
    quota = torch.minimum(exact.floor().long(), cap)
    short = round(fraction * total) - int(quota.sum())
    if short > 0:  # largest remainders first, ties broken by a seeded shuffle
        jitter = torch.rand(len(counts), generator=gen, dtype=torch.float64) * 1e-9
        for k in torch.argsort(exact - exact.floor() + jitter, descending=True).tolist():
            if short == 0:
                break
            if quota[k] < cap[k]:
                quota[k] += 1
                short -= 1
    held = _take_per_class(labels, quota, classes, counts, gen)
    return (~held).nonzero().flatten(), held.nonzero().flatten()


def channel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (0..1 scale) of uint8 images, from value histograms."""
    channels = x.shape[1]
    hist = torch.zeros(channels, 256, dtype=torch.float64)
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk].to("cpu")
        for c in range(channels):
            hist[c] += torch.bincount(block[:, c].reshape(-1), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    total = hist.sum(1)
    mean = (hist * values).sum(1) / total
    var = (hist * values**2).sum(1) / total - mean**2
    std = var.clamp(min=0).sqrt()
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def resize_images(x: torch.Tensor, resolution: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 N x C x H x W images to ``resolution`` (bilinear, antialiased); no-op when already there.

    The output is checked against memory before it is allocated (a DataError with the numbers), and the
    float32 working copy is cut into chunks of at most ``chunk`` images and about 256 MiB.
    """
    from nas.data.folders import check_image_memory

    if x.shape[-2:] == (resolution, resolution):
        return x
    n, c = int(x.shape[0]), int(x.shape[1])
    check_image_memory(n, c, resolution, f"resizing to {resolution} px")
    chunk = max(1, min(chunk, (256 << 20) // (4 * c * max(resolution, *x.shape[-2:]) ** 2)))
    out = torch.empty((n, c, resolution, resolution), dtype=torch.uint8)
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk].float()
        y = F.interpolate(block, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def build_splits(name: str, raw: RawData, *, seed: int, val_fraction: float) -> DatasetSplits:
    """Carve the seeded stratified validation slice out of the training files and compute statistics."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    num_classes = len(raw.class_names)
    for split, y in (("train", raw.train_y), ("test", raw.test_y)):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            span = f"{int(y.min())}..{int(y.max())}"
            raise DataError(f"{name}: {split} labels must lie in [0, {num_classes}); got {span}.")
    mean, std = channel_stats(raw.train_x)
    keep, held = stratified_split(raw.train_y, val_fraction, seed)
    return DatasetSplits(
        name=name,
        train_x=raw.train_x[keep].contiguous(),
        train_y=raw.train_y[keep].contiguous(),
        val_x=raw.train_x[held].contiguous(),
        val_y=raw.train_y[held].contiguous(),
        test_x=raw.test_x.contiguous(),
        test_y=raw.test_y.contiguous(),
        num_classes=num_classes,
        in_channels=int(raw.train_x.shape[1]),
        resolution=int(raw.train_x.shape[-1]),
        class_names=tuple(raw.class_names),
        mean=mean,
        std=std,
        hflip=raw.hflip,
    )
