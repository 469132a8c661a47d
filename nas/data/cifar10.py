"""CIFAR-10 from the standard ``cifar-10-batches-py`` folder (32x32 RGB, 10 classes).

The batches are Python pickles, i.e. user files. They are opened only after the expected file names are
found, and read with a restricted unpickler (``encoding="bytes"``) that resolves nothing but the few numpy
names an array (and bytes) need, so a crafted file cannot run code; anything else raises DataError.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.folders import check_folder
from nas.data.splits import RawData, resize_images
from nas.errors import DataError
from nas.space.paths import display_path

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"  # optional; supplies the class names
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy array reconstruction names."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[bytes, Any]:
    try:
        with path.open("rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as exc:
        raise DataError(
            f"{path} is not a readable CIFAR-10 batch ({exc}); extract cifar-10-python.tar.gz again."
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (it holds a {type(obj).__name__}, not a dict).")
    return obj


def find_folder(data_dir: Path | None) -> Path:
    """Return the folder holding the batches: ``data_dir`` itself or its ``cifar-10-batches-py`` child."""
    if data_dir is None:
        raise DataError(
            "cifar10 needs --data-dir: download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it "
            f"and pass the folder that holds {FOLDER} (or {FOLDER} itself)."
        )
    root = check_folder(data_dir, "CIFAR-10 folder", f"pass --data-dir pointing to the extracted {FOLDER} folder.")
    folder = root / FOLDER if (root / FOLDER).is_dir() else root
    missing = [n for n in (*TRAIN_FILES, TEST_FILE) if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"CIFAR-10 not found: {display_path(folder)} lacks {', '.join(missing)}. Pass --data-dir pointing to "
            f"the extracted {FOLDER} folder (from cifar-10-python.tar.gz)."
        )
    return folder


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = _unpickle(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: b'data' must be a uint8 array N x 3072; the file is not a CIFAR-10 batch.")
    if labels is None or len(labels) != data.shape[0]:
        raise DataError(f"{path}: b'labels' must hold one label per image; the file is not a CIFAR-10 batch.")
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(CLASS_NAMES)):
        raise DataError(f"{path}: labels must lie in 0..9.")
    x = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return x, y


def _class_names(folder: Path) -> tuple[str, ...]:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return CLASS_NAMES
    names = _unpickle(meta_path).get(b"label_names")
    if not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        raise DataError(f"{meta_path}: b'label_names' must list 10 class names.")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def load_cifar10(data_dir: Path | None = None, resolution: int | None = None) -> RawData:
    """Load CIFAR-10 (train 50k from five batches, test 10k) as uint8 N x 3 x 32 x 32."""
    folder = find_folder(data_dir)
    parts = [_read_batch(folder / n) for n in TRAIN_FILES]
    train_x = torch.cat([p[0] for p in parts])
    train_y = torch.cat([p[1] for p in parts])
    test_x, test_y = _read_batch(folder / TEST_FILE)
    if resolution is not None:
        train_x, test_x = resize_images(train_x, resolution), resize_images(test_x, resolution)
    return RawData(train_x, train_y, test_x, test_y, _class_names(folder), hflip=True)
