"""Fashion-MNIST from its four gzipped IDX files (28x28 grey images, 10 classes)."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from nas.data.folders import MISSING, folder_problem
from nas.data.splits import RawData, resize_images
from nas.errors import DataError
from nas.space.paths import display_path

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FILES_HINT = "train-/t10k-images-idx3-ubyte.gz and train-/t10k-labels-idx1-ubyte.gz (or the same without .gz)"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_UBYTE = 0x08


def read_idx(path: str | Path, *, magic: int | None = None) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (gzipped or not) into a uint8 tensor of its declared shape.

    ``magic`` (e.g. ``IDX_IMAGES_MAGIC``) is checked when given. A truncated or corrupt file raises DataError.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is truncated or corrupt ({exc}); download the file again.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); download the file again.")
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise DataError(f"{path} has IDX magic number {found:#010x}, expected {magic:#010x}; is it the right file?")
    if raw[2] != _UBYTE:
        raise DataError(f"{path} holds IDX type {raw[2]:#04x}; only unsigned bytes (0x08) are supported.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (its header is incomplete); download the file again.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header declares shape {dims} ({expected} bytes) but it holds "
            f"{len(raw) - header} bytes of data; download the file again."
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def _find_files(data_dir: Path | None) -> dict[str, Path]:
    folder = DEFAULT_DIR if data_dir is None else data_dir
    problem = folder_problem(folder)
    if problem is not None and problem != MISSING:
        raise DataError(f"Fashion-MNIST: {display_path(folder)} {problem}; pass --data-dir DIR holding {FILES_HINT}.")
    folder = Path(folder)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, name in FILES.items():
        candidates = [folder / name, folder / name.removesuffix(".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[key] = hit
    if found and missing:
        raise DataError(f"Fashion-MNIST in {display_path(folder)} is incomplete: it lacks {', '.join(missing)}; "
                        "copy the missing files there.")
    if missing:
        where = MISSING if problem == MISSING else "holds none of its files"
        raise DataError(
            f"Fashion-MNIST not found: {display_path(folder)} {where}. Install it with "
            f"`apt-get install dataset-fashion-mnist` or pass --data-dir DIR holding {FILES_HINT}."
        )
    return found


def load_fashion_mnist(data_dir: Path | None = None, resolution: int | None = None) -> RawData:
    """Load Fashion-MNIST (train 60k, test 10k) as uint8 N x 1 x 28 x 28, resized when ``resolution`` is set."""
    files = _find_files(data_dir)
    train_x = read_idx(files["train_images"], magic=IDX_IMAGES_MAGIC)
    train_y = read_idx(files["train_labels"], magic=IDX_LABELS_MAGIC)
    test_x = read_idx(files["test_images"], magic=IDX_IMAGES_MAGIC)
    test_y = read_idx(files["test_labels"], magic=IDX_LABELS_MAGIC)
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"Fashion-MNIST {split} files disagree: {images.shape[0]} images but {labels.shape[0]} labels "
                f"in {files['train_labels' if split == 'train' else 'test_labels']}; download them again."
            )
        if labels.numel() and int(labels.max()) >= len(CLASS_NAMES):
            raise DataError(f"Fashion-MNIST {split} labels exceed 9; the label file is not Fashion-MNIST's.")
    train_x, test_x = train_x.unsqueeze(1), test_x.unsqueeze(1)
    if resolution is not None:
        train_x, test_x = resize_images(train_x, resolution), resize_images(test_x, resolution)
    return RawData(train_x, train_y.long(), test_x, test_y.long(), CLASS_NAMES, hflip=True)
