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


def _yaml_accepts(stage: dict, stem: dict, head: dict) -> bool:
    data = {"stem": stem, "head": head, "stages": [{"depth": stage["depth"], "width": stage["width"],
                                                    "stride": stage["stride"]}],
            "choices": {"block": "inverted", "kernel": stage["kernel"], "expansion": stage["expansion"]}}
    try:
        Space(parse_space(data, "rules.yaml")).enumerate().__next__()
    except SpaceError:
        return False
    return True


def _string_accepts(stage: dict, stem: dict, head: dict) -> bool:
    head_token = "/head" + (f"_c{head['width']}" if head.get("width") is not None else "")
    text = (f"stem_c{stem['width']}_k{stem['kernel']}_s{stem['stride']}/inverted_d{stage['depth']}"
            f"_s{stage['stride']}_c{stage['width']}_e{stage['expansion']}_k{stage['kernel']}_relu{head_token}")
    try:
        Architecture.parse(text)
    except SpaceError:
        return False
    return True


_STAGE = {"depth": 1, "width": 16, "stride": 1, "kernel": 3, "expansion": 4}
_STEM = {"width": 16, "kernel": 3, "stride": 1}
_RULE_GRID = (
    [("stage", "stride", v) for v in (0, 1, 2, 3, 4)]
    + [("stage", "kernel", v) for v in (0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17)]
    + [("stage", "width", v) for v in (0, 1, 16_384, 16_385, 99_999_999)]
    + [("stage", "depth", v) for v in (0, 1, 128, 129)]
    + [("stage", "expansion", v) for v in (0, 1, 16, 17)]
    + [("stem", "width", v) for v in (0, 1, 16_384, 16_385)]
    + [("stem", "stride", v) for v in (0, 1, 2, 3, 4, 8, 9)]
    + [("head", "width", v) for v in (0, 1, 16_384, 16_385)]
    + [("stem-kernel-stride", "kernel", (k, s)) for k in (1, 2, 3, 4, 5, 6, 15, 16) for s in (1, 2, 4, 9)]
)


@pytest.mark.parametrize("part,field,value", _RULE_GRID)
def test_yaml_and_string_obey_one_set_of_rules(part: str, field: str, value) -> None:
    stage, stem, head = dict(_STAGE), dict(_STEM), {}
    if part == "stage":
        stage[field] = value
    elif part == "stem":
        stem[field] = value
    elif part == "head":
        head[field] = value
    else:
        stem["kernel"], stem["stride"] = value
    assert _yaml_accepts(stage, stem, head) == _string_accepts(stage, stem, head)


def test_what_the_rules_allow_and_refuse() -> None:
    accepted = ["stem_c40_k4_s4/convnext_d1_s1_c40_e4_k7_gelu_dw", "stem_c64_k7_s2_pool/basic_d1_s1_c64_k3_relu_bn",
                "stem_c8_k4_s1/basic_d1_c8_k1_relu", "stem_c16384/basic_d128_c16384_k15_relu/head_c16384"]
    for text in accepted:
        Architecture.parse(text)
    refused = ["stem_c16/basic_d1_s3_c16_k3_relu", "stem_c16/basic_d1_c16_k4_relu", "stem_c16/basic_d1_c0_k3_relu",
               "stem_c16/basic_d1_c16_k3_relu/head_c0", "stem_c\uff11\uff16/basic_d1_c16_k3_relu",
               "stem_c16_k4_s9/basic_d1_c16_k3_relu", "stem_c16_k4_s2/basic_d1_c16_k3_relu"]
    for text in refused:
        with pytest.raises(SpaceError):
            Architecture.parse(text)


def test_load_target_tells_files_directories_and_strings_apart(tmp_path: Path) -> None:
    from nas.space import load_target

    with pytest.raises(SpaceError, match="is a directory, not a space file"):
        load_target(str(tmp_path))
    space = tmp_path / "space"  # a file without a .yaml suffix is still read as a space file
    space.write_text("stages: [{depth: 1, width: 8}]\n")
    assert load_target(str(space)).space is not None
    assert load_target("stem_c16/basic_d1_c16_k3_relu").arch is not None
    with pytest.raises(SpaceError, match="too long"):
        load_target("stem_c16/" + "a/" * 5000)  # never handed to the file system as a path


def test_descriptions_are_kept_whole(tmp_path: Path) -> None:
    long = "word " * 12_000  # 60 KB, under the 64 KiB limit on a space file
    path = tmp_path / "long.yaml"
    path.write_text(f"description: {long}\nstages: [{{depth: 1, width: 8}}]\n")
    spec = load_space_file(path)
    assert spec.description == long.strip()
    excerpt = spec.description_excerpt(100)
    assert len(excerpt) < 130 and excerpt.endswith("(59,999 characters)")
