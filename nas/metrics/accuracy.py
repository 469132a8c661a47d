"""Top-1 accuracy and batched logits of a model on uint8 images (eval mode, no grad)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

Normalize = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block; restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def normalized_batches(
    x_uint8: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    normalize: Normalize,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(normalize(x) on device, channels_last if 4-D; y on device)`` in slices of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if y is not None and len(y) != len(x_uint8):
        raise ValueError(f"{len(x_uint8)} images but {len(y)} labels")
    for start in range(0, len(x_uint8), batch_size):
        xb = normalize(x_uint8[start : start + batch_size].to(device, non_blocking=True))
        if xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = None if y is None else y[start : start + batch_size].to(device, non_blocking=True)
        yield xb, yb


def predict_logits(
    model: nn.Module,
    x_uint8: torch.Tensor,
    *,
    normalize: Normalize,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Logits ``(N, num_classes)`` of ``model`` (already on ``device``) for uint8 images, on ``device``."""
    with eval_mode(model), torch.inference_mode():
        outs = [
            model(xb)
            for xb, _ in normalized_batches(x_uint8, normalize=normalize, batch_size=batch_size, device=device)
        ]
    if not outs:
        raise ValueError("predict_logits needs at least one image")
    return torch.cat(outs)


def accuracy(
    model: nn.Module,
    x_uint8: torch.Tensor,
    y: torch.Tensor,
    *,
    normalize: Normalize,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (already on ``device``) on uint8 images ``x_uint8`` with labels ``y``.

    Runs in eval mode without grad (the model's previous mode is restored), feeds channels_last
    batches and synchronises with the device once, at the end. A model whose logits contain NaN
    does not raise: accuracy is always a number.
    """
    if len(x_uint8) == 0:
        raise ValueError("accuracy needs at least one image")
    correct = torch.zeros((), dtype=torch.int64, device=device)
    with eval_mode(model), torch.inference_mode():
        for xb, yb in normalized_batches(x_uint8, y, normalize=normalize, batch_size=batch_size, device=device):
            assert yb is not None
            correct += (model(xb).argmax(dim=1) == yb).sum()
    return correct.item() / len(x_uint8)


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`accuracy`.

    Python binds a loaded submodule on its package under its own name, so after a direct
    ``import nas.metrics.accuracy`` the name ``nas.metrics.accuracy`` may be this module rather
    than the function; calling it still computes the accuracy.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        return accuracy(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
