"""The "synthetic" data set: deterministic, learnable class patterns (oriented colour gratings, noise); for tests."""

from __future__ import annotations

import torch

from nas.data.splits import RawData
from nas.errors import DataError

DEFAULT_RESOLUTION = 16


def _class_params(num_classes: int, channels: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Per class: a grating orientation, a spatial frequency and a colour (channel weights)."""
    angle = torch.pi * torch.arange(num_classes, dtype=torch.float32) / num_classes
    frequency = 0.18 + 0.08 * (torch.arange(num_classes) % 2).float()  # cycles per pixel
    colour = 0.3 + 0.7 * torch.rand(num_classes, channels, generator=gen)
    return angle, frequency, colour


def _sample(
    params: tuple[torch.Tensor, ...], n: int, resolution: int, noise: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images: class gratings with a random phase and contrast, a random brightness and pixel noise."""
    angle, frequency, colour = params
    k = angle.shape[0]
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    coords = torch.arange(resolution, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    phase = 2 * torch.pi * torch.rand(n, 1, 1, generator=gen)
    a, f = angle[labels].view(n, 1, 1), frequency[labels].view(n, 1, 1)
    wave = torch.cos(2 * torch.pi * f * (xx * torch.cos(a) + yy * torch.sin(a)) + phase)  # N x R x R
    contrast = 0.25 + 0.15 * torch.rand(n, 1, 1, 1, generator=gen)
    brightness = 0.35 + 0.3 * torch.rand(n, 1, 1, 1, generator=gen)
    x = brightness + contrast * colour[labels].view(n, -1, 1, 1) * wave.unsqueeze(1)
    x = x + noise * torch.randn(x.shape, generator=gen)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).contiguous(), labels.long()


def load_synthetic(
    data_dir: object = None,
    resolution: int | None = None,
    *,
    train_size: int = 1000,
    test_size: int = 200,
    num_classes: int = 4,
    channels: int = 3,
    noise: float = 0.15,
    data_seed: int = 0,
) -> RawData:
    """Generate the synthetic set (same arguments, same images); ``data_dir`` is ignored."""
    res = DEFAULT_RESOLUTION if resolution is None else resolution
    if num_classes < 2 or channels < 1 or res < 4 or train_size < num_classes or test_size < 1:
        raise DataError(
            f"synthetic data needs num_classes >= 2, channels >= 1, resolution >= 4 and train_size >= num_classes "
            f"(got {num_classes}, {channels}, {res}, {train_size})."
        )
    from nas.data.folders import check_image_memory

    # generation holds float32 images (4 bytes a value) before they become uint8
    check_image_memory(train_size + test_size, channels, res, "synthetic data", bytes_per_value=5)
    gen = torch.Generator().manual_seed(data_seed)
    params = _class_params(num_classes, channels, gen)
    train_x, train_y = _sample(params, train_size, res, noise, gen)
    test_x, test_y = _sample(params, test_size, res, noise, gen)
    names = tuple(f"class{k}" for k in range(num_classes))
    return RawData(train_x, train_y, test_x, test_y, names, hflip=False)
