"""The Ray Tune trial function: evaluate one proposed architecture and report every metric.

It never raises for a trial's own failure (divergence, non-finite metrics, out of memory,
a bug in a block): it reports ``status: failed`` with the reason, so the search goes on
and the driver tells the study. Only the driver writes the run store's final records;
the trial keeps its own log in ``trials/<id>/trial.log``.

Training checkpoints itself every ``CHECKPOINT_EVERY_S`` seconds into ``trials/<id>/resume/<arch hash>/``
(``RunStore.resume_dir``), so a trial cut short (a killed run, a lost session) continues from there when the
run is resumed, bit-identical to an uninterrupted one; the driver removes the folder when it writes the trial's
record.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from nas.run import RunStore

CHECKPOINT_EVERY_S = 300.0  # ~18 MB per 1.5M-parameter net (weights + AdamW state); well under 1 s to write


def trial_log(run_dir: str, trial_id: int) -> logging.Logger:
    """The logger writing ``trials/<id>/trial.log`` of this run (a worker process may serve several runs)."""
    folder = RunStore(run_dir).trial_dir(trial_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = str((folder / "trial.log").resolve())
    logger = logging.getLogger(f"nas.trial.{trial_id}")
    logger.setLevel(logging.INFO)
    for old in list(logger.handlers):
        if getattr(old, "baseFilename", None) != path:
            logger.removeHandler(old)
            old.close()
    if not logger.handlers:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def resume_folder(config: dict[str, Any], trial_id: int, arch_hash: str) -> Path:
    """The folder this trial checkpoints into, holding the checkpoint of a cut-short run of it if one was left.

    Folders of other architectures under the trial are removed (a resumed search may give a trial number another
    network); a search's re-queued trial (``resume_from``: the cut trial's number) takes over that one's folder.
    """
    store = RunStore(config["run_dir"])
    root = store.resume_dir(trial_id)
    folder = root / arch_hash
    for other in root.glob("*") if root.is_dir() else ():
        if other != folder:
            shutil.rmtree(other, ignore_errors=True)
    earlier = config.get("resume_from")
    if isinstance(earlier, int) and not isinstance(earlier, bool) and not folder.exists():
        cut = store.resume_dir(earlier) / arch_hash
        if cut.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.replace(cut, folder)
            shutil.rmtree(cut.parent, ignore_errors=True)  # the cut trial's own folder keeps only its log
    return folder


def run_trial(config: dict[str, Any], data: Any = None) -> None:
    """Ray Tune function trainable; ``config`` comes from the searcher, ``data`` from the object store."""
    import torch
    from ray import tune

    from nas.errors import CheckpointError, Diverged, NonFiniteObjective
    from nas.evaluate import evaluate
    from nas.fidelity import Fidelity
    from nas.metrics.zero_cost import score_architecture
    from nas.space.architecture import Architecture
    from nas.train import CHECKPOINT_NAME

    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    trial_id = int(config["trial_id"])
    log = trial_log(config["run_dir"], trial_id)
    threads = int(config["threads"])
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    fidelity = Fidelity.from_dict(config["fidelity"])
    arch = Architecture.parse(config["arch"])
    log.info("trial %d: %s (%s), fidelity %s, %d threads", trial_id, arch, arch.semantic_hash, fidelity.name, threads)
    base = {"trial_id": trial_id, "arch": config["arch"], "arch_hash": arch.semantic_hash, "fidelity": fidelity.name,
            "seed": config["seed"], "params": config["params"], "threads": threads}

    def report_epoch(epoch: int, model: Any) -> None:
        if config.get("report_epochs") and epoch < fidelity.epochs:
            from nas.evaluate import measure_trained

            m = measure_trained(model, data, fidelity, device=torch.device(config["device"]))
            tune.report({"status": "running", "epochs": epoch, "accuracy": m["accuracy"],
                         "record": {**base, "epochs": epoch, "accuracy": m["accuracy"]}})

    try:
        zero_cost = score_architecture(arch, data, seed=int(config["seed"]), threads=threads)
        base.update(zero_cost)
        resume_dir = resume_folder(config, trial_id, arch.semantic_hash)
        if (resume_dir / CHECKPOINT_NAME).exists():
            log.info("resuming from %s", resume_dir / CHECKPOINT_NAME)

        def train() -> Any:
            return evaluate(arch, data, fidelity, seed=int(config["seed"]), device=config["device"], threads=threads,
                            epoch_callback=report_epoch, checkpoint_dir=resume_dir, resume=True,
                            checkpoint_every_s=float(config.get("checkpoint_every_s", CHECKPOINT_EVERY_S)))

        try:
            result = train()
        except CheckpointError as exc:  # written for other settings, or damaged: train from the start
            log.info("checkpoint not used (%s); training from the start", exc)
            shutil.rmtree(resume_dir, ignore_errors=True)
            result = train()
        metrics = {k: v for k, v in result.metrics.items() if k != "layers"}
        if config.get("latency"):  # the latency objective: measured on the CPU after training
            metrics["latency_ms"] = trained_latency(result.model, data, batch=int(config["latency"]["batch"]),
                                                    threads=config["latency"].get("threads") or threads)
        if config.get("final"):
            metrics.update(final_measurements(result.model, arch, data, fidelity, config, trial_id))
        if not metrics["activations_finite"]:
            log.info("non-finite activations: %s", metrics["interference_reason"])
        require_finite_objectives(metrics, config["objectives"])
        report = {**base, **metrics, "status": "complete", "reason": ""}
    except Diverged as exc:
        report = {**base, "status": "failed", "reason": f"diverged: {exc}"}
    except NonFiniteObjective as exc:
        report = {**base, **metrics, "status": "failed", "reason": str(exc)}
    except (torch.OutOfMemoryError, MemoryError) as exc:
        report = {**base, "status": "failed", "reason": f"out of memory: {str(exc).splitlines()[0][:200]}"}
    except Exception as exc:  # a crashing trial is a result, not the end of the search
        log.info("crashed:\n%s", traceback.format_exc())
        report = {**base, "status": "failed", "reason": f"crashed: {type(exc).__name__}: {str(exc)[:300]}"}
    report.setdefault("wall_s", time.perf_counter() - started)
    log.info("trial %d %s %s", trial_id, report["status"], report.get("reason", ""))
    tune.report({"status": report["status"], "epochs": report.get("epochs"), "accuracy": report.get("accuracy"),
                 "record": report})


def final_measurements(model: Any, arch: Any, data: Any, fidelity: Any, config: dict[str, Any],
                       trial_id: int) -> dict[str, Any]:
    """What a trained network of a comparison adds: test accuracy (the test split, read once), batch-1 latency on
    the trial's threads, and its export (safetensors + arch.json) under ``trials/<id>/export/``."""
    import torch

    from nas.evaluate import measure_trained
    from nas.retrain.export import save_export

    device = torch.device(config["device"])
    test = measure_trained(model, data, fidelity, device=device, split="test")
    latency = trained_latency(model, data)
    cpu_model = model.to("cpu").float().eval()
    folder = RunStore(config["run_dir"]).trial_dir(trial_id) / "export"
    save_export(cpu_model, arch, folder, in_channels=data.in_channels, num_classes=data.num_classes,
                resolution=data.resolution,
                extra={"dataset": data.name, "class_names": list(data.class_names), "mean": list(data.mean),
                       "std": list(data.std), "fidelity": fidelity.name, "seed": int(config["seed"])})
    return {"test_accuracy": test["accuracy"], "test_images": len(data.test_y), "latency_ms": latency,
            "latency_threads": torch.get_num_threads()}


def trained_latency(model: Any, data: Any, *, batch: int = 1, threads: int | None = None) -> float:
    """Median CPU latency (ms) of a trained network on ``batch`` images of the data's shape, at ``threads``
    torch threads (default: the trial's), float32, channels_last (``nas.complexity.latency_ms``)."""
    import torch

    from nas.complexity import LATENCY_REPEATS, LATENCY_WARMUP, latency_ms

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        cpu_model = model.to("cpu").float().eval()
        example = torch.randn(batch, data.in_channels, data.resolution, data.resolution)
        return latency_ms(cpu_model, example, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP)
    finally:
        torch.set_num_threads(previous)


def require_finite_objectives(metrics: dict[str, Any], objectives: list[str]) -> None:
    """NonFiniteObjective unless every objective is a finite number (Optuna cannot be told NaN)."""
    import math

    from nas.errors import NonFiniteObjective

    bad = [n for n in objectives if not isinstance(metrics.get(n), int | float) or not math.isfinite(metrics[n])]
    if bad:
        why = metrics.get("interference_reason") or "undefined"
        raise NonFiniteObjective(f"non-finite objective {', '.join(bad)}: {why}")


def record_from_result(result: dict[str, Any]) -> dict[str, Any]:
    """The trial's own record inside a Ray result (Ray adds its bookkeeping keys beside it).

    Tune hands searchers flattened results (``record/accuracy``); a nested ``record`` is read as well.
    """
    nested = result.get("record")
    if isinstance(nested, dict):
        return dict(nested)
    return {key.removeprefix("record/"): value for key, value in result.items() if key.startswith("record/")}
