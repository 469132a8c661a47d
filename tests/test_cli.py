"""End-to-end tests of the `nas` command line through ``nas.cli.main``: clean errors (exit 2) and real outputs."""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import pytest
import torch

from nas.cli import COMMANDS, main

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"
BOTTLENECK = SPACES / "bottleneck.yaml"
TINY = "stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/basic_d1_s2_c16_k3_relu_bn"
FAST = ["--threads", "1", "--set", "train_images=128", "--set", "epochs=1"]
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
METRICS = ("accuracy", "polysemanticity", "overlap", "outliers", "dead_fraction")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``nas ARGV``: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail cleanly: exit 2, one ``error: ...`` line last on stderr, no traceback."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def space_variant(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of bottleneck.yaml with ``old`` replaced by ``new`` (once)."""
    text = BOTTLENECK.read_text()
    assert old in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


# ---------------------------------------------------------------- errors: space files and budgets


def test_malformed_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nstages: [\n  - {stride: 1\n")
    msg = run_error(capsys, "space", "validate", path)
    assert "broken.yaml" in msg and "YAML" in msg


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("basic, bottleneck", "basic, bogus", ("unknown block 'bogus'", "choices.block", "nodepth")),
        ("relu, gelu", "relu, swoosh", ("unknown activation 'swoosh'", "choices.activation", "solu")),
        ("depth: [1, 2],", "depth: 0,", ("stages[0].depth", "positive")),
    ],
    ids=["unknown-block", "unknown-activation", "depth-0"],
)
def test_invalid_space(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, words: tuple[str, ...]
) -> None:
    msg = run_error(capsys, "space", "validate", space_variant(tmp_path, old, new))
    assert "variant.yaml" in msg
    for word in words:
        assert word in msg


@pytest.mark.parametrize("budget", ["abc", "-1"])
def test_unreadable_budget(capsys: pytest.CaptureFixture[str], budget: str) -> None:
    msg = run_error(capsys, "space", "sample", BOTTLENECK, "--budget", budget, "-n", "2")
    assert repr(budget) in msg and "1.5M" in msg


def test_budget_below_smallest_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    msg = run_error(capsys, "space", "sample", BOTTLENECK, "--budget", "1k", "-n", "2")
    assert "no width fits a budget of 1,000 parameters" in msg


# ---------------------------------------------------------------- errors: data, fidelity, divergence


def test_missing_data_folder(capsys: pytest.CaptureFixture[str]) -> None:
    msg = run_error(capsys, "eval", TINY, "--data-dir", "/nonexistent", *FAST)
    assert "Fashion-MNIST not found" in msg and "/nonexistent does not exist" in msg


def test_corrupt_idx_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in FASHION_FILES:
        whole = gzip.compress(b"\x00\x00\x08\x03" + bytes(64))
        (tmp_path / name).write_bytes(whole[: len(whole) // 2])  # truncated gzip stream
    msg = run_error(capsys, "eval", TINY, "--data-dir", tmp_path, *FAST)
    assert "truncated or corrupt" in msg and "idx3-ubyte.gz" in msg


def test_imagefolder_with_one_class(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "cat").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "cat" / f"{i}.png")
    msg = run_error(capsys, "eval", TINY, "--dataset", "imagefolder", "--data-dir", tmp_path, *FAST)
    assert "1 class folder" in msg and "at least 2" in msg


def test_unknown_fidelity(capsys: pytest.CaptureFixture[str]) -> None:
    msg = run_error(capsys, "eval", TINY, "--dataset", "synthetic", "--fidelity", "bogus", "--threads", "1")
    assert "unknown fidelity 'bogus'" in msg and "quick" in msg


@pytest.mark.parametrize("lr", ["1e12", "1.0e+12"])
def test_absurd_learning_rate_diverges(capsys: pytest.CaptureFixture[str], lr: str) -> None:
    # 256 images = 4 steps: AdamW's decoupled decay scales the weights by (1 - lr * wd) per step, and the loss
    # turns NaN at step 3. With 128 images (2 steps) the loss stays finite (~1e25) and eval exits 0.
    msg = run_error(capsys, "eval", TINY, "--dataset", "synthetic", "--threads", "1",
                    "--set", f"lr={lr}", "--set", "train_images=256", "--set", "epochs=1")
    assert re.search(r"diverged at step \d+", msg), msg


# ---------------------------------------------------------------- space commands


def test_validate_every_shipped_space(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(SPACES.rglob("*.yaml"))
    assert len(files) >= 6
    code, out, err = run(capsys, "space", "validate", *files)
    assert code == 0, err
    for path in files:
        assert f"{path}: ok" in out


def test_count(capsys: pytest.CaptureFixture[str]) -> None:
    from nas.space import Space

    size = Space.from_file(str(BOTTLENECK)).size()
    assert size > 1000
    code, out, _ = run(capsys, "space", "count", BOTTLENECK)
    assert code == 0 and out.strip() == f"{size:,}"
    code, out, _ = run(capsys, "space", "count", BOTTLENECK, "--json")
    assert code == 0 and json.loads(out) == {"name": "bottleneck", "size": size}


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "space", "show", BOTTLENECK, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["name"] == "bottleneck" and info["size"] > 1000
    assert [s["stride"] for s in info["stages"]] == [1, 2, 2, 2]
    assert info["stages"][2]["depth"] == [1, 2, 3, 4]
    assert len(info["network_choices"]["block"]) == 7 and "solu" in info["network_choices"]["activation"]
    assert info["budget"] == {"params": 1_500_000, "tolerance": 0.05, "divisor": 8}


def test_sample_json_in_budget_and_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("space", "sample", BOTTLENECK, "--budget", "1.5M", "-n", "20", "--seed", "0", "--json")
    code, out, _ = run(capsys, *argv)
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 20
    assert len({r["hash"] for r in rows}) == 20 and len({r["arch"] for r in rows}) == 20
    assert all(1_425_000 <= r["params"] <= 1_500_000 for r in rows), [r["params"] for r in rows]
    code, again, _ = run(capsys, *argv)
    assert code == 0 and json.loads(again) == rows
    code, other, _ = run(capsys, *argv[:-2], "1", "--json")
    assert code == 0 and json.loads(other) != rows


# ---------------------------------------------------------------- describe and eval


@pytest.mark.parametrize(
    ("name", "params", "macs"),
    [
        ("resnet18", 11_689_512, 1.82e9),
        ("mobilenet_v2", 3_504_872, None),
        # torchvision's documented GFLOPS (MACs): 0.057, 0.217, 0.386; fvcore also counts SE's scaling products
        ("mobilenet_v3_small", 2_542_856, 0.057e9),
        ("mobilenet_v3_large", 5_483_032, 0.217e9),
        ("efficientnet_b0", 5_288_548, 0.386e9),
    ],
)
def test_describe_baselines(capsys: pytest.CaptureFixture[str], name: str, params: int, macs: float | None) -> None:
    code, out, err = run(capsys, "describe", SPACES / "baselines" / f"{name}.yaml", "--json", "--no-latency")
    assert code == 0, err
    info = json.loads(out)
    assert info["params"] == params
    assert info["input"] == {"channels": 3, "resolution": 224, "classes": 1000}
    assert info["latency_ms"] is None and info["macs"] > 0
    if macs is not None:
        assert info["macs"] == pytest.approx(macs, rel=0.01 if name == "resnet18" else 0.07)


def test_eval_synthetic_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "eval", TINY, "--dataset", "synthetic", "--json", *FAST,
                         "--set", "probe_images=40", "--set", "val_images=100")
    assert code == 0, err
    m = json.loads(out)
    assert m["arch"] == TINY and m["dataset"] == "synthetic" and m["epochs"] == 1
    assert m["fidelity"].startswith("quick+")
    for key in (*METRICS, "train_images_per_s", "train_s", "metrics_s", "wall_s", "final_loss"):
        assert isinstance(m[key], float) and math.isfinite(m[key]), (key, m[key])
    assert 0.0 <= m["accuracy"] <= 1.0
    assert isinstance(m["params"], int) and m["params"] > 0 and m["macs"] > 0
    assert [layer["name"] for layer in m["layers"]] == ["stages.0.0", "stages.1.0"]
    for layer in m["layers"]:
        assert all(k in layer for k in METRICS[1:])


@pytest.mark.parametrize("verb", [None, *COMMANDS])
def test_help_prints_percent_signs_once(capsys: pytest.CaptureFixture[str], verb: str | None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*([verb] if verb else []), "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith("usage: nas")
    assert "%%" not in out  # argparse %-formats argument help, but prints a description as written
