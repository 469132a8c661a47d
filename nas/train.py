"""Trainer shared by proxy (search) and full (retrain) training: on-device uint8 data, checkpoint and resume.

Precision: a fidelity's ``precision`` ("fp32", "bf16" or "auto", see ``resolve_precision``) decides whether the
training step's forward pass and loss run under ``torch.autocast(dtype=torch.bfloat16)``. Parameters, gradients,
optimizer state and the update stay float32; evaluation and metrics (run by the caller, after ``fit``) never run
under autocast.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.atomic import atomic_path
from nas.data.augment import default_padding, random_crop_flip
from nas.data.splits import DatasetSplits, balanced_indices
from nas.errors import CheckpointError, ConfigError, Diverged
from nas.fidelity import PRECISIONS, Fidelity

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2  # 2 adds the position inside an epoch (epoch_step, epoch_order, epoch_losses)
READABLE_FORMATS = (1, 2)  # format 1 is format 2 at an epoch end
_CHECKPOINT_KEYS = (
    "format", "model", "optimizer", "scheduler", "generator", "torch_rng",
    "epoch", "step", "images_seen", "train_s", "wall_s", "final_loss",
)

EpochCallback = Callable[[int, nn.Module], None]


@dataclass(frozen=True)
class TrainResult:
    """What a ``fit`` did; counts include epochs restored from a checkpoint."""

    steps: int
    epochs: int
    images_seen: int
    images_per_s: float  # training throughput (forward + backward + update), excluding checkpoints and callbacks
    wall_s: float  # the whole fit, summed over resumed sessions
    final_loss: float  # mean training loss over the last epoch
    precision: str = "fp32"  # the resolved training precision: "fp32" or "bf16" (never "auto")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return asdict(self)


# Instruction-set features that do bf16 arithmetic natively (torch.cpu.get_capabilities() names): x86 AVX512-BF16
# and AMX-BF16, Arm BF16 and SVE-BF16. Without them oneDNN still runs bf16 (converting on AVX512-BW/VL/DQ or
# AVX-NE-CONVERT), but usually no faster than fp32, so "auto" stays fp32 there.
_NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


@functools.cache
def cpu_native_bf16() -> bool:
    """True when this CPU does bf16 arithmetic in hardware and torch's oneDNN backend can use it."""
    if not torch.backends.mkldnn.is_available():
        return False  # CPU bf16 convolutions and matrix products come from oneDNN
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # public since torch 2.10
    if capabilities is not None:
        features = capabilities()
        return any(bool(features.get(name, False)) for name in _NATIVE_BF16_FEATURES)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return bool(avx512_bf16() or amx())


def bf16_supported(device: str | torch.device) -> bool:
    """Whether ``device`` does bf16 natively: CUDA without emulation, or a CPU with ``cpu_native_bf16``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.4 has no emulation flag (and counts no emulation)
            return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        return cpu_native_bf16()
    return False


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The training precision actually used on ``device``: "fp32" or "bf16".

    "fp32" and "bf16" are taken as given (bf16 runs everywhere autocast does, if slowly); "auto" is "bf16" where
    ``bf16_supported(device)`` and "fp32" elsewhere. Depends only on the device and the hardware, never on timing.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; precisions are: {', '.join(PRECISIONS)}.")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: weights with 2+ dimensions decay; norms, biases and scalars do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, fidelity: Fidelity) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW, without weight decay on 1-D parameters."""
    groups = parameter_groups(model, fidelity.weight_decay)
    if fidelity.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=fidelity.lr, momentum=fidelity.momentum, nesterov=fidelity.momentum > 0)
    return torch.optim.AdamW(groups, lr=fidelity.lr)  # betas (0.9, 0.999); momentum is SGD-only


def lr_factor(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warm-up, then cosine to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following ``lr_factor``."""

    def factor(step: int) -> float:
        return lr_factor(step, warmup_steps=warmup_steps, total_steps=total_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically (temp file in the same folder, then ``os.replace``)."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by the Trainer (``weights_only=True``, onto the CPU); CheckpointError if unusable."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about a crafted file's pickle protocol before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = _load_failure(exc)
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({reason}); delete it to train from scratch."
        ) from exc
    if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
        raise CheckpointError(f"{path} is not a bottleneck-nas training checkpoint; delete it to train from scratch.")
    if state["format"] not in READABLE_FORMATS:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format']}; this version reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}."
        )
    return state


# sentences of torch.load's error text that point at weights_only=False (unsafe on files a user hands in)
_TORCH_ADVICE = re.compile(
    r"weights.only|trusted source|file an issue|documentation of torch\.load|In PyTorch \d", re.IGNORECASE
)


def _load_failure(exc: BaseException) -> str:
    """The first line of torch.load's error without its advice to retry with ``weights_only=False``."""
    sentences = (s.strip() for line in str(exc).splitlines() for s in re.split(r"(?<=\.)\s+", line))
    kept = [s for s in sentences if s and not _TORCH_ADVICE.search(s)]
    return kept[0][:200] if kept else "not a file of plain tensors"


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Raise CheckpointError unless ``state_dict`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                parts.append(f"{len(items)} {label} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})")
        raise CheckpointError(
            f"checkpoint {path} does not match the model: {'; '.join(parts)}. It was written for another "
            "architecture; delete it or use a different checkpoint folder."
        )


def load_weights(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load the model weights of a Trainer checkpoint into ``model`` (shapes checked); return the checkpoint."""
    state = load_checkpoint(path)
    check_state_dict(model, state["model"], path)
    model.load_state_dict(state["model"])
    return state


class _ProgressBar:
    """A rich progress bar with images/s and loss, or nothing when disabled."""

    def __init__(self, enabled: bool, *, total: int, completed: int, description: str) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[ips]:>7.0f} img/s"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, completed=completed, ips=0.0, loss=float("nan"))

    def update(self, completed: int, *, ips: float, loss: float, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, ips=ips, loss=loss, description=description)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class Trainer:
    """Trains a model on a DatasetSplits at a Fidelity; the same code serves search proxies and retraining.

    ``threads`` sets ``torch.set_num_threads`` for the process when given; ``compile`` wraps the model in
    ``torch.compile``; ``progress`` shows a progress bar on stderr. On CPU a seed makes a run bit-exact.
    """

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        compile: bool = False,
        progress: bool = True,
    ) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu.")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}.")
        self.threads = threads
        self.compile = compile
        self.progress = progress

    def fit(
        self,
        model: nn.Module,
        data: DatasetSplits,
        fidelity: Fidelity,
        *,
        seed: int,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        epoch_callback: EpochCallback | None = None,
        checkpoint_every_s: float | None = None,
    ) -> TrainResult:
        """Train ``model`` in place (left on the trainer's device, channels_last, in eval mode).

        With ``checkpoint_dir`` a checkpoint is written atomically at every epoch end, or, with
        ``checkpoint_every_s``, after the first step that ends that many seconds after the last one (mid-epoch
        too: the epoch's shuffled order and losses so far are saved with it). ``resume=True`` continues from it
        (or starts afresh when there is none) and ends bit-identical to an uninterrupted run on CPU.
        ``epoch_callback(epochs_done, model)`` runs after each epoch's checkpoint; an exception from it stops
        training and propagates. A non-finite loss raises ``Diverged(step, loss)`` (1-based step).
        """
        started = time.perf_counter()
        if resume and checkpoint_dir is None:
            raise ConfigError("resume=True needs a checkpoint_dir to resume from.")
        if checkpoint_every_s is not None and not checkpoint_every_s > 0:
            raise ConfigError(f"checkpoint_every_s must be a positive number of seconds, got {checkpoint_every_s!r}.")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        dev = self.device
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)  # shuffling and augmentation; CPU so its state is portable

        total = int(data.train_y.numel())
        n = total if fidelity.train_images is None else min(fidelity.train_images, total)
        if n < total:
            picked = balanced_indices(data.train_y, n, seed).to(data.train_x.device)
            x_train, y_train = data.train_x[picked].to(dev), data.train_y[picked].to(dev)
        else:
            x_train, y_train = data.train_x.to(dev), data.train_y.to(dev)
        batch = min(fidelity.batch_size, n)
        steps_per_epoch = max(1, n // batch)  # the ragged last batch is dropped (a batch of 1 breaks BatchNorm)
        total_steps = steps_per_epoch * fidelity.epochs
        warmup_steps = round(fidelity.warmup_epochs * steps_per_epoch)

        model.to(dev, memory_format=torch.channels_last)
        optimizer = make_optimizer(model, fidelity)
        scheduler = make_scheduler(optimizer, warmup_steps=warmup_steps, total_steps=total_steps)
        forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if self.compile else model

        precision = resolve_precision(fidelity.precision, dev)
        meta = {
            "fidelity": fidelity.to_dict(), "seed": seed, "dataset": data.name, "train_images": n,
            "precision": precision,
        }
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
        epoch = step = images_seen = 0  # step and images_seen count whole epochs; the open epoch is `done`
        train_s = prior_wall_s = 0.0
        final_loss = float("nan")
        open_order: torch.Tensor | None = None  # a mid-epoch checkpoint's epoch: its order and losses so far
        open_losses: torch.Tensor | None = None
        if resume and path is not None and path.exists():
            state = load_checkpoint(path)
            for key in meta:
                then, now = _checkpoint_setting(state, key), _checkpoint_setting(meta, key)
                if then != now:
                    raise CheckpointError(
                        f"checkpoint {path} was written with a different {key} ({then!r}, now {now!r}); "
                        "delete it or resume with the original settings."
                    )
            check_state_dict(model, state["model"], path)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                gen.set_state(state["generator"])
                torch.set_rng_state(state["torch_rng"])
                if dev.type == "cuda" and state.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(state["cuda_rng"], dev)
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"checkpoint {path} cannot be restored ({exc}); delete it.") from exc
            epoch, step, images_seen = int(state["epoch"]), int(state["step"]), int(state["images_seen"])
            train_s, prior_wall_s = float(state["train_s"]), float(state["wall_s"])
            final_loss = float(state["final_loss"])
            if state.get("epoch_order") is not None:
                open_order, open_losses = state["epoch_order"], state["epoch_losses"]
                done = state.get("epoch_step")
                if (not isinstance(open_order, torch.Tensor) or not isinstance(open_losses, torch.Tensor)
                        or not isinstance(done, int) or not 0 < done < steps_per_epoch
                        or tuple(open_order.shape) != (steps_per_epoch, batch) or len(open_losses) != done):
                    raise CheckpointError(f"checkpoint {path} holds an epoch of another shape; delete it.")
                step, images_seen = step - done, images_seen - done * batch  # whole epochs; `done` reruns none

        def save(done: int, order: torch.Tensor | None, losses: torch.Tensor | None, epoch_train_s: float) -> None:
            """Checkpoint after ``done`` steps of the open epoch (0 with ``order`` None: at an epoch boundary)."""
            assert path is not None
            save_checkpoint(
                path,
                {
                    "format": CHECKPOINT_FORMAT,
                    **meta,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                    "epoch": epoch,
                    "step": step + done,
                    "images_seen": images_seen + done * batch,
                    "train_s": train_s + epoch_train_s,
                    "wall_s": prior_wall_s + time.perf_counter() - started,
                    "final_loss": final_loss,
                    "epoch_step": done,
                    "epoch_order": None if order is None else order.cpu(),
                    "epoch_losses": None if losses is None else losses[:done].cpu(),
                },
            )

        last_saved = time.perf_counter()

        use_bf16 = precision == "bf16"
        sync_every = 1 if dev.type == "cpu" else 25  # loss checks sync the device; batch them on accelerators
        padding = default_padding(data.resolution)
        bar = _ProgressBar(
            self.progress, total=total_steps, completed=step + (0 if open_losses is None else len(open_losses)),
            description=f"{fidelity.name} epoch {epoch + 1}",
        )
        model.train()
        try:
            while epoch < fidelity.epochs:
                description = f"{fidelity.name} epoch {epoch + 1}/{fidelity.epochs}"
                t_epoch = t_window = time.perf_counter()
                losses = torch.empty(steps_per_epoch, device=dev)
                if open_order is not None and open_losses is not None:  # resuming inside this epoch
                    order, first = open_order.to(dev), len(open_losses)
                    losses[:first] = open_losses.to(dev)
                    open_order = open_losses = None
                else:
                    order = torch.randperm(n, generator=gen)[: steps_per_epoch * batch]
                    order = order.view(steps_per_epoch, batch).to(dev, non_blocking=True)
                    first = 0
                checked = first
                for i in range(first, steps_per_epoch):
                    xb, yb = x_train[order[i]], y_train[order[i]]
                    if fidelity.augment:
                        xb = random_crop_flip(xb, generator=gen, padding=padding, hflip=data.hflip)
                    xb = data.normalize(xb).contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                        logits = forward(xb)
                        loss = F.cross_entropy(logits.float(), yb, label_smoothing=fidelity.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if fidelity.grad_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), fidelity.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    losses[i] = loss.detach()
                    if (i + 1) % sync_every == 0 or i + 1 == steps_per_epoch:
                        window = losses[checked : i + 1]
                        bad = (~torch.isfinite(window)).nonzero()
                        if bad.numel():
                            j = int(bad[0, 0])
                            raise Diverged(step + checked + j + 1, float(window[j]))
                        now = time.perf_counter()
                        bar.update(
                            step + 1 + i,
                            ips=len(window) * batch / max(now - t_window, 1e-9),
                            loss=float(window[-1]),
                            description=description,
                        )
                        checked, t_window = i + 1, now
                        if (path is not None and checkpoint_every_s is not None and i + 1 < steps_per_epoch
                                and now - last_saved >= checkpoint_every_s):
                            save(i + 1, order, losses, now - t_epoch)
                            last_saved = time.perf_counter()
                step += steps_per_epoch
                images_seen += steps_per_epoch * batch
                train_s += time.perf_counter() - t_epoch
                final_loss = float(losses.mean())
                epoch += 1
                if path is not None and (checkpoint_every_s is None
                                         or time.perf_counter() - last_saved >= checkpoint_every_s):
                    save(0, None, None, 0.0)
                    last_saved = time.perf_counter()
                if epoch_callback is not None:
                    rng = torch.get_rng_state()  # what the callback draws must not change training
                    epoch_callback(epoch, model)
                    torch.set_rng_state(rng)
                    model.train()
        finally:
            bar.close()
            model.eval()
        return TrainResult(
            steps=step,
            epochs=epoch,
            images_seen=images_seen,
            images_per_s=images_seen / train_s if train_s > 0 else 0.0,
            wall_s=prior_wall_s + time.perf_counter() - started,
            final_loss=final_loss,
            precision=precision,
        )


def _checkpoint_setting(state: dict[str, Any], key: str) -> Any:
    """A setting as resume compares it: the resolved precision on its own (fp32 when the checkpoint predates
    it), the fidelity without its precision request ("auto" and "bf16" that resolve alike may resume)."""
    if key == "precision":
        return state.get("precision", "fp32")
    value = state.get(key)
    if key == "fidelity" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "precision"}
    return value
