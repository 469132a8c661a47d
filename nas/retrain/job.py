"""One candidate: ``nas.evaluate.evaluate`` on the test split (checkpoint every epoch) → export → metrics.json.

Training and measurement are the search's own (:func:`nas.evaluate.evaluate`); retraining adds only the
export (safetensors + arch.json, optional ONNX), the latency and its own metrics.json, written last: its
presence marks the candidate done. A diverging candidate is recorded as failed (status, reason), not raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.atomic import atomic_write_json
from nas.objectives import INTERFERENCE_METRICS
from nas.retrain.plan import CHECKPOINT_NAME, METRICS_NAME, Job, settings

if TYPE_CHECKING:
    from nas.data import DatasetSplits
    from nas.run import TrialRecord


def resume_note(job: Job) -> str | None:
    """Where a resumed job continues ('resuming after epoch 3 of 30: …'), or None when it starts afresh."""
    path = job.folder / CHECKPOINT_NAME
    if not job.resume or not path.is_file():
        return None
    from nas.train import load_checkpoint

    done = int(load_checkpoint(path)["epoch"])
    return f"resuming from its checkpoint after epoch {done} of {job.fidelity.epochs}: training continues with " \
           f"epoch {done + 1}"


def retrain_one(
    job: Job,
    data: DatasetSplits,
    *,
    progress: bool = False,
    epoch_callback: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """Train one candidate (checkpoint every epoch), measure it on the test split, export it, write metrics.json."""
    import torch

    from nas.complexity import LATENCY_REPEATS, LATENCY_WARMUP, latency_ms
    from nas.evaluate import evaluate
    from nas.retrain.export import ONNX_NAME, export_onnx, save_export

    started = time.perf_counter()
    c, folder = job.candidate, job.folder
    result = evaluate(c.arch, data, job.fidelity, seed=job.seed, device=job.device, threads=job.threads,
                      progress=progress, checkpoint_dir=folder, resume=job.resume, split="test",
                      epoch_callback=epoch_callback, keep_diverged=True)
    m = result.metrics
    base: dict[str, Any] = {
        "kind": c.kind, "source": c.source, "arch": m["arch"], "arch_hash": m["arch_hash"], "params": m["params"],
        "macs": m["macs"], "fidelity": job.fidelity.name, **settings(job, data), **proxy_columns(c.record),
        "device": job.device,
    }
    if result.diverged is not None:
        metrics = {**base, "status": "failed", "reason": f"diverged: {result.diverged}", "epochs": None,
                   "wall_s": time.perf_counter() - started}
        atomic_write_json(folder / METRICS_NAME, metrics)
        return metrics
    exporting = time.perf_counter()
    model = result.model.to("cpu").float().eval()
    shape = (data.in_channels, data.resolution, data.resolution)
    latency = latency_ms(model, torch.randn(1, *shape), repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP)
    save_export(model, c.arch, folder, in_channels=data.in_channels, num_classes=data.num_classes,
                resolution=data.resolution,
                extra={"dataset": data.name, "class_names": list(data.class_names), "mean": list(data.mean),
                       "std": list(data.std), "fidelity": job.fidelity.name, "seed": job.seed})
    onnx_diff = None
    if job.onnx:
        onnx_diff = export_onnx(model, folder / ONNX_NAME, data.normalize(data.test_x[:8].to("cpu")))
    metrics = {
        **base,
        "status": "complete",
        "reason": "",
        "test_accuracy": m["accuracy"],
        **{name: m[name] for name in INTERFERENCE_METRICS},
        **{k: m[k] for k in ("activations_finite", "interference_reason", "layers")},
        "latency_ms": latency,
        **{k: m[k] for k in ("epochs", "train_s", "train_images_per_s", "final_loss", "metrics_s")},
        "export": {"weights": "model.safetensors", "arch": "arch.json",
                   "onnx": ONNX_NAME if job.onnx else None, "onnx_max_abs_diff": onnx_diff},
        # evaluate's wall time (training summed over resumed sessions) plus this session's export
        "wall_s": m["wall_s"] + (time.perf_counter() - exporting),
    }
    atomic_write_json(folder / METRICS_NAME, metrics)
    return metrics


def proxy_columns(record: TrialRecord | None) -> dict[str, Any]:
    """What the search measured for the candidate (the proxy), as ``proxy_*`` columns; None without a record."""
    names = ("accuracy", *INTERFERENCE_METRICS)
    return {"trial_id": None if record is None else record.trial_id,
            "proxy_fidelity": None if record is None else record.fidelity,
            **{f"proxy_{n}": None if record is None else record.value(n) for n in names}}
