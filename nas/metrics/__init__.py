"""Accuracy and the interference suite; metric names are torch-free, the rest is imported lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.metrics.names import METRIC_DESCRIPTIONS, METRIC_DIRECTIONS, METRIC_NAMES, ZERO_COST_NAMES

if TYPE_CHECKING:
    from nas.metrics.accuracy import accuracy, normalized_batches, predict_logits
    from nas.metrics.interference import (
        InterferenceAccumulator,
        InterferenceResult,
        LayerStats,
        interference_suite,
        require_finite,
    )
    from nas.metrics.zero_cost import (
        score_architecture,
        zero_cost_batch,
        zero_cost_scores,
    )

__all__ = [
    "METRIC_DESCRIPTIONS",
    "METRIC_DIRECTIONS",
    "METRIC_NAMES",
    "ZERO_COST_NAMES",
    "InterferenceAccumulator",
    "InterferenceResult",
    "LayerStats",
    "accuracy",
    "interference_suite",
    "normalized_batches",
    "predict_logits",
    "require_finite",
    "score_architecture",
    "zero_cost_batch",
    "zero_cost_scores",
]

_LAZY = {
    "accuracy": "nas.metrics.accuracy",
    "normalized_batches": "nas.metrics.accuracy",
    "predict_logits": "nas.metrics.accuracy",
    "InterferenceAccumulator": "nas.metrics.interference",
    "InterferenceResult": "nas.metrics.interference",
    "LayerStats": "nas.metrics.interference",
    "interference_suite": "nas.metrics.interference",
    "require_finite": "nas.metrics.interference",
    "score_architecture": "nas.metrics.zero_cost",
    "zero_cost_batch": "nas.metrics.zero_cost",
    "zero_cost_scores": "nas.metrics.zero_cost",
}


def __getattr__(name: str) -> Any:
    """Import torch-using members on first access, so ``import nas.metrics`` stays instant."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas.metrics' has no attribute {name!r}")
    import importlib
    import sys

    importlib.import_module(module)
    # Loading a submodule binds it on the package under its own name, which shadows the function
    # ``accuracy`` with the module ``nas.metrics.accuracy``; bind every loaded member afresh.
    for member, mod in _LAZY.items():
        if mod in sys.modules:
            globals()[member] = getattr(sys.modules[mod], member)
    return globals()[name]
