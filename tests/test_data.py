"""Tests for nas.data: IDX parsing, CIFAR-10 batches, image folders, splits, balanced sampling, augmentation."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.data import (
    DATASETS,
    balanced_indices,
    default_padding,
    load_dataset,
    random_crop_flip,
    read_idx,
    stratified_split,
)
from nas.data.fashion_mnist import CLASS_NAMES, DEFAULT_DIR, FILES, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC
from nas.errors import ConfigError, DataError

torch.set_num_threads(1)


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def _write_gz(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def _fake_fashion(folder: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in FILES.items():
        _write_gz(folder / name, _idx_bytes(arrays[key]))
    return arrays


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def test_idx_round_trip(tmp_path: Path) -> None:
    arrays = _fake_fashion(tmp_path)
    images = read_idx(tmp_path / FILES["train_images"], magic=IDX_IMAGES_MAGIC)
    labels = read_idx(tmp_path / FILES["train_labels"], magic=IDX_LABELS_MAGIC)
    assert images.dtype == torch.uint8 and images.shape == (40, 28, 28)
    assert torch.equal(images, torch.from_numpy(arrays["train_images"]))
    assert torch.equal(labels, torch.from_numpy(arrays["train_labels"]))
    plain = tmp_path / "plain-idx1-ubyte"  # uncompressed IDX reads too
    plain.write_bytes(_idx_bytes(arrays["test_labels"]))
    assert torch.equal(read_idx(plain), torch.from_numpy(arrays["test_labels"]))


def test_fake_fashion_mnist_loads(tmp_path: Path) -> None:
    arrays = _fake_fashion(tmp_path)
    d = load_dataset("fashion-mnist", data_dir=tmp_path, val_fraction=0.25)
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (30, 10, 20)
    assert d.train_x.shape[1:] == (1, 28, 28) and d.in_channels == 1 and d.resolution == 28
    assert d.class_names == CLASS_NAMES and d.num_classes == 10 and d.hflip
    assert torch.equal(d.test_x[:, 0], torch.from_numpy(arrays["test_images"]))
    assert torch.bincount(d.val_y, minlength=10).tolist() == [1] * 10
    resized = load_dataset("fashion-mnist", data_dir=tmp_path, resolution=32)
    assert resized.train_x.shape[1:] == (1, 32, 32) and resized.resolution == 32


def test_corrupt_idx_raises_data_error(tmp_path: Path) -> None:
    _fake_fashion(tmp_path)
    target = tmp_path / FILES["train_images"]
    blob = target.read_bytes()
    target.write_bytes(blob[: len(blob) // 2])  # truncated gzip stream
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset("fashion-mnist", data_dir=tmp_path)

    short = tmp_path / "short.gz"  # valid gzip, but fewer bytes than the header declares
    _write_gz(short, _idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10])
    with pytest.raises(DataError, match=r"short\.gz.*truncated"):
        read_idx(short)

    labels = tmp_path / "labels.gz"  # a label file where images are expected
    _write_gz(labels, _idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match="magic"):
        read_idx(labels, magic=IDX_IMAGES_MAGIC)

    junk = tmp_path / "junk"
    junk.write_bytes(b"\x12\x34hello")
    with pytest.raises(DataError, match="junk"):
        read_idx(junk)


def test_missing_folder_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"apt-get install dataset-fashion-mnist.*--data-dir"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "nowhere")
    (tmp_path / FILES["train_images"]).write_bytes(b"")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


@pytest.mark.skipif(not DEFAULT_DIR.is_dir(), reason="Fashion-MNIST is not installed")
def test_real_fashion_mnist() -> None:
    d = load_dataset("fashion-mnist")
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (54000, 6000, 10000)
    assert d.train_x.shape == (54000, 1, 28, 28) and d.train_x.dtype == torch.uint8 and d.train_x.is_contiguous()
    assert d.test_y.dtype == torch.int64
    assert torch.bincount(d.val_y).tolist() == [600] * 10
    assert d.mean[0] == pytest.approx(0.2860, abs=1e-3) and d.std[0] == pytest.approx(0.3530, abs=1e-3)


# ---------------------------------------------------------------- CIFAR-10


def _fake_cifar(root: Path, per_batch: int = 10) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in np.arange(per_batch) % 10],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2 if name != "test_batch" else pickle.HIGHEST_PROTOCOL)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return folder


def test_cifar10_fake_folder(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path)
    d = load_dataset("cifar10", data_dir=tmp_path, val_fraction=0.2)
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (40, 10, 10)
    assert d.train_x.shape[1:] == (3, 32, 32) and d.in_channels == 3 and d.num_classes == 10
    assert d.class_names[0] == "airplane" and d.class_names[-1] == "truck"
    with (folder / "test_batch").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    first = torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32))  # R plane, then G, then B
    assert torch.equal(d.test_x[0], first)
    assert load_dataset("cifar10", data_dir=folder).test_x.shape == (10, 3, 32, 32)  # the folder itself works too


def test_cifar10_missing_and_malicious(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("cifar10")
    folder = _fake_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    with (folder / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": Evil()}, f)
    with pytest.raises(DataError, match=r"data_batch_3.*refusing"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---------------------------------------------------------------- image folders


def _write_tree(root: Path, classes: list[str], per_class: int = 5) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (20 + 3 * i, 16 + 2 * k)  # varied sizes and aspect ratios
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            mode = "L" if i % 2 else "RGB"
            Image.fromarray(pixels).convert(mode).save(root / name / f"img{i}.png")


def test_imagefolder_loads(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["cat", "dog", "eel"])
    d = load_dataset("imagefolder", data_dir=tmp_path, resolution=12, val_fraction=0.25)
    assert d.class_names == ("cat", "dog", "eel") and d.in_channels == 3 and d.resolution == 12
    assert len(d.test_y) == 3 and len(d.train_y) + len(d.val_y) == 12
    assert d.train_x.shape[1:] == (3, 12, 12) and d.train_x.dtype == torch.uint8
    same = load_dataset("imagefolder", data_dir=tmp_path, resolution=12, seed=5)
    assert torch.equal(same.test_x, d.test_x)  # the test split does not depend on the seed
    assert load_dataset("imagefolder", data_dir=tmp_path).resolution == 32


def test_imagefolder_train_test_layout(tmp_path: Path) -> None:
    _write_tree(tmp_path / "train", ["a", "b"], per_class=4)
    _write_tree(tmp_path / "test", ["a", "b"], per_class=2)
    d = load_dataset("imagefolder", data_dir=tmp_path, resolution=8, val_fraction=0.25)
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (6, 2, 4)


def test_imagefolder_errors(tmp_path: Path) -> None:
    _write_tree(tmp_path / "one", ["only"])
    with pytest.raises(DataError, match="at least 2"):
        load_dataset("imagefolder", data_dir=tmp_path / "one")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("imagefolder", data_dir=tmp_path / "nowhere")
    _write_tree(tmp_path / "bad", ["a", "b"], per_class=2)
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        load_dataset("imagefolder", data_dir=tmp_path / "bad")


# ---------------------------------------------------------------- registry, splits, sampling


def test_registry_and_options() -> None:
    assert set(DATASETS) == {"fashion-mnist", "cifar10", "imagefolder", "synthetic"}
    with pytest.raises(ConfigError, match="fashion-mnist"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="train_size"):
        load_dataset("synthetic", bogus=1)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("synthetic", val_fraction=1.0)


def test_synthetic_is_deterministic_and_normalizes() -> None:
    a = load_dataset("synthetic", train_size=200, test_size=40, num_classes=4, channels=2, resolution=12)
    b = load_dataset("synthetic", train_size=200, test_size=40, num_classes=4, channels=2, resolution=12)
    assert a.name == "synthetic" and a.train_x.shape[1:] == (2, 12, 12) and a.num_classes == 4
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    z = a.normalize(a.train_x)
    assert z.dtype == torch.float32
    assert z.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (z.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1
    assert a.to("cpu") is a


def test_splits_disjoint_balanced_seeded() -> None:
    labels = torch.arange(200) % 4
    keep, held = stratified_split(labels, 0.1, seed=3)
    assert len(held) == 20 and len(keep) == 180
    assert not set(keep.tolist()) & set(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(200))
    assert torch.bincount(labels[held]).tolist() == [5, 5, 5, 5]
    assert torch.equal(stratified_split(labels, 0.1, seed=3)[1], held)
    assert not torch.equal(stratified_split(labels, 0.1, seed=4)[1], held)

    a = load_dataset("synthetic", train_size=200, seed=1)
    b = load_dataset("synthetic", train_size=200, seed=1)
    c = load_dataset("synthetic", train_size=200, seed=2)
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)
    assert torch.equal(a.test_x, c.test_x)  # the test split is never touched by the seed
    assert torch.bincount(a.val_y).tolist() == [5, 5, 5, 5]
    train_rows = {row.numpy().tobytes() for row in a.train_x}
    assert not any(row.numpy().tobytes() in train_rows for row in a.val_x)


def test_stratified_split_keeps_small_classes() -> None:
    labels = torch.tensor([0] * 50 + [1] * 7 + [2])
    keep, held = stratified_split(labels, 0.2, seed=0)
    assert len(held) == round(0.2 * 58)
    assert 2 in labels[keep].tolist()  # a singleton class stays in training
    assert torch.bincount(labels[held], minlength=3)[0] >= 9


def test_balanced_indices() -> None:
    labels = torch.arange(1000) % 10
    idx = balanced_indices(labels, 95, seed=0)
    assert idx.dtype == torch.int64 and len(idx) == 95 and len(set(idx.tolist())) == 95
    counts = torch.bincount(labels[idx], minlength=10)
    assert int(counts.max() - counts.min()) <= 1
    assert torch.equal(idx, balanced_indices(labels, 95, seed=0))
    assert not torch.equal(idx, balanced_indices(labels, 95, seed=1))
    skewed = torch.tensor([0] * 100 + [1] * 3 + [2] * 100)
    counts = torch.bincount(skewed[balanced_indices(skewed, 60, seed=0)])
    assert counts.tolist() == [29, 3, 28] or counts.tolist() == [28, 3, 29]
    assert len(balanced_indices(labels, 1000, seed=0)) == 1000
    with pytest.raises(DataError):
        balanced_indices(labels, 1001, seed=0)


# ---------------------------------------------------------------- augmentation


def _reference_crop(x: torch.Tensor, dy: int, dx: int, pad: int, mode: str) -> torch.Tensor:
    padded = F.pad(x.float().unsqueeze(0), (pad,) * 4, mode="reflect" if mode == "reflect" else "constant")[0]
    h, w = x.shape[-2:]
    return padded[:, pad + dy : pad + dy + h, pad + dx : pad + dx + w].to(x.dtype)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_augment_matches_pad_and_crop(mode: str) -> None:
    x = torch.randint(0, 256, (16, 3, 10, 10), dtype=torch.uint8)
    out = random_crop_flip(x, generator=torch.Generator().manual_seed(7), padding=2, hflip=True, mode=mode)
    assert out.shape == x.shape and out.dtype == torch.uint8
    gen = torch.Generator().manual_seed(7)  # replay the draws the function makes
    dy = torch.randint(-2, 3, (16, 1), generator=gen).flatten().tolist()
    dx = torch.randint(-2, 3, (16, 1), generator=gen).flatten().tolist()
    flip = (torch.rand(16, 1, generator=gen) < 0.5).flatten().tolist()
    for i in range(16):
        expected = _reference_crop(x[i], dy[i], dx[i], 2, mode)
        assert torch.equal(out[i], expected.flip(-1) if flip[i] else expected)
    assert any(flip) and not all(flip)


def test_augment_dtype_determinism_and_identity() -> None:
    x = torch.rand(8, 1, 28, 28) * 255
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(1), padding=2, hflip=True)
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(1), padding=2, hflip=True)
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(2), padding=2, hflip=True)
    assert a.dtype == torch.float32 and a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    same = random_crop_flip(x, generator=torch.Generator().manual_seed(1), padding=0, hflip=False)
    assert torch.equal(same, x)
    flipped = random_crop_flip(x, generator=torch.Generator().manual_seed(1), padding=0, hflip=True)
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x, strict=True))
    assert (default_padding(28), default_padding(32), default_padding(64)) == (2, 4, 8)
