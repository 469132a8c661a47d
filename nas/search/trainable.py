"""The Ray Tune trial function: evaluate one proposed architecture and report every metric.

It never raises for a trial's own failure (divergence, non-finite metrics, out of memory,
a bug in a block): it reports ``status: failed`` with the reason, so the search goes on
and the driver tells the study. Only the driver writes the run store's final records;
the trial keeps its own log in ``trials/<id>/trial.log``.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any


def trial_log(run_dir: str, trial_id: int) -> logging.Logger:
    folder = Path(run_dir) / "trials" / f"{trial_id:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"nas.trial.{trial_id}")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.FileHandler(folder / "trial.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def run_trial(config: dict[str, Any], data: Any = None) -> None:
    """Ray Tune function trainable; ``config`` comes from the searcher, ``data`` from the object store."""
    import torch
    from ray import tune

    from nas.errors import Diverged, NonFiniteObjective
    from nas.evaluate import evaluate
    from nas.fidelity import Fidelity
    from nas.metrics.zero_cost import score_architecture
    from nas.space.architecture import Architecture

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
            "seed": config["seed"], "params": config["params"]}

    def report_epoch(epoch: int, model: Any) -> None:
        if config.get("report_epochs") and epoch < fidelity.epochs:
            from nas.evaluate import measure_trained

            m = measure_trained(model, data, fidelity, device=torch.device(config["device"]))
            tune.report({"status": "running", "epochs": epoch, "accuracy": m["accuracy"],
                         "record": {**base, "epochs": epoch, "accuracy": m["accuracy"]}})

    try:
        zero_cost = score_architecture(arch, data, seed=int(config["seed"]), threads=threads)
        base.update(zero_cost)
        result = evaluate(arch, data, fidelity, seed=int(config["seed"]), device=config["device"], threads=threads,
                          epoch_callback=report_epoch)
        metrics = {k: v for k, v in result.metrics.items() if k != "layers"}
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
