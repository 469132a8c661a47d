"""Class-per-folder image trees read with Pillow, resized and centre-cropped to a square RGB resolution.

Two layouts: ``ROOT/train/<class>/...`` with ``ROOT/test/<class>/...``, or ``ROOT/<class>/...`` whose test
split is a fixed (seed-independent) stratified ``test_fraction`` of the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nas.data.folders import check_folder, check_image_memory
from nas.data.splits import RawData, stratified_split
from nas.errors import DataError
from nas.space.paths import display_path

DEFAULT_RESOLUTION = 32
EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
TEST_SPLIT_SEED = 0  # the held-out test images of a single tree never depend on the run seed


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root`` (sorted, hidden ones left out); fewer than 2 is a DataError."""
    try:
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list the image folder {display_path(root)}: {exc.strerror or exc}.") from None
    if len(classes) < 2:
        raise DataError(
            f"{display_path(root)} holds {len(classes)} class folder(s); an image folder needs at least 2 "
            "(one sub-folder per class, e.g. cat/*.png and dog/*.png)."
        )
    return classes


def _tree_root(data_dir: Path | None) -> tuple[Path, bool]:
    """The checked image folder, and whether it has the train/ + test/ layout."""
    if data_dir is None:
        raise DataError("the imagefolder data set needs --data-dir pointing to a folder with one sub-folder per class.")
    root = check_folder(
        data_dir, "image folder", "pass --data-dir pointing to a folder with one sub-folder per class."
    )
    return root, (root / "train").is_dir() and (root / "test").is_dir()


def _scan(root: Path) -> dict[str, list[Path]]:
    """Map each class folder name (sorted) to its sorted image files."""
    tree: dict[str, list[Path]] = {}
    for folder in _class_folders(root):
        try:
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        except OSError as exc:
            raise DataError(f"cannot list the class folder {display_path(folder)}: {exc.strerror or exc}.") from None
        if not files:
            raise DataError(
                f"class folder {display_path(folder)} holds no images ({', '.join(sorted(EXTENSIONS))}); "
                "add some or remove it."
            )
        tree[folder.name] = files
    return tree


def class_count(data_dir: Path | None) -> int:
    """The number of class folders of an image tree (``train/`` in the two-folder layout), without reading images."""
    root, split = _tree_root(data_dir)
    return len(_class_folders(root / "train" if split else root))


def _read_image(path: Path, resolution: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise DataError(f"cannot read image {display_path(path)} ({reason}); remove or replace it.") from exc
    w, h = rgb.size
    scale = resolution / min(w, h)
    size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    rgb = rgb.crop((left, top, left + resolution, top + resolution))
    return np.asarray(rgb, dtype=np.uint8)


def _load_tree(tree: dict[str, list[Path]], class_index: dict[str, int], resolution: int) -> tuple[torch.Tensor, ...]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for name, files in tree.items():
        for path in files:
            images.append(_read_image(path, resolution))
            labels.append(class_index[name])
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64)


def _check_memory(trees: list[dict[str, list[Path]]], resolution: int, root: Path) -> None:
    """Decoded images are held twice while stacked (the list and the tensor): refuse what cannot fit."""
    count = sum(len(files) for tree in trees for files in tree.values())
    check_image_memory(count, 3, resolution, f"image folder {display_path(root)}", bytes_per_value=2)


def load_imagefolder(
    data_dir: Path | None = None, resolution: int | None = None, test_fraction: float = 0.2
) -> RawData:
    """Load an image tree as uint8 N x 3 x R x R (R = ``resolution``, default 32); horizontal flips allowed."""
    root, split = _tree_root(data_dir)
    res = DEFAULT_RESOLUTION if resolution is None else resolution
    if split:
        train_tree, test_tree = _scan(root / "train"), _scan(root / "test")
        unknown = sorted(set(test_tree) - set(train_tree))
        if unknown:
            raise DataError(
                f"{display_path(root / 'test')} has classes missing from {display_path(root / 'train')}: "
                f"{', '.join(unknown)[:200]}."
            )
        _check_memory([train_tree, test_tree], res, root)
        index = {name: k for k, name in enumerate(train_tree)}
        train_x, train_y = _load_tree(train_tree, index, res)
        test_x, test_y = _load_tree(test_tree, index, res)
    else:
        tree = _scan(root)
        _check_memory([tree], res, root)
        index = {name: k for k, name in enumerate(tree)}
        x, y = _load_tree(tree, index, res)
        keep, held = stratified_split(y, test_fraction, TEST_SPLIT_SEED)
        train_x, train_y, test_x, test_y = x[keep], y[keep], x[held], y[held]
    return RawData(train_x, train_y, test_x, test_y, tuple(index), hflip=True)
