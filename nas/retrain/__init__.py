"""Retraining winners at full fidelity: selection, training with resume, test metrics, export, proxy audit.

``select`` picks the candidates, ``plan`` turns the options into a checked Plan (nothing written), ``job``
retrains one candidate through ``nas.evaluate.evaluate`` and exports it, ``report`` writes retrain.csv and
report.md, ``drivers`` runs the jobs in-process or on Ray Tune, ``audit`` holds the rank correlations and
``export`` the safetensors/ONNX files and ``nas.load``. Output (``results/<run>/retrain/``, or
``results/baselines-<budget>/`` without a run)::

    <arch-hash>/checkpoint.pt      Trainer checkpoint, written at every epoch end (resume point)
    <arch-hash>/metrics.json       final metrics; its presence marks the candidate done (written last)
    <arch-hash>/model.safetensors  weights (no pickle) + arch.json: ``nas.load(folder)`` rebuilds the model
    <arch-hash>/model.onnx         with --onnx, checked against PyTorch with ONNX Runtime
    retrain.csv                    one row per candidate in the folder
    report.md                      table + proxy audit for the candidates at this fidelity

Nothing trained is ever overwritten: a finished candidate (metrics.json at the same fidelity, seed and data)
is skipped; a partial checkpoint needs ``--resume``; checkpoints are checked before anything trains.

Light to import; members load on first access. Calling the package retrains a run's winners:
``nas.retrain(run, top=3)`` is :func:`nas.api.retrain` (``nas/__init__.py`` makes it callable).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Candidate": "nas.retrain.select",
    "spread_indices": "nas.retrain.select",
    "spread_front": "nas.retrain.select",
    "RetrainOptions": "nas.retrain.plan",
    "Job": "nas.retrain.plan",
    "Plan": "nas.retrain.plan",
    "plan_retrain": "nas.retrain.plan",
    "retrain_one": "nas.retrain.job",
    "RetrainOutcome": "nas.retrain.drivers",
    "run_retrain": "nas.retrain.drivers",
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

