"""Hostile and careless input to every verb of the `nas` command line, run in-process through ``nas.cli.main``.

Every case must end as the README promises: exit code 2, exactly one ``error: …`` line on stderr of at
most 400 characters, no traceback, in seconds, and no new file or folder (the tree of the working folder
and the top level of the repository's results/ are snapshotted before and after; fixture files are made
before the first snapshot). The library layer below has its own corpus (tests/test_hostile_inputs_lower.py).

A case is a function of the working folder that writes its fixtures and returns the command line; a
case that needs a folder to be unreadable returns the paths to deny as well (permission is taken away by
refusing the file-system calls on them, as ``chmod 000`` would, since ``chmod`` does not stop root).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nas.cli import main
from nas.space import Budget

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
BOTTLENECK = ROOT / "search_spaces" / "bottleneck.yaml"
RESNET18 = ROOT / "search_spaces" / "baselines" / "resnet18.yaml"
MOBILE = ROOT / "search_spaces" / "mobile.yaml"
V3_SMALL = ROOT / "search_spaces" / "baselines" / "mobilenet_v3_small.yaml"
TINY = "stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn/basic_d1_s2_c16_k3_relu_bn"
HUGE_WIDTH = "stem_c16_k3_s1/basic_d1_s1_c99999999_k3_relu_bn"
WIDE = "stem_c16_k3_s1/basic_d2_s1_c40000_k3_relu_bn"
LONG_ARCH = "/".join(["stem_c8_k3_s1", *["basic_d1_s1_c8_k3_relu_bn"] * 200])  # ~5 KB
GARBAGE = "x" * 100_000
MAX_LINE = 400
MAX_SECONDS = 60.0  # a hang guard (a refusal that waits on a lock or starts training), not a speed target:
# refusals take 0.1–1 s here, yet `search --budget 1e12` once took 13 s in the full suite (1.1 s alone)

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
SYN = ["--dataset", "synthetic"]
FAST = ["--set", "train_images=64", "--set", "epochs=1", "--threads", "1"]

Argv = list[str]
Case = Callable[[Path], "Argv | tuple[Argv, list[Path]]"]


# ---------------------------------------------------------------- fixtures


def _file(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _space(tmp: Path, old: str, new: str, source: Path = BOTTLENECK) -> str:
    text = source.read_text()
    assert old in text, old
    return _file(tmp, "variant.yaml", text.replace(old, new, 1))


def _mobile(tmp: Path, old: str, new: str) -> Argv:
    """`nas space validate` of search_spaces/mobile.yaml with ``old`` replaced by ``new``."""
    return ["space", "validate", _space(tmp, old, new, MOBILE)]


def _images(tmp: Path, classes: list[str], per_class: int = 2) -> str:
    from PIL import Image

    root = tmp / "img"
    root.mkdir()
    for name in classes:
        (root / name).mkdir()
        for i in range(per_class):
            Image.new("RGB", (8, 8), (i * 90, 0, 0)).save(root / name / f"{i}.png")
    return str(root)


def _run(tmp: Path, n: int = 8, name: str = "run", **config: Any) -> Path:
    from nas.testing import make_run

    return make_run(tmp / name, n, **config).root


def _run_yaml(tmp: Path, content: str | bytes) -> str:
    root = _run(tmp)
    (root / "run.yaml").unlink()
    _file(root, "run.yaml", content)
    return str(root)


def _first_metrics(root: Path) -> Path:
    return sorted((root / "trials").glob("*/metrics.json"))[0]


def _truncated_metrics(tmp: Path) -> str:
    root = _run(tmp)
    path = _first_metrics(root)
    path.write_text(path.read_text()[:40])
    return str(root)


def _metrics_as(tmp: Path, content: str | bytes) -> str:
    root = _run(tmp)
    path = _first_metrics(root)
    path.unlink()
    _file(path.parent, path.name, content)
    return str(root)


def _fashion(tmp: Path, content: bytes) -> str:
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        _file(tmp / "fm", name, content)
    return str(tmp / "fm")


def _metrics_fifo(tmp: Path) -> str:
    root = _run(tmp)
    path = _first_metrics(root)
    path.unlink()
    os.mkfifo(path)  # reading it would block for ever
    return str(root)


def _metrics_edit(tmp: Path, **fields: Any) -> str:
    root = _run(tmp)
    path = _first_metrics(root)
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return str(root)


def _folder(tmp: Path, name: str) -> str:
    (tmp / name).mkdir()
    return str(tmp / name)


def _run_yaml_is_dir(tmp: Path) -> str:
    root = _run(tmp)
    (root / "run.yaml").unlink()
    (root / "run.yaml").mkdir()
    (root / "run.yaml" / "x").write_text("x")
    return str(root)


def _trials_is_file(tmp: Path) -> str:
    import shutil

    root = _run(tmp)
    shutil.rmtree(root / "trials")
    (root / "trials").write_text("not a folder")
    return str(root)


def _metrics_is_dir(tmp: Path) -> str:
    root = _run(tmp)
    path = _first_metrics(root)
    path.unlink()
    path.mkdir()
    return str(root)


def _yaml_edit(tmp: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    import yaml

    root = _run(tmp)
    data = yaml.safe_load((root / "run.yaml").read_text())
    edit(data)
    (root / "run.yaml").write_text(yaml.safe_dump(data))
    return str(root)


def _laughs_inside(tmp: Path) -> str:
    """A valid run.yaml whose ``versions`` mapping holds a billion-laughs alias bomb (9**9 strings when expanded)."""
    root = _run(tmp)
    text = (root / "run.yaml").read_text()
    bomb = "".join(f"  {k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True))
    head, _, tail = text.partition("versions:\n")
    (root / "run.yaml").write_text(head + "versions:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + bomb
                                   + tail)
    return str(root)


class _Payload:
    """Pickles to a call of os.system: loading it must be refused, and the marker file never appear."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _evil_pickle(path: Path) -> None:
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Payload(path.parent / "PWNED")))


def _evil_checkpoint(tmp: Path) -> str:
    from nas.space import Architecture

    root = _run(tmp)
    _evil_pickle(root / "retrain" / Architecture.parse(TINY).semantic_hash / "checkpoint.pt")
    return str(root)


def _corrupt_retrain_metrics(tmp: Path) -> str:
    from nas.space import Architecture

    root = _run(tmp)
    _file(root / "retrain" / Architecture.parse(TINY).semantic_hash, "metrics.json", "{")
    return str(root)


def _evil_cifar(tmp: Path) -> str:
    folder = tmp / "cifar-10-batches-py"
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        _evil_pickle(folder / name)
    return str(folder)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data[key] = value

    return edit


def _edit_fidelity(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["fidelity"][key] = value

    return edit


def _search(tmp: Path, *extra: str) -> Argv:
    return ["search", *SYN, "--trials", "2", "--run", "r", *extra]


# ---------------------------------------------------------------- the corpus

CASES: dict[str, Case] = {
    # ---- command line itself (argparse): usage errors are one line too
    "no-verb": lambda tmp: [],
    "unknown-verb": lambda tmp: ["frobnicate"],
    "unknown-verb-huge": lambda tmp: [GARBAGE],
    "space-no-action": lambda tmp: ["space"],
    "unknown-option": lambda tmp: ["describe", TINY, "--bogus"],
    "unknown-options-huge": lambda tmp: ["describe", TINY, *(["--x" + "y" * 100] * 50)],
    "int-option-not-int": lambda tmp: ["eval", TINY, "--seed", "abc"],
    "int-option-huge-text": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", GARBAGE],
    "int-option-newline": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", "1\n2"],
    "float-option-not-float": lambda tmp: ["describe", TINY, "--tolerance", "lots"],
    "choice-option-wrong": lambda tmp: ["analyze", "x", "--format", "xml"],
    "choice-option-huge": lambda tmp: ["eval", TINY, "--precision", GARBAGE],
    "exclusive-options": lambda tmp: ["retrain", str(_run(tmp)), "--top", "2", "--trial", "1"],
    "missing-positional": lambda tmp: ["describe"],
    # ---- space validate/show/count: files that cannot be a space
    "validate-billion-laughs": lambda tmp: ["space", "validate", _file(tmp, "laughs.yaml", BILLION_LAUGHS)],
    "count-billion-laughs": lambda tmp: ["space", "count", _file(tmp, "laughs.yaml", BILLION_LAUGHS)],
    "show-billion-laughs": lambda tmp: ["space", "show", _file(tmp, "laughs.yaml", BILLION_LAUGHS)],
    "validate-missing": lambda tmp: ["space", "validate", "nope.yaml"],
    "validate-directory": lambda tmp: ["space", "validate", str(tmp)],
    "validate-name-too-long": lambda tmp: ["space", "validate", "a" * 5000 + ".yaml"],
    "validate-component-too-long": lambda tmp: ["space", "validate", "a" * 300 + ".yaml"],
    "validate-nul-in-name": lambda tmp: ["space", "validate", "space\0.yaml"],
    "validate-binary": lambda tmp: ["space", "validate", _file(tmp, "bin.yaml", bytes(range(256)) * 64)],
    "validate-empty": lambda tmp: ["space", "validate", _file(tmp, "empty.yaml", "")],
    "validate-list-document": lambda tmp: ["space", "validate", _file(tmp, "list.yaml", "- 1\n- 2\n")],
    "validate-huge-unknown-key": lambda tmp: ["space", "validate", _file(tmp, "k.yaml", "k" * 50_000 + ": 1\n")],
    "validate-huge-block-name": lambda tmp: ["space", "validate", _space(tmp, "basic, ", "b" * 100_000 + ", ")],
    "validate-second-file-bad": lambda tmp: ["space", "validate", str(BOTTLENECK), "nope.yaml"],
    "validate-stem-even-kernel": lambda tmp: ["space", "validate", _file(
        tmp, "stem.yaml", "stem: {width: 16, kernel: 4, stride: 9}\nstages: [{depth: 1, width: 8}]\n")],
    "validate-stage-stride-3": lambda tmp: ["space", "validate", _file(
        tmp, "stride.yaml", "stages: [{depth: 1, width: 8, stride: 3}]\n")],
    "validate-fullwidth-digits": lambda tmp: ["space", "validate", _file(
        tmp, "fw.yaml", "stages: [{depth: 1, width: '１６'}]\n")],
    "show-huge-unknown-key": lambda tmp: ["space", "show", _file(tmp, "k.yaml", "k" * 50_000 + ": 1\n")],
    "count-directory": lambda tmp: ["space", "count", str(tmp)],
    "count-arch-string": lambda tmp: ["space", "count", TINY],
    "show-arch-string-long": lambda tmp: ["space", "show", LONG_ARCH],
    # ---- space sample: counts, budgets, shapes
    "sample-n-0": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", "0"],
    "sample-n-negative": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", "-5"],
    "sample-n-huge": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", str(10**30)],
    "sample-budget-infeasible": lambda tmp: ["space", "sample", str(BOTTLENECK), "--budget", "10"],
    "sample-budget-infeasible-json": lambda tmp: ["space", "sample", str(BOTTLENECK), "--budget", "10", "--json"],
    "sample-budget-absurd": lambda tmp: ["space", "sample", str(BOTTLENECK), "--budget", "1e12"],
    "sample-budget-words": lambda tmp: ["space", "sample", str(BOTTLENECK), "--budget", "lots"],
    "sample-budget-nan": lambda tmp: ["space", "sample", str(BOTTLENECK), "--budget", "nan"],
    "sample-tolerance-nan": lambda tmp: ["space", "sample", str(BOTTLENECK), "--tolerance", "nan"],
    "sample-tolerance-inf": lambda tmp: ["space", "sample", str(BOTTLENECK), "--tolerance", "inf"],
    "sample-tolerance-negative": lambda tmp: ["space", "sample", str(BOTTLENECK), "--tolerance", "-0.1"],
    "sample-divisor-0": lambda tmp: ["space", "sample", str(BOTTLENECK), "--divisor", "0"],
    "sample-resolution-0": lambda tmp: ["space", "sample", str(BOTTLENECK), "--resolution", "0"],
    "sample-classes-1": lambda tmp: ["space", "sample", str(BOTTLENECK), "--classes", "1"],
    "sample-in-channels-0": lambda tmp: ["space", "sample", str(BOTTLENECK), "--in-channels", "0"],
    "sample-classes-huge": lambda tmp: ["space", "sample", str(BOTTLENECK), "--classes", str(10**20)],
    "sample-resolution-huge-check": lambda tmp: ["space", "sample", str(BOTTLENECK), "-n", "1", "--resolution",
                                                 "100000", "--check"],
    "sample-seed-negative": lambda tmp: ["space", "sample", str(BOTTLENECK), "--seed", "-1"],
    "sample-seed-huge": lambda tmp: ["space", "sample", str(BOTTLENECK), "--seed", str(2**80)],
    "sample-arch-string": lambda tmp: ["space", "sample", LONG_ARCH],
    "sample-missing-yaml": lambda tmp: ["space", "sample", "missing.yaml"],
    # ---- describe: impossible networks, strings taken for paths, silently accepted values
    "describe-resolution-0": lambda tmp: ["describe", TINY, "--resolution", "0", "--no-latency"],
    "describe-resolution-negative": lambda tmp: ["describe", TINY, "--resolution", "-3", "--no-latency"],
    "describe-in-channels-0": lambda tmp: ["describe", TINY, "--in-channels", "0", "--no-latency"],
    "describe-classes-0": lambda tmp: ["describe", TINY, "--classes", "0", "--no-latency"],
    "describe-resolution-huge": lambda tmp: ["describe", TINY, "--resolution", "100000"],
    "describe-huge-width": lambda tmp: ["describe", HUGE_WIDTH],
    "describe-wide": lambda tmp: ["describe", WIDE, "--resolution", "224"],
    "describe-budget-absurd": lambda tmp: ["describe", str(RESNET18), "--budget", "1e12"],
    "describe-budget-tiny": lambda tmp: ["describe", str(RESNET18), "--budget", "10"],
    "describe-budget-negative": lambda tmp: ["describe", str(RESNET18), "--budget", "-1M"],
    "describe-budget-huge-int": lambda tmp: ["describe", str(RESNET18), "--budget", "9" * 5000],
    "describe-divisor-negative": lambda tmp: ["describe", str(RESNET18), "--budget", "1M", "--divisor", "-8"],
    "describe-tolerance-1": lambda tmp: ["describe", str(RESNET18), "--budget", "1M", "--tolerance", "1"],
    "describe-arch-too-long": lambda tmp: ["describe", LONG_ARCH + "_bogus"],
    "describe-garbage": lambda tmp: ["describe", GARBAGE],
    "describe-empty": lambda tmp: ["describe", ""],
    "describe-nul": lambda tmp: ["describe", TINY + "\0"],
    "describe-newlines": lambda tmp: ["describe", "stem_c8\nbasic\nerror: fake"],
    "describe-fullwidth-digits": lambda tmp: ["describe", "stem_c１６_k3_s1/basic_d1_s1_c16_k3_relu_bn"],
    "describe-stride-3": lambda tmp: ["describe", "stem_c8_k3_s1/basic_d1_s3_c16_k3_relu_bn"],
    "describe-even-kernel": lambda tmp: ["describe", "stem_c8_k3_s1/basic_d1_s1_c16_k4_relu_bn"],
    "describe-head-c0": lambda tmp: ["describe", TINY + "/head_c0"],
    "describe-directory": lambda tmp: ["describe", str(tmp)],
    "describe-space-not-one-point": lambda tmp: ["describe", str(BOTTLENECK)],
    "describe-run-folder": lambda tmp: ["describe", str(_run(tmp))],
    "describe-rtl-unicode": lambda tmp: ["describe", "\u202estem_c8_k3_s1\u202c/basic"],
    "describe-budget-underscores": lambda tmp: ["describe", str(RESNET18), "--budget", "1_000_000"],
    "describe-budget-overflow": lambda tmp: ["describe", str(RESNET18), "--budget", "1e400"],
    "describe-budget-zero": lambda tmp: ["describe", str(RESNET18), "--budget", "0"],
    "describe-budget-fullwidth": lambda tmp: ["describe", str(RESNET18), "--budget", "１M"],
    "describe-tolerance-tiny": lambda tmp: ["describe", str(RESNET18), "--budget", "1M", "--tolerance", "1e-300"],
    "describe-resolution-3": lambda tmp: ["describe", TINY, "--resolution", "3", "--no-latency"],
    "describe-space-input-huge": lambda tmp: ["describe", _space(tmp, "resolution: 224", "resolution: 100000",
                                                                 RESNET18)],
    "describe-space-classes-huge": lambda tmp: ["describe", _space(tmp, "classes: 1000", f"classes: {10**40}",
                                                                   RESNET18)],
    "validate-thousand-stages": lambda tmp: ["space", "validate", _file(
        tmp, "deep.yaml", "stages:\n" + "  - {depth: 1, width: 8}\n" * 1000)],
    "sample-space-budget-huge": lambda tmp: ["space", "sample", _space(tmp, "params: 1.5M", "params: 1e13")],
    # squeeze-excitation, expanded widths, per-block lists, the hidden head layer (search_spaces/mobile.yaml)
    "describe-se-ratio-big": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se1.5"],
    "describe-se-ratio-negative": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se-0.25"],
    "describe-se-unknown-part": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25-tanh"],
    "describe-se-twice": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25_se0.5"],
    "describe-expansion-below-1": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e0.5_k3_relu_dw_bn"],
    "describe-expansion-long-decimal": lambda tmp: ["describe", "stem_c8/inverted_d1_s1_c16_e3." + "6" * 5000],
    "describe-head-hidden-0": lambda tmp: ["describe", TINY + "/head_h0"],
    "describe-stem-two-activations": lambda tmp: ["describe", "stem_c8_relu_silu/basic_d1_s1_c16_k3_relu_bn"],
    "mobile-se-ratio-big": lambda tmp: _mobile(tmp, "values: [0, 0.25]", "values: [0, 1.25]"),
    "mobile-se-ratio-zero-only-negative": lambda tmp: _mobile(tmp, "values: [0, 0.25]", "values: [-0.25]"),
    "mobile-se-form-searched": lambda tmp: _mobile(tmp, "se_gate: hardsigmoid", "se_gate: [hardsigmoid, sigmoid]"),
    "mobile-se-gate-unknown": lambda tmp: _mobile(tmp, "se_gate: hardsigmoid", "se_gate: softmax"),
    "mobile-se-unknown-key": lambda tmp: _mobile(tmp, "se_gate: hardsigmoid",
                                                 "se_gate: hardsigmoid\n  se_ratio: 0.25"),
    "mobile-expansion-fraction-below-1": lambda tmp: _mobile(tmp, "values: [2.5, 3.67, 4.5, 6]",
                                                             "values: [0.5, 3.67]"),
    "mobile-expansion-string": lambda tmp: _mobile(tmp, "values: [2.5, 3.67, 4.5, 6]", "values: ['3.67']"),
    "mobile-head-hidden-negative": lambda tmp: _mobile(tmp, "hidden: 1024", "hidden: -1"),
    "mobile-stem-activation-unknown": lambda tmp: _mobile(tmp, "activation: hardswish}", "activation: mish}"),
    "v3-expanded-below-input": lambda tmp: ["describe", _space(tmp, "{expanded: 72}", "{expanded: 8}", V3_SMALL)],
    "v3-expanded-and-expansion": lambda tmp: ["describe", _space(tmp, "{expanded: 72}", "{expanded: 72, expansion: 3}",
                                                                 V3_SMALL)],
    "v3-blocks-empty": lambda tmp: ["describe", _space(tmp, "blocks: [{expanded: 72}, {expanded: 88}]", "blocks: []",
                                                       V3_SMALL)],
    "v3-blocks-not-a-list": lambda tmp: ["describe", _space(
        tmp, "blocks: [{expanded: 72}, {expanded: 88}]", "blocks: 2", V3_SMALL)],
    "v3-block-stride": lambda tmp: ["describe", _space(
        tmp, "blocks: [{expanded: 72}, {expanded: 88}]", "blocks: [{expanded: 72}, {expanded: 88, stride: 2}]",
        V3_SMALL)],
    "v3-blocks-depth-mismatch": lambda tmp: ["describe", _space(
        tmp, "blocks: [{expanded: 72}, {expanded: 88}]", "depth: 3\n    blocks: [{expanded: 72}, {expanded: 88}]",
        V3_SMALL)],
    "v3-blocks-too-many": lambda tmp: ["describe", _space(
        tmp, "blocks: [{expanded: 72}, {expanded: 88}]", "blocks: [" + ", ".join(["{expanded: 72}"] * 40) + "]",
        V3_SMALL)],
    "v3-se-of-unknown": lambda tmp: ["describe", _space(tmp, "se_of: expanded", "se_of: output", V3_SMALL)],
    "describe-missing-yaml": lambda tmp: ["describe", "no/such/space.yaml"],
    # ---- eval: devices, threads, fidelities, data
    "eval-device-tpu": lambda tmp: ["eval", TINY, *SYN, "--device", "tpu", *FAST],
    "eval-device-empty": lambda tmp: ["eval", TINY, *SYN, "--device", "", *FAST],
    "eval-device-cuda-index": lambda tmp: ["eval", TINY, *SYN, "--device", "cuda:99", *FAST],
    "eval-threads-0": lambda tmp: ["eval", TINY, *SYN, "--threads", "0"],
    "eval-threads-negative": lambda tmp: ["eval", TINY, *SYN, "--threads", "-4"],
    "eval-threads-huge": lambda tmp: ["eval", TINY, *SYN, "--threads", str(10**12)],
    "eval-seed-negative": lambda tmp: ["eval", TINY, *SYN, "--seed", "-1", *FAST],
    "eval-seed-huge": lambda tmp: ["eval", TINY, *SYN, "--seed", str(2**70), *FAST],
    "eval-epochs-0": lambda tmp: ["eval", TINY, *SYN, "--epochs", "0"],
    "eval-epochs-negative": lambda tmp: ["eval", TINY, *SYN, "--epochs", "-2"],
    "eval-fidelity-unknown": lambda tmp: ["eval", TINY, *SYN, "--fidelity", "ludicrous"],
    "eval-set-unknown-field": lambda tmp: ["eval", TINY, *SYN, "--set", "bogus=1"],
    "eval-set-no-equals": lambda tmp: ["eval", TINY, *SYN, "--set", "epochs"],
    "eval-set-lr-nan": lambda tmp: ["eval", TINY, *SYN, "--set", "lr=nan"],
    "eval-set-train-images-0": lambda tmp: ["eval", TINY, *SYN, "--set", "train_images=0"],
    "eval-set-huge-value": lambda tmp: ["eval", TINY, *SYN, "--set", "lr=" + "9" * 100_000],
    "eval-set-yaml-alias": lambda tmp: ["eval", TINY, *SYN, "--set", "lr=&a [*a, *a]"],
    "eval-dataset-unknown": lambda tmp: ["eval", TINY, "--dataset", "foo"],
    "eval-data-dir-missing": lambda tmp: ["eval", TINY, "--data-dir", "missing"],
    "eval-data-dir-is-file": lambda tmp: ["eval", TINY, "--data-dir", _file(tmp, "f", "x")],
    "eval-data-dir-corrupt-idx": lambda tmp: ["eval", TINY, "--data-dir", _fashion(tmp, b"not gzip")],
    "eval-data-dir-partial-idx": lambda tmp: ["eval", TINY, "--data-dir", str(Path(_file(
        tmp, "fm/train-images-idx3-ubyte.gz", b"not gzip")).parent)],
    "eval-data-dir-empty": lambda tmp: ["eval", TINY, "--data-dir", _folder(tmp, "empty")],
    "eval-imagefolder-one-class": lambda tmp: ["eval", TINY, "--dataset", "imagefolder", "--data-dir",
                                               _images(tmp, ["only"])],
    "eval-imagefolder-empty": lambda tmp: ["eval", TINY, "--dataset", "imagefolder", "--data-dir", _images(tmp, [])],
    "eval-imagefolder-unreadable": lambda tmp: (
        ["eval", TINY, "--dataset", "imagefolder", "--data-dir", _images(tmp, ["a", "b"])], [tmp / "img"]),
    "eval-resolution-0": lambda tmp: ["eval", TINY, *SYN, "--resolution", "0"],
    "eval-resolution-huge": lambda tmp: ["eval", TINY, *SYN, "--resolution", "100000"],
    "eval-huge-width": lambda tmp: ["eval", HUGE_WIDTH, *SYN],
    "eval-budget-absurd": lambda tmp: ["eval", str(RESNET18), *SYN, "--budget", "1e12"],
    "eval-tolerance-nan": lambda tmp: ["eval", str(RESNET18), *SYN, "--budget", "1M", "--tolerance", "nan"],
    "eval-arch-too-long": lambda tmp: ["eval", "c" * 6000, *SYN],
    "eval-set-optimizer-unknown": lambda tmp: ["eval", TINY, *SYN, "--set", "optimizer=adamax9000"],
    "eval-set-precision-fp8": lambda tmp: ["eval", TINY, *SYN, "--set", "precision=fp8"],
    "eval-set-batch-0": lambda tmp: ["eval", TINY, *SYN, "--set", "batch_size=0"],
    "eval-set-lr-negative": lambda tmp: ["eval", TINY, *SYN, "--set", "lr=-1"],
    "eval-set-lr-inf": lambda tmp: ["eval", TINY, *SYN, "--set", "lr=inf"],
    "eval-set-warmup-inf": lambda tmp: ["eval", TINY, *SYN, "--set", "warmup_epochs=inf"],
    "eval-set-weight-decay-inf": lambda tmp: ["eval", TINY, *SYN, "--set", "weight_decay=inf"],
    "search-set-lr-inf": lambda tmp: _search(tmp, "--set", "lr=inf"),
    "eval-set-epochs-float": lambda tmp: ["eval", TINY, *SYN, "--set", "epochs=1.5"],
    "eval-cifar-no-dir": lambda tmp: ["eval", TINY, "--dataset", "cifar10"],
    "eval-cifar-evil-pickle": lambda tmp: ["eval", TINY, "--dataset", "cifar10", "--data-dir", _evil_cifar(tmp)],
    "eval-imagefolder-no-dir": lambda tmp: ["eval", TINY, "--dataset", "imagefolder"],
    "eval-fashion-resolution-max": lambda tmp: ["eval", TINY, "--resolution", "16384"],
    "eval-space-file-many-points": lambda tmp: ["eval", str(BOTTLENECK), *SYN],
    # ---- search: every option refused before a folder or Ray
    "search-workers-0": lambda tmp: _search(tmp, "--workers", "0"),
    "search-max-macs-negative": lambda tmp: _search(tmp, "--max-macs", "-1"),
    "search-max-macs-zero": lambda tmp: _search(tmp, "--max-macs", "0"),
    "search-max-macs-words": lambda tmp: _search(tmp, "--max-macs", "fifty million"),
    "search-max-macs-nan": lambda tmp: _search(tmp, "--max-macs", "nan"),
    "search-max-macs-overflow": lambda tmp: _search(tmp, "--max-macs", "1e400"),
    "search-max-macs-fraction": lambda tmp: _search(tmp, "--max-macs", "0.5"),
    "search-max-macs-unreachable": lambda tmp: _search(tmp, "--max-macs", "10"),
    "search-max-memory-unit": lambda tmp: _search(tmp, "--max-activation-memory", "2MiB"),
    "search-max-memory-unreachable": lambda tmp: _search(tmp, "--max-activation-memory", "100"),
    "search-max-memory-empty": lambda tmp: _search(tmp, "--max-activation-memory", ""),
    "search-latency-batch-without-objective": lambda tmp: _search(tmp, "--latency-batch", "4"),
    "search-latency-threads-0": lambda tmp: _search(tmp, "--objectives", "accuracy,latency", "--latency-threads",
                                                    "0"),
    "search-latency-batch-huge": lambda tmp: _search(tmp, "--objectives", "accuracy,latency", "--latency-batch",
                                                     str(10**9)),
    "search-objective-latency-twice": lambda tmp: _search(tmp, "--objectives", "accuracy,latency,latency_ms"),
    "search-tracking-unknown": lambda tmp: _search(tmp, "--tracking", "wandb"),
    "search-tracking-empty": lambda tmp: _search(tmp, "--tracking", ""),
    "search-tracking-uri-alone": lambda tmp: _search(tmp, "--tracking-uri", "http://127.0.0.1:5000"),
    "search-tracking-uri-unreachable": lambda tmp: _search(tmp, "--tracking", "mlflow", "--tracking-uri",
                                                           "http://u:secret@127.0.0.1:9"),
    "search-tracking-uri-folder-missing": lambda tmp: _search(tmp, "--tracking", "mlflow", "--tracking-uri",
                                                              "sqlite:////no/such/folder/m.db"),
    "search-tracking-uri-scheme": lambda tmp: _search(tmp, "--tracking", "mlflow", "--tracking-uri", "ftp://h/x"),
    "search-workers-negative": lambda tmp: _search(tmp, "--workers", "-1"),
    "search-workers-huge": lambda tmp: _search(tmp, "--workers", str(10**30)),
    "search-cpus-negative": lambda tmp: _search(tmp, "--cpus-per-trial", "-1"),
    "search-cpus-0": lambda tmp: _search(tmp, "--cpus-per-trial", "0"),
    "search-cpus-more-than-machine": lambda tmp: _search(tmp, "--cpus-per-trial", "100000"),
    "search-gpus-nan": lambda tmp: _search(tmp, "--gpus-per-trial", "nan"),
    "search-gpus-inf": lambda tmp: _search(tmp, "--gpus-per-trial", "inf"),
    "search-gpus-negative": lambda tmp: _search(tmp, "--gpus-per-trial", "-1"),
    "search-gpus-without-gpu": lambda tmp: _search(tmp, "--gpus-per-trial", "1"),
    "search-trials-0": lambda tmp: _search(tmp, "--trials", "0"),
    "search-trials-negative": lambda tmp: _search(tmp, "--trials", "-3"),
    "search-trials-huge": lambda tmp: _search(tmp, "--trials", str(10**30)),
    "search-population-1": lambda tmp: _search(tmp, "--population", "1"),
    "search-seed-negative": lambda tmp: _search(tmp, "--seed", "-1"),
    "search-seed-huge": lambda tmp: _search(tmp, "--seed", str(2**64)),
    "search-budget-infeasible": lambda tmp: _search(tmp, "--budget", "10"),
    "search-budget-absurd": lambda tmp: _search(tmp, "--budget", "1e12"),
    "search-tolerance-nan": lambda tmp: _search(tmp, "--tolerance", "nan"),
    "search-resolution-0": lambda tmp: _search(tmp, "--resolution", "0"),
    "search-resolution-huge": lambda tmp: _search(tmp, "--resolution", "100000"),
    "search-dataset-unknown": lambda tmp: ["search", "--dataset", "foo", "--run", "r"],
    "search-dataset-unknown-default-run": lambda tmp: ["search", "--dataset", "foo"],
    "search-data-dir-missing": lambda tmp: ["search", "--data-dir", "missing", "--run", "r"],
    "search-data-dir-is-file": lambda tmp: ["search", "--data-dir", _file(tmp, "f", "x"), "--run", "r"],
    "search-data-dir-unreadable": lambda tmp: (
        ["search", "--dataset", "imagefolder", "--data-dir", _images(tmp, ["a", "b"]), "--run", "r"], [tmp / "img"]),
    "search-imagefolder-one-class": lambda tmp: ["search", "--dataset", "imagefolder", "--data-dir",
                                                 _images(tmp, ["only"]), "--run", "r"],
    "search-storage-bogus": lambda tmp: _search(tmp, "--storage", "bogus://x"),
    "search-storage-not-url": lambda tmp: _search(tmp, "--storage", "not a url"),
    "search-storage-sqlite-in-missing-folder": lambda tmp: _search(tmp, "--storage", "sqlite:///no/such/dir/s.db"),
    "search-address-malformed": lambda tmp: _search(tmp, "--address", "nowhere"),
    "search-sampler-unknown": lambda tmp: _search(tmp, "--sampler", "genius"),
    "search-objectives-unknown": lambda tmp: _search(tmp, "--objectives", "accuracy,happiness"),
    "search-objectives-empty": lambda tmp: _search(tmp, "--objectives", ","),
    "search-objectives-repeated": lambda tmp: _search(tmp, "--objectives", "accuracy,accuracy"),
    "search-objectives-huge": lambda tmp: _search(tmp, "--objectives", ",".join(["z" * 50] * 2000)),
    "search-space-missing": lambda tmp: _search(tmp, "--space", "missing.yaml"),
    "search-space-directory": lambda tmp: _search(tmp, "--space", str(tmp)),
    "search-space-arch-string": lambda tmp: _search(tmp, "--space", TINY),
    "search-space-billion-laughs": lambda tmp: _search(tmp, "--space", _file(tmp, "l.yaml", BILLION_LAUGHS)),
    "search-epochs-0": lambda tmp: _search(tmp, "--epochs", "0"),
    "search-resume-without-run": lambda tmp: ["search", "--resume"],
    "search-resume-missing-run": lambda tmp: ["search", "--resume", "--run", "nope"],
    "search-resume-corrupt-run-yaml": lambda tmp: ["search", "--resume", "--run", _run_yaml(tmp, b"\x00\xff" * 50)],
    "search-resume-run-yaml-dir": lambda tmp: ["search", "--resume", "--run", _run_yaml_is_dir(tmp)],
    "search-resume-truncated-metrics": lambda tmp: ["search", "--resume", "--run", _truncated_metrics(tmp)],
    "search-resume-conflict": lambda tmp: ["search", "--resume", "--run", str(_run(tmp)), "--seed", "5"],
    "search-run-exists": lambda tmp: _search(tmp, "--run", str(_run(tmp))),
    "search-run-is-file": lambda tmp: _search(tmp, "--run", _file(tmp, "runfile", "x")),
    "search-run-under-file": lambda tmp: _search(tmp, "--run", _file(tmp, "runfile", "x") + "/inner"),
    "search-run-name-too-long": lambda tmp: _search(tmp, "--run", "r" * 300),
    "search-run-nul": lambda tmp: _search(tmp, "--run", "r\0x"),
    "search-run-dotdot": lambda tmp: _search(tmp, "--run", ".."),
    "search-run-empty": lambda tmp: _search(tmp, "--run", ""),
    "search-results-dir-is-file": lambda tmp: ["search", *SYN, "--results-dir", _file(tmp, "res", "x")],
    "search-results-dir-nul": lambda tmp: ["search", *SYN, "--results-dir", "res\0"],
    "search-space-nul": lambda tmp: _search(tmp, "--space", "s\0.yaml"),
    "search-address-unreachable": lambda tmp: _search(tmp, "--address", "127.0.0.1:1"),
    # ---- audit and study: the same option rules, checked before a folder or Ray
    "audit-workers-negative": lambda tmp: ["audit", *SYN, "--workers", "-1"],
    "audit-cpus-0": lambda tmp: ["audit", *SYN, "--cpus-per-trial", "0"],
    "audit-gpus-nan": lambda tmp: ["audit", *SYN, "--gpus-per-trial", "nan"],
    "audit-n-0": lambda tmp: ["audit", *SYN, "-n", "0"],
    "audit-n-huge": lambda tmp: ["audit", *SYN, "-n", str(10**30)],
    "audit-seed-negative": lambda tmp: ["audit", *SYN, "--seed", "-1"],
    "audit-panel-missing": lambda tmp: ["audit", "no-such-panel.txt", *SYN],
    "audit-panel-binary": lambda tmp: ["audit", _file(tmp, "panel.txt", bytes(range(256)) * 16), *SYN],
    "audit-panel-garbage": lambda tmp: ["audit", _file(tmp, "panel.txt", "not an architecture\n" * 3), *SYN],
    "audit-panel-huge-line": lambda tmp: ["audit", _file(tmp, "panel.txt", "x" * 200_000 + "\n"), *SYN],
    "audit-panel-empty": lambda tmp: ["audit", _file(tmp, "panel.txt", ""), *SYN],
    "audit-panel-directory": lambda tmp: ["audit", _folder(tmp, "empty"), *SYN],
    "audit-panel-arch-string": lambda tmp: ["audit", LONG_ARCH, *SYN],
    "audit-reference-unknown": lambda tmp: ["audit", *SYN, "--reference", "ludicrous"],
    "audit-fidelity-bad-field": lambda tmp: ["audit", *SYN, "--fidelity", "quick:bogus=1"],
    "audit-reuse-missing": lambda tmp: ["audit", *SYN, "--reuse", "nope"],
    "audit-dataset-unknown": lambda tmp: ["audit", "--dataset", "foo"],
    "audit-budget-infeasible": lambda tmp: ["audit", *SYN, "--budget", "10"],
    "audit-strata-unknown": lambda tmp: ["audit", *SYN, "--strata", "colour"],
    "audit-resume-without-run": lambda tmp: ["audit", "--resume"],
    "audit-report-missing-run": lambda tmp: ["audit", "--report", "--run", "nope"],
    "audit-run-dotdot": lambda tmp: ["audit", *SYN, "--run", ".."],
    "audit-results-dir-file": lambda tmp: ["audit", *SYN, "--results-dir", _file(tmp, "res", "x")],
    "study-workers-0": lambda tmp: ["study", *SYN, "--workers", "0"],
    "study-repeats-0": lambda tmp: ["study", *SYN, "--repeats", "0"],
    "study-repeats-huge": lambda tmp: ["study", *SYN, "--repeats", str(10**30)],
    "study-seed-negative": lambda tmp: ["study", *SYN, "--seed", "-1"],
    "study-factors-unknown": lambda tmp: ["study", *SYN, "--factors", "colour"],
    "study-factors-empty": lambda tmp: ["study", *SYN, "--factors", ","],
    "study-fix-even-kernel": lambda tmp: ["study", *SYN, "--fix", "kernel=4"],
    "study-fix-no-equals": lambda tmp: ["study", *SYN, "--fix", "kernel"],
    "study-fix-huge": lambda tmp: ["study", *SYN, "--fix", "depth=" + "9" * 10_000],
    "study-budget-infeasible": lambda tmp: ["study", *SYN, "--budget", "10"],
    "study-dataset-unknown": lambda tmp: ["study", "--dataset", "foo"],
    "study-gpus-inf": lambda tmp: ["study", *SYN, "--gpus-per-trial", "inf"],
    "study-epochs-0": lambda tmp: ["study", *SYN, "--epochs", "0"],
    "study-report-missing-run": lambda tmp: ["study", "--report", "--run", "nope"],
    "study-run-nul": lambda tmp: ["study", *SYN, "--run", "s\0"],
    # ---- search --warm-start: runs that are not there, not searches, or of another space or budget
    "search-warm-start-missing": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start", "nope"],
    "search-warm-start-file": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start", _file(tmp, "f", "x")],
    "search-warm-start-garbage": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start", GARBAGE],
    "search-warm-start-nul": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start", "run\0"],
    "search-warm-start-other-budget": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start", str(_run(tmp))],
    "search-warm-start-study": lambda tmp: ["search", *SYN, "--budget", "20k", "--warm-start",
                                            str(_run(tmp, kind="study"))],
    "search-warm-start-resume": lambda tmp: ["search", "--resume", "--run", str(_run(tmp)), "--warm-start",
                                             str(_run(tmp, name="b"))],
    # ---- compare: sources, numbers and recipes, all refused before data, Ray or a folder
    "compare-nothing": lambda tmp: ["compare", *SYN],
    "compare-runs-missing": lambda tmp: ["compare", *SYN, "--runs", "nope"],
    "compare-runs-empty-folder": lambda tmp: ["compare", *SYN, "--runs", _folder(tmp, "empty")],
    "compare-runs-file": lambda tmp: ["compare", *SYN, "--runs", _file(tmp, "f.txt", "x")],
    "compare-runs-garbage": lambda tmp: ["compare", *SYN, "--runs", GARBAGE],
    "compare-runs-nul": lambda tmp: ["compare", *SYN, "--runs", "run\0"],
    "compare-runs-no-front": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp, name="none", n=0))],
    "compare-runs-two-budgets": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp, name="a")),
                                             str(_run(tmp, name="b", budget=Budget(300_000)))],
    "compare-runs-two-datasets": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp, name="a")),
                                              str(_run(tmp, name="b", dataset="cifar10"))],
    "compare-runs-not-search": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp, name="a", kind="study"))],
    "compare-random-0": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--random", "0"],
    "compare-random-negative": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--random", "-2"],
    "compare-random-huge": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--random", str(10**30)],
    "compare-random-no-budget": lambda tmp: ["compare", *SYN, "--random", "3"],
    "compare-top-0": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--top", "0"],
    "compare-seeds-0": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--seeds", "0"],
    "compare-seeds-huge": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--seeds", "999"],
    "compare-seed-negative": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--seed", "-1"],
    "compare-fidelity-unknown": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--fidelity", "ludicrous"],
    "compare-fidelity-epochs-0": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--fidelity",
                                              "quick:epochs=0"],
    "compare-fidelity-lr-nan": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--fidelity", "quick:lr=nan"],
    "compare-long-same": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--fidelity", "full", "--long",
                                      "full"],
    "compare-long-garbage": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--long", GARBAGE],
    "compare-baseline-unknown": lambda tmp: ["compare", *SYN, "--budget", "20k", "--baselines", "lenet"],
    "compare-baselines-infeasible": lambda tmp: ["compare", *SYN, "--budget", "10", "--baselines"],
    "compare-budget-conflict": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--budget", "300k"],
    "compare-arch-garbage": lambda tmp: ["compare", *SYN, "--arch", GARBAGE],
    "compare-arch-huge-width": lambda tmp: ["compare", *SYN, "--arch", HUGE_WIDTH],
    "compare-workers-0": lambda tmp: ["compare", *SYN, "--runs", str(_run(tmp)), "--workers", "0"],
    "compare-resume-without-run": lambda tmp: ["compare", "--resume"],
    "compare-resume-missing-run": lambda tmp: ["compare", "--resume", "--run", "nope"],
    "compare-report-search-run": lambda tmp: ["compare", "--report", "--run", str(_run(tmp))],
    # ---- analyze: runs that are not runs, damaged runs, report folders that cannot be
    "analyze-missing": lambda tmp: ["analyze", "nope"],
    "analyze-file": lambda tmp: ["analyze", _file(tmp, "f.txt", "x")],
    "analyze-arch-string": lambda tmp: ["analyze", TINY],
    "analyze-long-arch-string": lambda tmp: ["analyze", LONG_ARCH],
    "analyze-garbage": lambda tmp: ["analyze", GARBAGE],
    "analyze-nul": lambda tmp: ["analyze", "run\0"],
    "analyze-empty-folder": lambda tmp: ["analyze", _folder(tmp, "empty")],
    "analyze-dotdot": lambda tmp: ["analyze", "../../etc"],
    "analyze-truncated-metrics": lambda tmp: ["analyze", _truncated_metrics(tmp)],
    "analyze-metrics-list": lambda tmp: ["analyze", _metrics_as(tmp, "[1, 2, 3]")],
    "analyze-metrics-binary": lambda tmp: ["analyze", _metrics_as(tmp, bytes(range(256)))],
    "analyze-metrics-wrong-id": lambda tmp: ["analyze", _metrics_as(tmp, json.dumps(
        {**json.loads(_first_metrics(_run(tmp, name="src")).read_text()), "trial_id": 77}))],
    "analyze-metrics-is-dir": lambda tmp: ["analyze", _metrics_is_dir(tmp)],
    "analyze-metrics-is-fifo": lambda tmp: ["analyze", _metrics_fifo(tmp)],
    "analyze-undecodable-name": lambda tmp: ["analyze", os.fsdecode(b"run-\xff")],
    "describe-undecodable-name": lambda tmp: ["describe", os.fsdecode(b"space-\xff.yaml")],
    "retrain-metrics-arch-garbage": lambda tmp: ["retrain", _metrics_edit(tmp, arch="not an arch"), "--trial", "0"],
    "analyze-binary-run-yaml": lambda tmp: ["analyze", _run_yaml(tmp, bytes(range(256)) * 8)],
    "analyze-run-yaml-is-dir": lambda tmp: ["analyze", _run_yaml_is_dir(tmp)],
    "analyze-run-yaml-empty": lambda tmp: ["analyze", _run_yaml(tmp, "")],
    "analyze-run-yaml-list": lambda tmp: ["analyze", _run_yaml(tmp, "- 1\n")],
    "analyze-run-yaml-laughs": lambda tmp: ["analyze", _run_yaml(tmp, BILLION_LAUGHS)],
    "analyze-run-yaml-laughs-inside": lambda tmp: ["analyze", _laughs_inside(tmp)],
    "search-resume-run-yaml-laughs-inside": lambda tmp: ["search", "--resume", "--run", _laughs_inside(tmp)],
    "retrain-run-yaml-laughs-inside": lambda tmp: ["retrain", _laughs_inside(tmp), "--top", "1"],
    "analyze-run-yaml-huge-key": lambda tmp: ["analyze", _yaml_edit(tmp, _set("k" * 50_000, 1))],
    "analyze-run-yaml-bad-kind": lambda tmp: ["analyze", _yaml_edit(tmp, _set("kind", "x" * 10_000))],
    "analyze-run-yaml-bad-objective": lambda tmp: ["analyze", _yaml_edit(
        tmp, _set("objectives", [{"name": "happiness", "direction": "maximize"}]))],
    "analyze-trials-is-file": lambda tmp: ["analyze", _trials_is_file(tmp)],
    "analyze-unreadable-run": lambda tmp: (["analyze", str(_run(tmp))], [tmp / "run"]),
    "analyze-unreadable-trials": lambda tmp: (["analyze", str(_run(tmp))], [tmp / "run" / "trials"]),
    "analyze-out-existing-file": lambda tmp: ["analyze", str(_run(tmp)), "--out", _file(tmp, "report.txt", "x")],
    "analyze-out-under-file": lambda tmp: ["analyze", str(_run(tmp)), "--out", _file(tmp, "f", "x") + "/r"],
    "analyze-out-too-long": lambda tmp: ["analyze", str(_run(tmp)), "--out", "o" * 5000],
    "analyze-out-nul": lambda tmp: ["analyze", str(_run(tmp)), "--out", "o\0"],
    "analyze-objectives-unknown": lambda tmp: ["analyze", str(_run(tmp)), "--objectives", "accuracy,joy"],
    "analyze-objectives-empty": lambda tmp: ["analyze", str(_run(tmp)), "--objectives", ","],
    "analyze-objectives-huge": lambda tmp: ["analyze", str(_run(tmp)), "--objectives", "q" * 100_000],
    "analyze-fidelity-absent": lambda tmp: ["analyze", str(_run(tmp)), "--fidelity", "f" * 10_000],
    "analyze-second-run-missing": lambda tmp: ["analyze", str(_run(tmp)), "nope"],
    # ---- retrain: options, damaged runs, impossible networks; nothing written
    "retrain-nothing-to-do": lambda tmp: ["retrain"],
    "retrain-top-0": lambda tmp: ["retrain", str(_run(tmp)), "--top", "0"],
    "retrain-top-negative": lambda tmp: ["retrain", str(_run(tmp)), "--top", "-1"],
    "retrain-workers-0": lambda tmp: ["retrain", str(_run(tmp)), "--workers", "0"],
    "retrain-cpus-0": lambda tmp: ["retrain", str(_run(tmp)), "--cpus-per-trial", "0"],
    "retrain-cpus-more-than-machine": lambda tmp: ["retrain", str(_run(tmp)), "--workers", "2", "--cpus-per-trial",
                                                   "100000", "--arch", TINY],
    "retrain-threads-negative": lambda tmp: ["retrain", str(_run(tmp)), "--threads", "-1"],
    "retrain-seed-negative": lambda tmp: ["retrain", str(_run(tmp)), "--seed", "-1"],
    "retrain-device-tpu": lambda tmp: ["retrain", str(_run(tmp)), "--device", "tpu"],
    "retrain-epochs-0": lambda tmp: ["retrain", str(_run(tmp)), "--epochs", "0"],
    "retrain-trial-absent": lambda tmp: ["retrain", str(_run(tmp)), "--trial", "99999"],
    "retrain-trial-negative": lambda tmp: ["retrain", str(_run(tmp)), "--trial", "-1"],
    "retrain-trial-truncated-metrics": lambda tmp: ["retrain", _truncated_metrics(tmp), "--trial", "0"],
    "retrain-corrupt-run-yaml": lambda tmp: ["retrain", _run_yaml(tmp, "version: 1\nkind: [unclosed\n  : :\n")],
    "retrain-run-yaml-is-dir": lambda tmp: ["retrain", _run_yaml_is_dir(tmp)],
    "retrain-trials-is-file": lambda tmp: ["retrain", _trials_is_file(tmp)],
    "retrain-arch-huge-width": lambda tmp: ["retrain", str(_run(tmp)), "--arch", HUGE_WIDTH],
    "retrain-arch-wide": lambda tmp: ["retrain", str(_run(tmp)), "--arch", WIDE, "--resolution", "224"],
    "retrain-arch-garbage": lambda tmp: ["retrain", str(_run(tmp)), "--arch", GARBAGE],
    "retrain-arch-path-like": lambda tmp: ["retrain", str(_run(tmp)), "--arch", "../../etc/passwd"],
    "retrain-arch-without-run": lambda tmp: ["retrain", "--arch", TINY],
    "retrain-run-is-arch": lambda tmp: ["retrain", TINY, "--top", "1"],
    "retrain-run-missing": lambda tmp: ["retrain", "nope"],
    "retrain-run-dotdot": lambda tmp: ["retrain", "../../etc"],
    "retrain-baseline-unknown": lambda tmp: ["retrain", "--baseline", "alexnet", "--budget", "1M", *SYN],
    "retrain-baselines-no-budget": lambda tmp: ["retrain", "--baselines", *SYN],
    "retrain-baselines-budget-tiny": lambda tmp: ["retrain", "--baselines", "--budget", "10", *SYN],
    "retrain-baselines-budget-absurd": lambda tmp: ["retrain", "--baselines", "--budget", "1e12", *SYN],
    "retrain-dataset-unknown": lambda tmp: ["retrain", str(_run(tmp)), "--dataset", "foo"],
    "retrain-data-dir-missing": lambda tmp: ["retrain", str(_run(tmp)), "--dataset", "cifar10", "--data-dir", "m"],
    "retrain-resolution-0": lambda tmp: ["retrain", str(_run(tmp)), "--resolution", "0"],
    "retrain-resolution-huge": lambda tmp: ["retrain", str(_run(tmp)), "--resolution", "100000"],
    "retrain-tolerance-nan": lambda tmp: ["retrain", "--baselines", "--budget", "1M", "--tolerance", "nan", *SYN],
    "retrain-results-dir-file": lambda tmp: ["retrain", "--baselines", "--budget", "1M", *SYN, "--results-dir",
                                             _file(tmp, "res", "x")],
    "retrain-evil-checkpoint": lambda tmp: ["retrain", _evil_checkpoint(tmp), "--arch", TINY, "--resume"],
    "retrain-corrupt-retrain-metrics": lambda tmp: ["retrain", _corrupt_retrain_metrics(tmp), "--arch", TINY],
    "retrain-partial-without-resume": lambda tmp: ["retrain", _evil_checkpoint(tmp), "--arch", TINY],
    "retrain-metrics-wrong-type": lambda tmp: ["retrain", _metrics_as(tmp, json.dumps({"trial_id": "zero"})),
                                               "--trial", "0"],
    "retrain-run-yaml-seed-negative": lambda tmp: ["retrain", _yaml_edit(tmp, _set("seed", -1)), "--arch", TINY],
    "retrain-run-yaml-dataset-unknown": lambda tmp: ["retrain", _yaml_edit(tmp, _set("dataset", "foo")), "--arch",
                                                     TINY],
    "retrain-run-yaml-fidelity-bad": lambda tmp: ["retrain", _yaml_edit(tmp, _edit_fidelity("epochs", -1)),
                                                  "--arch", TINY],
    "search-resume-run-yaml-workers-0": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("workers", 0))],
    "search-resume-run-yaml-seed-negative": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("seed", -1))],
    "search-resume-run-yaml-trials-negative": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("trials", -5))],
    "search-resume-run-yaml-space-bad": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("space", {"stages": "lots"}))],
    "search-resume-run-yaml-dataset-unknown": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("dataset", "foo"))],
    "search-resume-run-yaml-gpus-nan": lambda tmp: ["search", "--resume", "--run", _yaml_edit(
        tmp, _set("gpus_per_trial", float("nan")))],
    "search-resume-workers-negative": lambda tmp: ["search", "--resume", "--run", str(_run(tmp)), "--workers", "-1"],
    "retrain-unreadable-run": lambda tmp: (["retrain", str(_run(tmp))], [tmp / "run"]),
    "retrain-results-dir-nul": lambda tmp: ["retrain", "--baselines", "--budget", "1M", *SYN, "--results-dir", "r\0"],
    "retrain-trial-huge": lambda tmp: ["retrain", str(_run(tmp)), "--trial", str(10**40)],
    "retrain-onnx-arch-huge": lambda tmp: ["retrain", str(_run(tmp)), "--arch", HUGE_WIDTH, "--onnx"],
}


# ---------------------------------------------------------------- the harness


def _snapshot(tmp: Path) -> set[str]:
    """Every path under the test's folder, and the entries of the repository's results/ folder.

    Only the top level of results/ is compared: a refused command would add a run folder there, while
    other processes (a study running in this working tree) may write inside existing run folders meanwhile.
    """
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tmp):
        found.update(os.path.join(dirpath, n) for n in (*dirnames, *filenames))
    if RESULTS.is_dir():
        found.update(str(p) for p in RESULTS.iterdir())
    return found


@contextlib.contextmanager
def _denied(paths: list[Path]) -> Iterator[None]:
    """File-system calls on anything inside ``paths`` (and listing ``paths`` themselves) fail with EACCES."""
    denied = [str(p.resolve()) for p in paths]

    def inside(target: Any, *, listing: bool = False) -> bool:
        if isinstance(target, int):
            return False
        try:
            text = os.path.abspath(os.fsdecode(target))
        except (TypeError, ValueError):
            return False
        return any(text.startswith(d + os.sep) or (listing and text == d) for d in denied)

    def refuse(target: Any) -> PermissionError:
        return PermissionError(13, "Permission denied", os.fsdecode(target))

    real = {name: getattr(os, name) for name in ("stat", "lstat", "scandir", "listdir", "open")}
    real_open, real_io_open = builtins.open, io.open

    def wrap(name: str, listing: bool = False) -> Callable[..., Any]:
        def call(target: Any = ".", *args: Any, **kwargs: Any) -> Any:
            if inside(target, listing=listing):
                raise refuse(target)
            return real[name](target, *args, **kwargs)

        return call

    def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
        if inside(file):
            raise refuse(file)
        return real_open(file, *args, **kwargs)

    patched = {"stat": wrap("stat"), "lstat": wrap("lstat"), "scandir": wrap("scandir", True),
               "listdir": wrap("listdir", True), "open": wrap("open")}
    try:
        for name, fn in patched.items():
            setattr(os, name, fn)
        builtins.open = io.open = opener
        yield
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        builtins.open, io.open = real_open, real_io_open


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import the heavy libraries once, so the time limit measures the command, not the first import."""
    import torch  # noqa: F401

    import nas.search.settings  # noqa: F401
    from nas.cli import build_parser

    build_parser()


def test_corpus_covers_every_verb() -> None:
    firsts = {name.split("-")[0] for name in CASES}
    assert len(CASES) >= 70
    assert {"validate", "show", "count", "sample", "describe", "eval", "search", "analyze", "retrain", "audit",
            "study"} <= firsts


@pytest.mark.parametrize("verb", ["search", "study", "audit", "retrain"])
def test_bad_options_are_refused_before_ray_or_torch_is_imported(verb: str, tmp_path: Path) -> None:
    """`nas search --workers -1` took 17 s when Ray started first; the options are checked before any heavy import."""
    import subprocess
    import sys

    probe = ("import sys\nfrom nas.cli import main\n"
             f"code = main([{verb!r}, '--workers', '-1'])\n"
             "print(code, *sorted(m for m in ('ray', 'torch', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["2"], (done.stdout, done.stderr[-2000:])
    assert done.stderr.startswith("error: --workers must be at least 1") and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_ends_in_one_error_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    made = CASES[name](work)
    argv, denied = made if isinstance(made, tuple) else (made, [])
    capfd.readouterr()
    before = _snapshot(tmp_path)
    started = time.monotonic()
    with _denied(denied):
        code = main(argv)
    elapsed = time.monotonic() - started
    out, err = capfd.readouterr()
    after = _snapshot(tmp_path)
    lines = err.splitlines()
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    assert len(lines[0]) <= MAX_LINE, lines[0][:1000]
    assert elapsed < MAX_SECONDS, f"{elapsed:.1f} s"
    assert sorted(after - before) == [], ("left behind", sorted(after - before)[:5])
    assert sorted(before - after) == [], ("removed", sorted(before - after)[:5])
