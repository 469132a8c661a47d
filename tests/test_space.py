"""The search-space language: parsing, validation errors, sizes, sampling, hashing, budgets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from nas.errors import BudgetError, SpaceError
from nas.space import Architecture, Space, load_space_file, parse_budget, parse_space
from nas.space.vocabulary import ACTIVATIONS, FAMILIES

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"


def _space(data: dict) -> Space:
    return Space(parse_space(data, "test.yaml"))


MINIMAL = {"stages": [{"stride": 1, "depth": 1, "width": 16}]}


@pytest.mark.parametrize("text,value", [("1.5M", 1_500_000), ("1500k", 1_500_000), ("1500000", 1_500_000),
                                        ("1.5e6", 1_500_000), ("2m", 2_000_000), (" 250K ", 250_000)])
def test_budget_spellings(text: str, value: int) -> None:
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["abc", "-1", "0", "1.5G", "", "1.5 M params", "0.5", "1e-3M"])
def test_bad_budgets_are_errors(text: str) -> None:
    with pytest.raises(BudgetError):
        parse_budget(text)


def test_every_shipped_space_validates() -> None:
    files = [SPACES / "bottleneck.yaml", *sorted((SPACES / "baselines").glob("*.yaml"))]
    assert len(files) >= 5
    for f in files:
        space = Space(load_space_file(f))
        assert space.size() >= 1
        if "baselines" in f.parts:
            assert space.is_fixed, f


def test_default_space_size_is_exact() -> None:
    space = Space(load_space_file(SPACES / "bottleneck.yaml"))
    # per family: the choices it reads (activation 7, kernel 2, norm 2, expansion 3, depthwise 2)
    per_family = {"basic": 28, "bottleneck": 168, "inverted": 168, "separable": 28, "convnext": 84,
                  "sandglass": 168, "nodepth": 84}
    depths = 2 * 3 * 4 * 3
    assert space.size() == sum(per_family.values()) * depths == 52_416


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["stages"][0].update(depth=0), "stages[0].depth[0]: must be a positive integer"),
        (lambda d: d.update(choices={"block": ["basic", "resnext"]}), "unknown block 'resnext'"),
        (lambda d: d.update(choices={"activation": ["relu", "swish"]}), "unknown activation 'swish'"),
        (lambda d: d.update(choices={"norm": "group"}), "unknown norm 'group'"),
        (lambda d: d.update(choices={"kernel": [4]}), "kernel must be odd"),
        (lambda d: d.update(choices={"block": {"values": ["basic"], "per": "layer"}}), "choices.block.per"),
        (lambda d: d["stages"][0].update(stride=3), "must be 1 or 2"),
        (lambda d: d.update(budget={"params": "abc"}), "budget: budget 'abc' is not a parameter count"),
        (lambda d: d.update(budget={"params": "1M", "tolerance": 2}), "tolerance must lie in (0, 1)"),
        (lambda d: d.update(stages=[]), "stages: must be a non-empty list"),
        (lambda d: d.update(choices={"depthwise": ["yes"]}), "must be true or false"),
        (lambda d: d.update(choices={"expansion": [2, 2]}), "lists a value twice"),
    ],
)
def test_validation_errors_name_file_path_and_allowed(mutate, needle: str) -> None:
    data = {"stages": [{"stride": 1, "depth": [1, 2], "width": 16}], "choices": {"block": ["basic"]}}
    mutate(data)
    with pytest.raises(SpaceError) as err:
        parse_space(data, "my.yaml")
    message = str(err.value)
    assert message.startswith("my.yaml: ")
    assert needle in message
    if "unknown block" in needle:
        assert "allowed: " + ", ".join(FAMILIES) in message
    if "unknown activation" in needle:
        assert ", ".join(ACTIVATIONS) in message


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {stride: 1, depth: [1, 2\n")
    with pytest.raises(SpaceError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_space_file(bad)
    with pytest.raises(SpaceError, match="does not exist"):
        load_space_file(tmp_path / "missing.yaml")


def _random_space(rng: random.Random) -> dict:
    def pick(values: list, k: int | None = None) -> list:
        return rng.sample(values, k or rng.randint(1, min(3, len(values))))

    choices: dict = {}
    for name, values in [("block", list(FAMILIES)), ("expansion", [1, 2, 4, 6]), ("activation", list(ACTIVATIONS)),
                         ("depthwise", [True, False]), ("kernel", [3, 5]), ("norm", ["batch", "layer"])]:
        vals = pick(values)
        choices[name] = {"values": vals, "per": rng.choice(["stage", "network"])}
    stages = []
    for i in range(rng.randint(1, 3)):
        stage = {"stride": 1 if i == 0 else 2, "depth": pick([1, 2, 3]), "width": 8 * (i + 1)}
        if rng.random() < 0.3:
            stage["block"] = pick(list(FAMILIES), 2)
        if rng.random() < 0.3:
            stage["expansion"] = pick([1, 3])
        stages.append(stage)
    return {"stages": stages, "choices": choices}


def test_size_equals_enumeration_on_random_spaces() -> None:
    rng = random.Random(7)
    checked = 0
    while checked < 40:
        space = _space(_random_space(rng))
        size = space.size()
        if size > 3000:
            continue
        archs = list(space.enumerate())
        assert len(archs) == size
        assert len({a.semantic_hash for a in archs}) == size
        checked += 1


def test_sampling_is_seeded_and_distinct() -> None:
    space = Space(load_space_file(SPACES / "bottleneck.yaml"))
    a = [x.to_string() for x in space.sample_distinct(25, seed=3)]
    b = [x.to_string() for x in space.sample_distinct(25, seed=3)]
    c = [x.to_string() for x in space.sample_distinct(25, seed=4)]
    assert a == b and a != c and len(set(a)) == 25
    with pytest.raises(SpaceError, match="only 1 distinct"):
        Space(load_space_file(SPACES / "baselines" / "resnet18.yaml")).sample_distinct(2, seed=0)


def test_two_spellings_one_hash() -> None:
    canonical = ("stem_c16_k3_s1/basic_d2_s1_c16_k3_relu_bn/separable_d1_s2_c32_k5_gelu_ln/"
                 "convnext_d1_s2_c64_e4_k7_gelu_dw")
    verbose = ("stem_c16_s1_k3/basic_d2_c16_s1_e6_k3_relu_dense_bn/separable_k5_d1_s2_c32_e4_gelu_dw_ln/"
               "convnext_d1_s2_c64_e4_k7_gelu_dw_bn")
    a, b = Architecture.parse(canonical), Architecture.parse(verbose)
    assert a.to_string() == canonical == b.to_string()
    assert a.semantic_hash == b.semantic_hash
    other = Architecture.parse(canonical.replace("k5_gelu", "k3_gelu"))
    assert other.semantic_hash != a.semantic_hash


def test_string_and_json_round_trip() -> None:
    space = Space(load_space_file(SPACES / "bottleneck.yaml"))
    for arch in space.sample_distinct(50, seed=0):
        assert Architecture.parse(arch.to_string()) == arch
        assert Architecture.from_json(arch.to_json()) == arch
    mb2 = Space(load_space_file(SPACES / "baselines" / "mobilenet_v2.yaml")).enumerate()
    arch = next(mb2)
    assert Architecture.parse(arch.to_string()) == arch
    assert arch.to_string().endswith("/head_c1280_p0.2")


@pytest.mark.parametrize(
    "text,needle",
    [
        ("basic_d2_s1_c16_k3_relu_bn", "needs a stem and at least one stage"),
        ("stem_c16/basic_d2_s1_c16_k3_swish_bn", "unknown field 'swish'"),
        ("stem_c16/resnext_d2_s1_c16_k3_relu", "unknown block 'resnext'"),
        ("stem_c16/basic_s1_c16_k3_relu", "lacks the 'd<number>' field"),
        ("stem_c16/basic_d0_s1_c16_k3_relu", "depth must be a positive integer"),
        ("stem_c16/basic_d1_s1_c16_k3_relu_gelu", "two activations"),
        ("stem_c16/basic_d1_s1_c16_k3", "names no activation"),
        ("stem_c16/basic_d1_s1_c16_x9_relu", "unknown fields ['x']"),
    ],
)
def test_bad_architecture_strings(text: str, needle: str) -> None:
    with pytest.raises(SpaceError) as err:
        Architecture.parse(text)
    assert needle in str(err.value)


def test_small_inputs_drop_stem_downsampling() -> None:
    arch = Architecture.parse("stem_c64_k7_s2_pool/basic_d2_s1_c64_k3_relu_bn")
    assert arch.adapted_to_input(224) == arch
    small = arch.adapted_to_input(28)
    assert small.stem.stride == 1 and not small.stem.pool and small.stem.kernel == 7


def test_optuna_suggest_only_asks_active_choices() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = Space(load_space_file(SPACES / "bottleneck.yaml"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        arch = space.suggest(trial)
        block = arch.stages[0].block
        assert ("net.expansion" in trial.params) == FAMILIES[block].uses_expansion
        assert ("net.depthwise" in trial.params) == FAMILIES[block].uses_depthwise
        study.tell(trial, 0.0)


def test_space_files_are_yaml_safe(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SpaceError, match="malformed YAML"):
        load_space_file(evil)
    assert yaml.safe_load("a: 1") == {"a": 1}
