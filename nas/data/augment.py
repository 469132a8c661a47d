"""On-device batch augmentation: random crop with padding and random horizontal flip, in one gather.

Random offsets and flips are drawn from a CPU ``torch.Generator`` (so a run is reproducible and its
state checkpointable whatever the device) and applied to the batch where it lives, with no per-image loop.
"""

from __future__ import annotations

from typing import Literal

import torch

PadMode = Literal["reflect", "zeros"]


def default_padding(resolution: int) -> int:
    """Crop padding for a resolution: 2 below 32 px (4 at 32 px, resolution // 8 above), 1 for tiny images."""
    if resolution < 16:
        return 1
    if resolution < 32:
        return 2
    return max(4, resolution // 8)


def _source_index(offset: torch.Tensor, size: int, mode: PadMode) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Map padded-crop coordinates (N x size, may fall outside [0, size)) back to source pixels."""
    if mode == "reflect":
        idx = offset.abs()
        idx = torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)
        return idx, None
    valid = (offset >= 0) & (offset < size)
    return offset.clamp(0, size - 1), valid


def random_crop_flip(
    x: torch.Tensor,
    *,
    generator: torch.Generator,
    padding: int,
    hflip: bool,
    mode: PadMode = "reflect",
) -> torch.Tensor:
    """Return a randomly cropped (after padding by ``padding``) and, when ``hflip``, randomly flipped batch.

    ``x`` is N x C x H x W, uint8 or float, on any device; the result has the same shape, dtype and device.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a batch N x C x H x W, got {tuple(x.shape)}")
    if mode not in ("reflect", "zeros"):
        raise ValueError(f"mode must be 'reflect' or 'zeros', got {mode!r}")
    n, c, h, w = x.shape
    if mode == "reflect" and padding > min(h, w) - 1:
        raise ValueError(f"reflect padding {padding} needs images larger than {padding} px")
    if padding == 0 and not hflip:
        return x.clone()
    dy = torch.randint(-padding, padding + 1, (n, 1), generator=generator)
    dx = torch.randint(-padding, padding + 1, (n, 1), generator=generator)
    flip = torch.rand(n, 1, generator=generator) < 0.5 if hflip else torch.zeros(n, 1, dtype=torch.bool)
    dev = x.device
    dy, dx, flip = dy.to(dev, non_blocking=True), dx.to(dev, non_blocking=True), flip.to(dev, non_blocking=True)
    ry, rx = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows, row_ok = _source_index(dy + ry, h, mode)  # N x H
    cols, col_ok = _source_index(dx + torch.where(flip, w - 1 - rx, rx), w, mode)  # N x W; flip of the crop
    out = x[
        torch.arange(n, device=dev).view(n, 1, 1, 1),
        torch.arange(c, device=dev).view(1, c, 1, 1),
        rows.view(n, 1, h, 1),
        cols.view(n, 1, 1, w),
    ]
    if row_ok is not None and col_ok is not None:
        keep = row_ok.view(n, 1, h, 1) & col_ok.view(n, 1, 1, w)
        out = out * keep.to(out.dtype)
    return out
