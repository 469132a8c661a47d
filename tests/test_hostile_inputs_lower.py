"""Hostile and careless input to the library layer (space files, architecture strings, budgets, models, data).

Every case must raise a NASError subclass quickly, with a message of one line of at most 400 characters,
naming what is wrong (a needle per case). The CLI's own corpus (tests/test_cli*.py) checks exit codes; this
one checks the causes below it: unbounded echo, YAML expansion, analytic memory checks, paths, one set of
field rules for both spellings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nas.errors import BudgetError, ConfigError, DataError, NASError, SpaceError, shown
from nas.sampling import Shape, fit, sample_solved
from nas.space import Architecture, Space, load_target, parse_budget, parse_space
from nas.space.budget import Budget

ROOT = Path(__file__).resolve().parents[1]
BOTTLENECK = ROOT / "search_spaces" / "bottleneck.yaml"
RESNET18 = ROOT / "search_spaces" / "baselines" / "resnet18.yaml"
SMALL = "stem_c16_k3_s1/inverted_d1_s1_c16_e4_k3_relu_dw_bn"
MNIST = Shape(in_channels=1, resolution=28, num_classes=10)
GOOD_STAGE = "stages: [{depth: 1, width: 8}]\n"
JSON_STR_WIDTH = '{"stem": {"width": "16"}, "stages": [{"block": "basic", "depth": 1, "stride": 1, "width": 8}]}'

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)

Case = tuple[type[NASError], str, Callable[[Path], Any]]


def _file(tmp: Path, text: str | bytes, name: str = "space.yaml") -> Path:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _yaml(text: str | bytes) -> Callable[[Path], Any]:
    return lambda tmp: Space.from_file(str(_file(tmp, text)))


def _stage(**fields: Any) -> Callable[[Path], Any]:
    stage = {"depth": 1, "width": 8, **fields}
    return lambda tmp: parse_space({"stages": [stage]}, "s.yaml")


def _space(**top: Any) -> Callable[[Path], Any]:
    data = {"stages": [{"depth": 1, "width": 8}], **top}
    return lambda tmp: parse_space(data, "s.yaml")


def _arch(text: str) -> Callable[[Path], Any]:
    return lambda tmp: Architecture.parse(text)


def _target(text: str, **options: Any) -> Callable[[Path], Any]:
    return lambda tmp: load_target(text, **options)


def _fit(text: str, params: int | None, shape: Shape = MNIST) -> Callable[[Path], Any]:
    return lambda tmp: fit(Architecture.parse(text), None if params is None else Budget(params), shape)


def _sample(path: Path, n: int, params: int | None) -> Callable[[Path], Any]:
    budget = None if params is None else Budget(params)
    return lambda tmp: sample_solved(Space.from_file(str(path)), n, seed=0, budget=budget, shape=MNIST)


def _images(tmp: Path, classes: list[str]) -> Path:
    from PIL import Image

    for name in classes:
        (tmp / "img" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 0, 0)).save(tmp / "img" / name / f"{i}.png")
    return tmp / "img"


def _load(name: str, **kw: Any) -> Callable[[Path], Any]:
    from nas.data import load_dataset

    return lambda tmp: load_dataset(name, **kw)


def _on_file(name: str, tmp: Path) -> Any:
    from nas.data import load_dataset

    return load_dataset(name, data_dir=_file(tmp, "not a folder", "a-file"))


def _denied_folder(tmp: Path) -> Any:
    from nas.data import load_dataset

    root = _images(tmp, ["a", "b"])
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if Path(path) == root:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    os.scandir = scandir
    try:
        return load_dataset("imagefolder", data_dir=root)
    finally:
        os.scandir = real


CASES: dict[str, Case] = {
    # ---- space files: size, encoding, shape of the document
    "yaml-billion-laughs": (SpaceError, "aliases", _yaml(BILLION_LAUGHS)),
    "yaml-one-alias": (SpaceError, "aliases", _yaml("stem: &s {width: 8}\nhead: *s\n" + GOOD_STAGE)),
    "yaml-merge-key": (SpaceError, "merge keys", _yaml("stem:\n  <<: {width: 8}\n" + GOOD_STAGE)),
    "yaml-deep-flow": (SpaceError, "nested deeper", _yaml("stages: " + "[" * 5000 + "]" * 5000 + "\n")),
    "yaml-deep-block": (SpaceError, "nested deeper", _yaml("".join("  " * i + f"k{i}:\n" for i in range(40)))),
    "yaml-2mb": (SpaceError, "too large", _yaml("# padding\n" * 200_000 + GOOD_STAGE)),
    "yaml-binary": (SpaceError, "not UTF-8", _yaml(bytes(range(256)) * 8)),
    "yaml-nul": (SpaceError, "malformed YAML", _yaml(b"stages: []\x00\n")),
    "yaml-empty": (SpaceError, "empty", _yaml("")),
    "yaml-whitespace": (SpaceError, "empty", _yaml("\n\n   \n")),
    "yaml-directory": (SpaceError, "is a directory, not a space file", lambda tmp: Space.from_file(str(tmp))),
    "yaml-missing": (SpaceError, "does not exist", lambda tmp: Space.from_file(str(tmp / "nope.yaml"))),
    "yaml-nul-path": (SpaceError, "NUL", lambda tmp: Space.from_file(f"{tmp}/a\0b.yaml")),
    "yaml-name-too-long": (SpaceError, "longer than a file name", lambda tmp: Space.from_file("a" * 300 + ".yaml")),
    "yaml-top-list": (SpaceError, "must be a mapping", _yaml("- 1\n- 2\n")),
    "yaml-top-scalar": (SpaceError, "must be a mapping", _yaml("just text\n")),
    "yaml-two-documents": (SpaceError, "single document", _yaml(GOOD_STAGE + "---\n" + GOOD_STAGE)),
    "yaml-python-tag": (SpaceError, "malformed YAML", _yaml("!!python/object/apply:os.system ['echo hacked']\n")),
    "yaml-duplicate-key": (SpaceError, "duplicate key 'stages'", _yaml(GOOD_STAGE + GOOD_STAGE)),
    "yaml-duplicate-nested": (SpaceError, "duplicate key 'width'", _yaml("stages: [{depth: 1, width: 8, width: 9}]\n")),
    "yaml-5000-digits": (SpaceError, "4,300 digits", _yaml("stages: [{depth: 1, width: " + "9" * 5000 + "}]\n")),
    "yaml-nan-depth": (SpaceError, "got float nan", _yaml("stages: [{depth: .nan, width: 8}]\n")),
    "yaml-inf-dropout": (SpaceError, "head.dropout", _yaml("head: {dropout: .inf}\n" + GOOD_STAGE)),
    "yaml-nan-tolerance": (SpaceError, "tolerance", _yaml("budget: {params: 1M, tolerance: .nan}\n" + GOOD_STAGE)),
    "yaml-str-tolerance": (SpaceError, "tolerance", _yaml("budget: {params: 1M, tolerance: abc}\n" + GOOD_STAGE)),
    "yaml-budget-abc": (SpaceError, "not a parameter count", _yaml("budget: {params: abc}\n" + GOOD_STAGE)),
    "yaml-name-newline": (SpaceError, "printable", _yaml('name: "a\\nb"\n' + GOOD_STAGE)),
    "yaml-name-huge": (SpaceError, "at most 255", _yaml("name: " + "n" * 5000 + "\n" + GOOD_STAGE)),
    "yaml-description-mapping": (SpaceError, "must be text", _yaml("description: {a: 1}\n" + GOOD_STAGE)),
    "yaml-stages-40": (SpaceError, "1 to 32 stages", _yaml(f"stages: [{', '.join(['{depth: 1, width: 8}'] * 40)}]")),
    # ---- unknown keys at every level
    "key-top": (SpaceError, "unknown key 'colour'", lambda tmp: parse_space({"colour": 1, "stages": [{}]}, "s")),
    "key-stem": (SpaceError, "stem: unknown key", lambda tmp: parse_space({"stem": {"w": 1}, "stages": []}, "s")),
    "key-stage": (SpaceError, "stages[0]: unknown key", _stage(colour="red")),
    "key-head": (SpaceError, "head: unknown key", _space(**{"head": {"x": 1}})),
    "key-choices": (SpaceError, "choices: unknown key", _space(**{"choices": {"x": [1]}})),
    "key-choice-mapping": (SpaceError, "choices.block: unknown key", _space(choices={"block": {"values": [], "x": 1}})),
    "key-budget": (SpaceError, "budget: unknown key", _space(**{"budget": {"params": "1M", "x": 1}})),
    "key-input": (SpaceError, "input: unknown key", _space(**{"input": {"size": 1}})),
    "key-huge": (SpaceError, "characters)", lambda tmp: parse_space({"k" * 1_000_000: 1, "stages": []}, "s")),
    # ---- wrong types and ranges (the same rules as the strings)
    "width-string": (SpaceError, "got str '16'", _stage(width="16")),
    "width-bool": (SpaceError, "got bool True", _stage(width=True)),
    "width-float": (SpaceError, "got float 16.0", _stage(width=16.0)),
    "width-negative": (SpaceError, "got -8", _stage(width=-8)),
    "width-zero": (SpaceError, "got 0", _stage(width=0)),
    "width-1e30": (SpaceError, "16,384", _stage(width=10**30)),
    "width-huge-string": (SpaceError, "characters)", _stage(width="9" * 1_000_000)),
    "depth-list-200": (SpaceError, "depth[3]: must be a positive integer from 1 to 128", _stage(depth=[1, 2, 3, 200])),
    "stride-3": (SpaceError, "must be 1 or 2", _stage(stride=3)),
    "kernel-even": (SpaceError, "kernel must be odd", _stage(kernel=4)),
    "kernel-17": (SpaceError, "from 1 to 15", _stage(kernel=17)),
    "expansion-0": (SpaceError, "expansion", _stage(expansion=0)),
    "stem-k4-s9": (SpaceError, "stem.stride", _space(**{"stem": {"kernel": 4, "stride": 9}})),
    "stem-k4-s2": (SpaceError, "patchify", _space(**{"stem": {"kernel": 4, "stride": 2}})),
    "head-width-0": (SpaceError, "head.width", _space(**{"head": {"width": 0}})),
    "input-resolution-100000": (SpaceError, "input.resolution", _space(**{"input": {"resolution": 100000}})),
    # ---- architecture strings
    "arch-10kb": (SpaceError, "too long", lambda tmp: Architecture.parse("stem_c16/" + "basic_d1_c16_k3_relu/" * 500)),
    "arch-1mb": (SpaceError, "too long", _target("stem_c16/" + "x" * 1_000_000)),
    "arch-1mb-yaml-suffix": (SpaceError, "longer than any path", _target("x" * 1_000_000 + ".yaml")),
    "arch-5kb-path-like": (SpaceError, "too long", _target("a/" * 2500)),
    "arch-nul": (SpaceError, "control characters", _target("stem_c16\0/basic_d1_c16_k3_relu")),
    "arch-unicode-digits": (SpaceError, "ASCII digits", _arch("stem_c\uff11\uff16/basic_d1_c16_k3_relu")),
    "arch-arabic-digits": (SpaceError, "ASCII digits", _arch("stem_c16/basic_d\u0661_c16_k3_relu")),
    "arch-stride-3": (SpaceError, "stride must be 1 or 2", _arch("stem_c16/basic_d1_s3_c16_k3_relu")),
    "arch-even-kernel": (SpaceError, "kernel must be odd", _arch("stem_c16/basic_d1_c16_k4_relu")),
    "arch-stem-k4-s2": (SpaceError, "patchify", _arch("stem_c16_k4_s2/basic_d1_c16_k3_relu")),
    "arch-stem-s9": (SpaceError, "1, 2 or 4", _arch("stem_c16_k3_s9/basic_d1_c16_k3_relu")),
    "arch-c0": (SpaceError, "width must be", _arch("stem_c16/basic_d1_c0_k3_relu")),
    "arch-head-c0": (SpaceError, "head width", _arch("stem_c16/basic_d1_c16_k3_relu/head_c0")),
    "arch-c99999999": (SpaceError, "16,384", _arch("stem_c16/basic_d1_c99999999_k3_relu")),
    "arch-many-digits": (SpaceError, "at most 12 digits", _arch(f"stem_c16/basic_d1_c{'9' * 3000}_k3_relu")),
    "arch-depth-1000": (SpaceError, "depth must be", _arch("stem_c16/basic_d1000_c16_k3_relu")),
    "arch-dropout-1": (SpaceError, "dropout", _arch("stem_c16/basic_d1_c16_k3_relu/head_p1.0")),
    "arch-dw-dense": (SpaceError, "both dw and dense", _arch("stem_c16/inverted_d1_c16_k3_relu_dw_dense")),
    "arch-not-text": (SpaceError, "must be text", lambda tmp: Architecture.parse(None)),  # type: ignore[arg-type]
    "arch-33-stages": (SpaceError, "1 to 32 stages", _arch("stem_c8/" + "basic_d1_c8_k3_relu/" * 33)),
    "arch-json-deep": (SpaceError, "JSON", lambda tmp: Architecture.from_json("[" * 100_000 + "]" * 100_000)),
    "arch-json-list": (SpaceError, "wrong shape", lambda tmp: Architecture.from_json("[1, 2]")),
    "arch-json-types": (SpaceError, "got str", lambda tmp: Architecture.from_json(JSON_STR_WIDTH)),
    # ---- budgets
    "budget-abc": (BudgetError, "not a parameter count", lambda tmp: parse_budget("abc")),
    "budget-negative": (BudgetError, "not a parameter count", lambda tmp: parse_budget("-1.5M")),
    "budget-double-suffix": (BudgetError, "not a parameter count", lambda tmp: parse_budget("1.5MM")),
    "budget-inf": (BudgetError, "not a parameter count", lambda tmp: parse_budget("inf")),
    "budget-nan": (BudgetError, "not a parameter count", lambda tmp: parse_budget("nan")),
    "budget-float-nan": (BudgetError, "not a parameter count", lambda tmp: parse_budget(float("nan"))),
    "budget-1e400": (BudgetError, "positive whole number", lambda tmp: parse_budget("1e400")),
    "budget-unicode-digits": (BudgetError, "not a parameter count", lambda tmp: parse_budget("\uff11.\uff15M")),
    "budget-1mb": (BudgetError, "characters)", lambda tmp: parse_budget("1" * 1_000_000)),
    "budget-option-abc": (BudgetError, "not a parameter count", _target(SMALL, budget="abc")),
    "budget-option-tolerance-nan": (BudgetError, "tolerance", _target(SMALL, budget="1M", tolerance=float("nan"))),
    "budget-option-divisor-0": (BudgetError, "divisor", _target(SMALL, budget="1M", divisor=0)),
    "budget-option-divisor-huge": (BudgetError, "divisor", _target(SMALL, budget="1M", divisor=10**9)),
    "budget-1e12": (BudgetError, "memory", _fit(SMALL, 10**12)),
    "budget-1e300": (BudgetError, "memory", _fit(SMALL, parse_budget("1e300"))),
    "budget-10": (BudgetError, "no width fits", _fit(SMALL, 10)),
    "sample-budget-10": (BudgetError, "none of the 20", _sample(BOTTLENECK, 3, 10)),
    "sample-fixed-budget-10": (BudgetError, "none of the 1", _sample(RESNET18, 1, 10)),
    "sample-n-0": (ConfigError, "at least 1", _sample(BOTTLENECK, 0, None)),
    "sample-n-negative": (ConfigError, "at least 1", _sample(BOTTLENECK, -5, None)),
    "sample-budget-1e12": (BudgetError, "memory", _sample(BOTTLENECK, 3, 10**12)),
    # ---- networks that cannot exist here (analytic checks, nothing allocated)
    "shape-resolution-100000": (ConfigError, "resolution", lambda tmp: Shape(1, 100_000, 10)),
    "shape-resolution-0": (ConfigError, "resolution", lambda tmp: Shape(1, 0, 10)),
    "shape-classes-1": (ConfigError, "classes", lambda tmp: Shape(1, 28, 1)),
    "fit-resolution-16384": (BudgetError, "memory", _fit("stem_c64/basic_d2_c64_k3_relu", None, Shape(3, 16_384, 10))),
    "build-widest-deepest": (BudgetError, "parameters", lambda tmp: _build("stem_c16384/basic_d128_c16384_k15_relu")),
    "build-resolution-100000": (BudgetError, "100000x100000", lambda tmp: _build(SMALL, 100_000)),
    "measure-resolution-100000": (BudgetError, "memory", lambda tmp: _measure(SMALL, 100_000)),
    # ---- data folders
    "data-dir-is-file": (DataError, "is a file, not a folder", lambda tmp: _on_file("fashion-mnist", tmp)),
    "data-dir-missing": (DataError, "does not exist", _load("imagefolder", data_dir="/nonexistent/folder")),
    "data-dir-cifar-file": (DataError, "is a file, not a folder", lambda tmp: _on_file("cifar10", tmp)),
    "data-dir-nul": (DataError, "NUL", _load("imagefolder", data_dir="/tmp/a\0b")),
    "data-dir-5000": (DataError, "longer than any path", _load("imagefolder", data_dir="d" * 5000)),
    "data-one-class": (DataError, "at least 2", lambda tmp: _load("imagefolder", data_dir=_images(tmp, ["only"]))(tmp)),
    "data-permission-denied": (DataError, "permission denied", _denied_folder),
    "data-unknown-name": (ConfigError, "unknown data set", _load("mnist" * 100_000)),
    "data-resolution-huge": (ConfigError, "resolution", _load("synthetic", resolution=100_000)),
    "data-resolution-string": (ConfigError, "resolution", _load("synthetic", resolution="abc")),
    "data-synthetic-too-big": (DataError, "memory", _load("synthetic", resolution=16_384)),
}


def _build(text: str, resolution: int = 224) -> Any:
    from nas.models import build_model

    return build_model(Architecture.parse(text), in_channels=3, num_classes=10, resolution=resolution)


def _measure(text: str, resolution: int) -> Any:
    from nas.complexity import measure

    return measure(Architecture.parse(text), in_channels=3, num_classes=10, resolution=resolution, latency=False)


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import torch and the model and data layers once, so that each case times only its own work."""
    import nas.complexity
    import nas.data
    import nas.models

    assert nas.complexity.measure and nas.data.load_dataset and nas.models.build_model


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_quickly_in_one_line(name: str, tmp_path: Path) -> None:
    kind, needle, run = CASES[name]
    start = time.perf_counter()
    with pytest.raises(NASError) as err:
        run(tmp_path)
    elapsed = time.perf_counter() - start
    message = str(err.value)
    assert isinstance(err.value, kind), f"{type(err.value).__name__}: {message}"
    assert needle in message, message
    assert "\n" not in message and len(message) <= 400, (len(message), message[:500])
    assert elapsed < 60.0, f"{name} took {elapsed:.2f} s"  # a hang guard, not a speed target


def test_billion_laughs_is_refused_in_milliseconds(tmp_path: Path) -> None:
    path = _file(tmp_path, BILLION_LAUGHS)
    assert path.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(SpaceError, match="aliases"):
        Space.from_file(str(path))
    assert time.perf_counter() - start < 0.5


def test_memory_check_states_the_numbers() -> None:
    from nas.models.memory import check_memory, estimate_memory

    arch = Architecture.parse(SMALL)
    need = estimate_memory(arch, in_channels=1, num_classes=10, resolution=28)
    assert check_memory(arch, in_channels=1, num_classes=10, resolution=28, available=need.total_bytes) == need
    with pytest.raises(BudgetError) as err:
        check_memory(arch, in_channels=1, num_classes=10, resolution=28, available=need.total_bytes - 1)
    message = str(err.value)
    assert f"{need.params:,} parameters" in message
    assert f"{need.total_bytes:,} bytes" in message and f"{need.total_bytes - 1:,} bytes" in message


def test_activation_estimate_bounds_the_measured_memory() -> None:
    """The analytic estimate is an upper bound, and not a loose one, on every family and the baselines."""
    import torch

    from nas.complexity import activation_bytes
    from nas.models import build_model
    from nas.models.memory import estimate_memory

    baselines = sorted((ROOT / "search_spaces" / "baselines").glob("*.yaml"))
    archs = [next(Space.from_file(str(p)).enumerate()) for p in baselines]
    archs = [(a, 72) for a in archs]  # above 64 px: the stem keeps its stride and max-pool
    archs += [(a, 28) for a in Space.from_file(str(BOTTLENECK)).sample_distinct(7, seed=5)]
    for arch, resolution in archs:
        model = build_model(arch, in_channels=3, num_classes=10, resolution=resolution)
        measured = activation_bytes(model, torch.randn(1, 3, resolution, resolution))
        estimate = estimate_memory(arch, in_channels=3, num_classes=10, resolution=resolution)
        assert measured <= estimate.activation_bytes <= 6 * measured, arch


def test_solver_refuses_absurd_budgets_at_once() -> None:
    """A budget that cannot fit in memory or needs widths above the maximum is refused without a long search."""
    space = Space.from_file(str(BOTTLENECK))
    for arch in space.sample_distinct(5, seed=0):
        for params in (10**11, 10**12, 10**15):  # beyond memory, or beyond the widest allowed widths
            start = time.perf_counter()
            with pytest.raises(BudgetError):
                fit(arch, Budget(params), MNIST)
            assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    "value,expected",
    [
        ("abc", "'abc'"),
        ("a" * 12_345, "…' (12,345 characters)"),
        (list(range(5000)), "…] (5,000 items)"),
        (10**5000, "<an integer of about 5,001 digits>"),
        ("line\nbreak", "'line\\nbreak'"),
    ],
    ids=["short", "long-string", "long-list", "huge-int", "newline"],
)
def test_shown_caps_every_value(value: object, expected: str) -> None:
    text = shown(value)
    assert expected in text and "\n" not in text and len(text) <= 120


def test_shown_is_bounded_on_cyclic_and_shared_structures() -> None:
    loop: list[Any] = []
    loop.append(loop)
    shared: list[Any] = ["lol"] * 9
    for _ in range(12):  # 9 ** 13 leaves if expanded
        shared = [shared] * 9
    start = time.perf_counter()
    for value in (loop, shared, {"k" * 10**6: "v" * 10**6}):
        assert len(shown(value)) <= 120
    assert time.perf_counter() - start < 0.1
