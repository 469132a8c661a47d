"""bottleneck-nas: neural-architecture search for tiny vision networks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__version__ = "0.1.0"


def load(path: str | os.PathLike[str], *, device: str = "cpu") -> nn.Module:
    """Rebuild a model exported by `nas retrain` (its folder, or the model.safetensors next to arch.json).

    The weights are read with safetensors (no pickle); the model comes back in eval mode on ``device`` and
    takes images normalised as ``(x / 255 - mean) / std`` with the ``mean``/``std`` stored in arch.json.
    """
    from nas.retrain.export import load as _load

    return _load(path, device=device)
