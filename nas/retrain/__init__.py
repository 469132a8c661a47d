"""Retraining winners at full fidelity: selection, training with resume, test metrics, export, proxy audit.

Light to import (the CLI imports ``nas.retrain.cli`` at start-up); members load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Candidate": "nas.retrain.select",
    "spread_indices": "nas.retrain.select",
    "spread_front": "nas.retrain.select",
    "RetrainOptions": "nas.retrain.runner",
    "Job": "nas.retrain.runner",
    "plan_retrain": "nas.retrain.runner",
    "retrain_one": "nas.retrain.runner",
    "run_retrain": "nas.retrain.runner",
    "load": "nas.retrain.export",
    "save_export": "nas.retrain.export",
    "export_onnx": "nas.retrain.export",
    "proxy_audit": "nas.retrain.audit",
    "correlate": "nas.retrain.audit",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas.retrain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
