"""Training fidelities: how much training a candidate gets (presets quick, standard, full); torch-free."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError, shown

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("fp32", "bf16", "auto")  # training arithmetic; "auto" = bf16 where the device does it natively


@dataclass(frozen=True)
class Fidelity:
    """One training recipe. The Pareto front is only ever computed among trials of one fidelity."""

    name: str
    train_images: int | None  # class-balanced subset of the training split, chosen by seed; None = all
    epochs: int
    batch_size: int
    optimizer: str  # "sgd" (Nesterov) or "adamw"
    lr: float  # peak learning rate, reached after the linear warm-up, then cosine to 0 (per step)
    weight_decay: float  # applied to weights with 2+ dimensions only (never to norms, biases, scalars)
    momentum: float  # SGD (Nesterov) momentum; AdamW keeps its default betas (0.9, 0.999)
    warmup_epochs: float  # linear warm-up length, in epochs (fractions allowed)
    label_smoothing: float
    grad_clip: float | None  # max global gradient norm; None = no clipping
    augment: bool  # random crop with padding (+ horizontal flip where the data set allows it)
    probe_images: int  # class-balanced validation images for the interference metrics
    val_images: int | None  # validation images for accuracy; None = the whole validation split
    eval_batch_size: int
    # "fp32", "bf16" (forward and loss under bf16 autocast; parameters, optimizer and metrics stay fp32), or
    # "auto" (bf16 where the CPU or GPU supports it natively, else fp32); nas.train.resolve_precision decides.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        wrong = [f"{k} must be {_kind(t)}" for k, t in _TYPES.items() if not _is(getattr(self, k), t)]
        if wrong:
            raise ConfigError(f"fidelity {self.name!r} is invalid: {'; '.join(wrong)}.")
        problems = [f"{k} must be a finite number, got {getattr(self, k)}" for k in _TYPES
                    if isinstance(getattr(self, k), float) and not math.isfinite(getattr(self, k))]
        if problems:  # inf passes every bound below (lr > 0, warm-up >= 0) and trains on NaNs or never warms up
            raise ConfigError(f"fidelity {self.name!r} is invalid: {'; '.join(problems)}.")
        if self.train_images is not None and self.train_images < 1:
            problems.append("train_images must be >= 1 or None")
        if self.epochs < 1:
            problems.append("epochs must be >= 1")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            problems.append("batch sizes must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not self.lr > 0:
            problems.append("lr must be > 0")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            problems.append("weight_decay must be >= 0 and momentum in [0, 1)")
        if self.warmup_epochs < 0:
            problems.append("warmup_epochs must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must be in [0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append("grad_clip must be > 0 or None")
        if self.probe_images < 1 or (self.val_images is not None and self.val_images < 1):
            problems.append("probe_images must be >= 1 and val_images >= 1 or None")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if problems:
            raise ConfigError(f"fidelity {self.name!r} is invalid: {'; '.join(problems)}.")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (for run.yaml and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fidelity:
        """Rebuild a fidelity from ``to_dict`` output; unknown or missing fields raise ConfigError.

        ``precision`` alone may be missing (mappings written before it existed): it reads as "fp32".
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        data = {"precision": "fp32", **data}
        unknown, missing = sorted(set(data) - fields), sorted(fields - set(data))
        if unknown or missing:
            raise ConfigError(
                f"a fidelity mapping has unknown fields {unknown or '[]'} and lacks {missing or '[]'}; "
                f"fields are: {', '.join(sorted(fields))}."
            )
        return cls(**data)

    def describe(self) -> str:
        """One line for logs: images, epochs, optimizer and learning rate (and precision unless fp32)."""
        images = "all" if self.train_images is None else f"{self.train_images:,}"
        precision = "" if self.precision == "fp32" else f", precision {self.precision}"
        return (
            f"{self.name}: {images} images x {self.epochs} epoch(s), batch {self.batch_size}, {self.optimizer} "
            f"lr {self.lr:g}, wd {self.weight_decay:g}, augment {'on' if self.augment else 'off'}{precision}"
        )


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "train_images": (int, type(None)),
    "epochs": (int,),
    "batch_size": (int,),
    "optimizer": (str,),
    "lr": (float, int),
    "weight_decay": (float, int),
    "momentum": (float, int),
    "warmup_epochs": (float, int),
    "label_smoothing": (float, int),
    "grad_clip": (float, int, type(None)),
    "augment": (bool,),
    "probe_images": (int,),
    "val_images": (int, type(None)),
    "eval_batch_size": (int,),
    "precision": (str,),
}


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; only accept it where bool is asked for
        return bool in types
    return isinstance(value, types)


def _kind(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", type(None): "null"}
    shown = [t for t in types if not (t is int and float in types)]  # "a number" covers integers
    return " or ".join(names[t] for t in shown)


FIDELITIES: dict[str, Fidelity] = {
    # Search proxy, about a minute per 1.5M-parameter net on 2 CPU threads (~70-100 train images/s at 32 px,
    # faster at 28 px): 2 passes over 2,560 balanced images, no augmentation (too few steps for it to pay).
    "quick": Fidelity(
        name="quick",
        train_images=2560,
        epochs=2,
        batch_size=64,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=0.05,
        momentum=0.9,
        warmup_epochs=0.25,
        label_smoothing=0.0,
        grad_clip=5.0,
        augment=False,
        probe_images=500,
        val_images=1000,
        eval_batch_size=32,
        precision="fp32",  # bf16 becomes the default only if the audit shows its rankings agree
    ),
    # A firmer proxy (~10-15 minutes on 2 CPU threads, seconds on a GPU).
    "standard": Fidelity(
        name="standard",
        train_images=10_000,
        epochs=5,
        batch_size=128,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=0.05,
        momentum=0.9,
        warmup_epochs=0.5,
        label_smoothing=0.1,
        grad_clip=5.0,
        augment=True,
        probe_images=1000,
        val_images=None,
        eval_batch_size=128,
        precision="fp32",
    ),
    # Retraining the winners; meant for a GPU. SGD Nesterov, lr 0.1 x batch / 256.
    "full": Fidelity(
        name="full",
        train_images=None,
        epochs=40,
        batch_size=256,
        optimizer="sgd",
        lr=0.1,
        weight_decay=5e-4,
        momentum=0.9,
        warmup_epochs=2.0,
        label_smoothing=0.1,
        grad_clip=None,
        augment=True,
        probe_images=1000,
        val_images=None,
        eval_batch_size=1000,
        precision="fp32",
    ),
}


def get_fidelity(name: str, **overrides: Any) -> Fidelity:
    """Return preset ``name`` with ``overrides`` applied (the name stays unless ``name=`` is overridden)."""
    if name not in FIDELITIES:
        raise ConfigError(f"unknown fidelity {shown(name)}; known fidelities: {', '.join(FIDELITIES)}.")
    fields = [f.name for f in dataclasses.fields(Fidelity)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"unknown fidelity field(s) {shown(', '.join(unknown))}; fields are: {', '.join(fields)}.")
    return dataclasses.replace(FIDELITIES[name], **overrides)


def fidelity_from_options(preset: str, settings: Sequence[str] = (), *, epochs: int | None = None) -> Fidelity:
    """A preset with ``--set FIELD=VALUE`` overrides (and ``--epochs``); a changed preset is renamed to say how.

    ``quick`` with ``--epochs 1`` is named ``quick+epochs=1``, so different recipes never share a front.
    A shorter or longer run gets a proportionally scaled warm-up unless ``warmup_epochs`` is set; that
    derived warm-up is implied by the epochs and not repeated in the name.
    """
    import yaml

    overrides: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes FIELD=VALUE, got {shown(item)}")
        try:
            overrides[key.strip()] = _scalar(yaml.safe_load(value))
        except (yaml.YAMLError, ValueError):  # ValueError: an integer of more than 4,300 digits
            raise ConfigError(f"--set {shown(item)}: the value is not a number, word, true/false or null") from None
    if epochs is not None:
        overrides["epochs"] = epochs
    base = get_fidelity(preset)
    changed = {k: v for k, v in overrides.items() if getattr(base, k, None) != v}  # unknown: refused below
    derived: dict[str, Any] = {}
    if "epochs" in changed and "warmup_epochs" not in overrides and isinstance(changed["epochs"], int):
        derived["warmup_epochs"] = base.warmup_epochs * changed["epochs"] / base.epochs
    fidelity = get_fidelity(preset, **overrides, **derived)
    if not changed:
        return fidelity
    label = preset + "+" + ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return dataclasses.replace(fidelity, name=label)


def _scalar(value: Any) -> Any:
    """YAML reads 1e12 as a string (YAML 1.1 wants 1.0e12); take it as the number a user meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_fidelity(spec: str) -> Fidelity:
    """``quick``, ``quick:epochs=1,train_images=5120`` or ``quick+epochs=1,train_images=5120`` → a named fidelity."""
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 400:
        raise ConfigError(f"a fidelity is PRESET or PRESET:FIELD=VALUE,…; got {shown(spec)}")
    preset, sep, rest = spec.strip().replace("+", ":", 1).partition(":")
    settings = [item for item in rest.split(",") if item.strip()] if sep else []
    if sep and not settings:
        raise ConfigError(f"fidelity {shown(spec)}: nothing after ':'; write PRESET:FIELD=VALUE,…")
    return fidelity_from_options(preset.strip(), settings)
