"""Evaluate one architecture: build, train at a fidelity, measure accuracy, interference and complexity.

`nas eval` and every search trial call :func:`evaluate`; retraining calls it with the
test split, a checkpoint folder (resume) and ``keep_diverged``. The probe set is fixed
(class-balanced, seed 0, from the validation split) so that interference numbers of
different trials are comparable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.data import DatasetSplits, balanced_indices
from nas.errors import Diverged
from nas.fidelity import Fidelity
from nas.space.architecture import Architecture

PROBE_SEED = 0  # one probe set for every trial of every run on a data set
VAL_SEED = 0


@dataclass
class Evaluation:
    """Everything measured for one trained architecture.

    ``diverged`` is set only by ``evaluate(..., keep_diverged=True)`` when training diverged; ``metrics``
    then hold what was measured before training (architecture, params, MACs, fidelity, seed, wall_s).
    """

    arch: Architecture
    model: torch.nn.Module
    metrics: dict[str, Any]
    diverged: Diverged | None = None


def measure_trained(
    model: torch.nn.Module,
    data: DatasetSplits,
    fidelity: Fidelity,
    *,
    device: torch.device,
    split: str = "val",
) -> dict[str, Any]:
    """Accuracy on the chosen split and the interference suite on the fixed probe set, in one pass where they overlap.

    The probe images (balanced, seed 0, from the validation split) mostly lie inside the accuracy set
    (balanced, seed 0, same split): their logits come from the suite's own forward pass, and only the
    remaining accuracy images get a second, plain pass.
    """
    from nas.metrics import accuracy, interference_suite, normalized_batches

    started = time.perf_counter()
    eval_x, eval_y = (data.val_x, data.val_y) if split == "val" else (data.test_x, data.test_y)
    limit = fidelity.val_images if split == "val" else None
    acc_idx = _indices(eval_y, limit, VAL_SEED)
    probe_idx = _indices(data.val_y, fidelity.probe_images, PROBE_SEED)
    px, py = data.val_x[probe_idx.to(data.val_x.device)], data.val_y[probe_idx.to(data.val_y.device)]

    correct: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []

    def keep_predictions(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
        correct.append(output.argmax(dim=1) == labels[-1])

    def probe_batches() -> Any:
        for xb, yb in normalized_batches(px, py, normalize=data.normalize, batch_size=fidelity.eval_batch_size,
                                         device=device):
            labels.append(yb)
            yield xb, yb

    handle = model.register_forward_hook(keep_predictions)
    try:
        suite = interference_suite(model, model.probe_modules(), probe_batches(), num_classes=data.num_classes)
    finally:
        handle.remove()
    shared = torch.isin(acc_idx, probe_idx) if split == "val" else torch.zeros(len(acc_idx), dtype=torch.bool)
    in_acc = torch.isin(probe_idx, acc_idx) if split == "val" else torch.zeros(len(probe_idx), dtype=torch.bool)
    n_correct = int(torch.cat(correct).cpu()[in_acc].sum()) if correct else 0
    rest = acc_idx[~shared]
    if len(rest):
        rx, ry = eval_x[rest.to(eval_x.device)], eval_y[rest.to(eval_y.device)]
        n_correct += round(accuracy(model, rx, ry, normalize=data.normalize, batch_size=fidelity.eval_batch_size,
                                    device=device) * len(rest))
    return {
        "accuracy": n_correct / len(acc_idx),
        "accuracy_split": split,
        **{k: suite[k] for k in ("polysemanticity", "overlap", "outliers", "dead_fraction")},
        "activations_finite": suite.finite,
        "interference_reason": suite.reason() or "",
        "layers": suite["layers"],
        "metrics_s": time.perf_counter() - started,
    }


def _indices(labels: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """A fixed class-balanced subset (all indices when ``n`` is None or covers the split), on the CPU."""
    if n is None or n >= len(labels):
        return torch.arange(len(labels))
    return balanced_indices(labels.cpu(), n, seed).cpu()


def evaluate(
    arch: Architecture,
    data: DatasetSplits,
    fidelity: Fidelity,
    *,
    seed: int,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
    compile: bool = False,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    checkpoint_every_s: float | None = None,
    split: str = "val",
    epoch_callback: Any = None,
    keep_diverged: bool = False,
) -> Evaluation:
    """Train ``arch`` (absolute widths) at ``fidelity`` and measure it.

    A non-finite loss raises ``Diverged``, or with ``keep_diverged`` returns an Evaluation carrying it.
    ``wall_s`` is the whole evaluation, its training summed over the sessions a checkpoint resumed.
    """
    from nas.complexity import count_macs
    from nas.models import build_model
    from nas.train import Trainer

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes, resolution=data.resolution)
    params = sum(p.numel() for p in model.parameters())
    example = torch.zeros(1, data.in_channels, data.resolution, data.resolution)
    macs, _, _ = count_macs(model, example)
    metrics: dict[str, Any] = {"arch": arch.to_string(), "arch_hash": arch.semantic_hash, "params": params,
                               "macs": macs, "fidelity": fidelity.name, "seed": seed}
    trainer = Trainer(device=device, threads=threads, progress=progress, compile=compile)
    fit_started = time.perf_counter()
    try:
        result = trainer.fit(model, data, fidelity, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume,
                             epoch_callback=epoch_callback, checkpoint_every_s=checkpoint_every_s)
    except Diverged as exc:
        if not keep_diverged:
            raise
        metrics["wall_s"] = time.perf_counter() - started
        return Evaluation(arch=arch, model=model, metrics=metrics, diverged=exc)
    fit_ended = time.perf_counter()
    measured = measure_trained(model, data, fidelity, device=trainer.device, split=split)
    metrics.update({
        "epochs": result.epochs,
        **measured,
        "train_images_per_s": result.images_per_s,
        "train_s": result.wall_s,
        "final_loss": result.final_loss,
        # training over every session (result.wall_s), plus this session's set-up and measurement
        "wall_s": result.wall_s + (fit_started - started) + (time.perf_counter() - fit_ended),
    })
    return Evaluation(arch=arch, model=model, metrics=metrics)
