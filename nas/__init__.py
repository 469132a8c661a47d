"""bottleneck-nas: neural-architecture search for tiny vision networks.

The API (``nas.api``): :func:`create_model`, :func:`sample`, ``search``, :func:`open_run` (a :class:`Run`
with ``.config``, ``.trials`` and ``.front()``), :func:`analyze`, ``retrain`` and :func:`load`. ``nas.search``
and ``nas.retrain`` are also the subpackages that implement them: calling one runs ``nas.api.search`` or
``nas.api.retrain`` (see ``nas.api.callable_package``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nas import retrain, search
from nas.api import Run, Sampled, analyze, callable_package, create_model, open_run, sample

if TYPE_CHECKING:
    from torch import nn

callable_package(search, "search")  # nas.search(budget=...) runs a search
callable_package(retrain, "retrain")  # nas.retrain(run, top=3) retrains its winners

__version__ = "0.1.0"
__all__ = ["Run", "Sampled", "__version__", "analyze", "create_model", "load", "open_run", "retrain", "sample",
           "search"]


def load(path: str | os.PathLike[str], *, device: str = "cpu") -> nn.Module:
    """Rebuild a model exported by `nas retrain` (its folder, or the model.safetensors next to arch.json).

    The weights are read with safetensors (no pickle); the model comes back in eval mode on ``device`` and
    takes images normalised as ``(x / 255 - mean) / std`` with the ``mean``/``std`` stored in arch.json.
    """
    from nas.retrain.export import load as _load

    return _load(path, device=device)
