"""Data sets as in-memory uint8 tensors: a registry of sources, splits, balanced sampling, augmentation.

``load_dataset(name, ...)`` returns a ``DatasetSplits``; ``DATASETS`` lists the names. Each source lives in
its own module (``fashion_mnist``, ``cifar10``, ``imagefolder``, ``synthetic``) and returns ``RawData``
(train and test files); the registry carves the seeded stratified validation slice out of the training files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.data.augment import default_padding, random_crop_flip
from nas.data.cifar10 import CLASS_NAMES as CIFAR_CLASSES
from nas.data.cifar10 import load_cifar10
from nas.data.fashion_mnist import CLASS_NAMES as FASHION_CLASSES
from nas.data.fashion_mnist import load_fashion_mnist, read_idx
from nas.data.imagefolder import DEFAULT_RESOLUTION as IMAGEFOLDER_RESOLUTION
from nas.data.imagefolder import class_count, load_imagefolder
from nas.data.splits import DatasetSplits, RawData, balanced_indices, build_splits, stratified_split
from nas.data.synthetic import DEFAULT_RESOLUTION as SYNTHETIC_RESOLUTION
from nas.data.synthetic import load_synthetic
from nas.errors import ConfigError, DataError, shown
from nas.space import rules
from nas.space.paths import display_path, path_problem

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DEFAULT_VAL_FRACTION",
    "DatasetSplits",
    "RawData",
    "balanced_indices",
    "dataset_shape",
    "default_padding",
    "load_dataset",
    "random_crop_flip",
    "read_idx",
    "stratified_split",
]

DEFAULT_DATASET = "fashion-mnist"
DEFAULT_VAL_FRACTION = 0.1  # Fashion-MNIST: 54k train / 6k val; the 10k test images stay untouched

_SOURCES: dict[str, Callable[..., RawData]] = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "imagefolder": load_imagefolder,
    "synthetic": load_synthetic,
}
DATASETS: tuple[str, ...] = tuple(_SOURCES)


def _check_request(name: object, data_dir: str | Path | None, resolution: int | None) -> None:
    """What load_dataset and dataset_shape refuse before reading anything: the name, the resolution, the path."""
    if not isinstance(name, str) or name not in _SOURCES:
        raise ConfigError(f"unknown data set {shown(name)}; known data sets: {', '.join(DATASETS)}.")
    if resolution is not None and (problem := rules.problem("resolution", resolution)) is not None:
        raise ConfigError(f"resolution {problem}.")
    if data_dir is not None and (problem := path_problem(data_dir)) is not None:
        raise DataError(f"--data-dir {display_path(data_dir)}: {problem}.")


def dataset_shape(name: str = DEFAULT_DATASET, *, data_dir: str | Path | None = None,
                  resolution: int | None = None) -> tuple[int, int, int]:
    """(channels, resolution, classes) of data set ``name`` as ``load_dataset`` would load it, read without loading it.

    For checks made before any work (can a network of this shape meet the budget?); a folder that is not
    there is the same error as ``load_dataset``'s. The data itself is checked when it is loaded.
    """
    _check_request(name, data_dir, resolution)
    if name == "fashion-mnist":
        return 1, resolution or 28, len(FASHION_CLASSES)
    if name == "cifar10":
        return 3, resolution or 32, len(CIFAR_CLASSES)
    if name == "imagefolder":
        return 3, resolution or IMAGEFOLDER_RESOLUTION, class_count(None if data_dir is None else Path(data_dir))
    defaults = inspect.signature(load_synthetic).parameters
    return (defaults["channels"].default, resolution or SYNTHETIC_RESOLUTION, defaults["num_classes"].default)


def load_dataset(
    name: str = DEFAULT_DATASET,
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    resolution: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    **options: Any,
) -> DatasetSplits:
    """Load data set ``name`` and split it; ``seed`` picks the validation slice (the test split never changes).

    ``resolution`` resizes (``None``: native size; 32 for imagefolder, 16 for synthetic). ``options`` go to
    the source (e.g. ``train_size``/``num_classes`` for synthetic, ``test_fraction`` for imagefolder).
    """
    _check_request(name, data_dir, resolution)
    loader = _SOURCES[name]
    allowed = [p for p in inspect.signature(loader).parameters if p not in ("data_dir", "resolution")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {shown(', '.join(map(str, unknown)))} for data set {shown(name)}; "
            f"it accepts: {', '.join(allowed) or 'none'}."
        )
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {shown(val_fraction)}.")
    raw = loader(None if data_dir is None else Path(data_dir), resolution, **options)
    return build_splits(name, raw, seed=seed, val_fraction=val_fraction)
