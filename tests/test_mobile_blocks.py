"""Squeeze-excitation, fractional and given expansions, per-block stages, the hidden head layer: the forms
MobileNetV3 and EfficientNet need, their baselines counted exactly, and the mobile space searched."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import yaml

from nas.cli import main
from nas.errors import SpaceError
from nas.models import build_model
from nas.models.counting import count_params
from nas.models.layers import expanded, make_divisible, se_width
from nas.sampling import Shape, fit
from nas.space import Architecture, Space, load_space_file, parse_space
from nas.space.budget import Budget
from nas.space.vocabulary import ACTIVATIONS

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"
TORCHVISION = {  # torchvision's documented parameter counts (ImageNet shapes, 1,000 classes)
    "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032,
    "efficientnet_b0": 5_288_548,
}


def _baseline(name: str) -> Architecture:
    return next(Space(load_space_file(SPACES / "baselines" / f"{name}.yaml")).enumerate())


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_baselines_count_exactly_and_build(name: str) -> None:
    arch = _baseline(name)
    assert count_params(arch, in_channels=3, num_classes=1000) == TORCHVISION[name]
    model = build_model(arch, in_channels=3, num_classes=1000, resolution=224)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION[name]
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_divisor_rules_are_torchvisions() -> None:
    assert [make_divisible(v) for v in (18, 22, 4, 60, 240)] == [24, 24, 8, 64, 240]
    assert expanded(24, 3.6667) == 88 and expanded(80, 2.3) == 184 and expanded(16, 4.5) == 72
    assert expanded(16, 3.6667) == 56  # 58.7 rounded to a multiple of 8
    assert se_width(16, 72, 0.25, "expanded") == 24 and se_width(40, 240, 0.25, "input") == 10
    assert se_width(2, 12, 0.25, "input") == 1


def test_mobilenet_v3_small_reads_as_the_paper_table() -> None:
    arch = _baseline("mobilenet_v3_small")
    assert len(arch.stages) == 11 and arch.stem.activation == "hardswish"
    assert [s.expansion for s in arch.stages[:3]] == [1, 4.5, 3.6667]
    assert [s.se for s in arch.stages] == [0.25, 0, 0] + [0.25] * 8
    assert arch.head.width == 576 and arch.head.hidden == 1024


def _random_arch(rng: random.Random) -> Architecture:
    widths = [8 * rng.randint(1, 6) for _ in range(rng.randint(1, 4))]
    stages = []
    for width in widths:
        se = rng.choice([0, 0.25, 0.5, 1.0])
        stages.append(
            "_".join([
                rng.choice(["inverted", "inverted", "convnext", "bottleneck", "basic"]),
                f"d{rng.randint(1, 3)}", f"s{rng.choice([1, 2])}", f"c{width}",
                f"e{rng.choice([1, 2.5, 3.6667, 4.5, 6, 2.3])}", f"k{rng.choice([3, 5])}",
                rng.choice(list(ACTIVATIONS)), rng.choice(["dw", "dense"]), "bn",
                *([f"se{se:g}-{rng.choice(['exp', 'in'])}-{rng.choice(['relu', 'silu'])}-{rng.choice(['sig', 'hsig'])}"]
                  if se else []),
            ])
        )
    stem = f"stem_c{8 * rng.randint(1, 4)}_k3_s1" + rng.choice(["", "_hardswish", "_relu"])
    head = rng.choice(["", "/head_c64", "/head_h32_p0.2", "/head_c48_h96"])
    return Architecture.parse("/".join([stem, *stages]) + head)


def _as_space_file(arch: Architecture) -> dict:
    """The architecture written as a fixed space file (every choice a per-stage key)."""
    stages = []
    for s in arch.stages:
        stages.append({
            "stride": s.stride, "depth": s.depth, "width": s.width, "block": s.block, "expansion": s.expansion,
            "kernel": s.kernel, "activation": s.activation, "depthwise": s.depthwise, "norm": s.norm, "se": s.se,
            "se_of": s.se_of, "se_activation": s.se_activation, "se_gate": s.se_gate,
        })
    stem = {"width": arch.stem.width, "kernel": arch.stem.kernel, "stride": arch.stem.stride,
            "activation": arch.stem.activation}
    head = {"width": arch.head.width, "hidden": arch.head.hidden, "dropout": arch.head.dropout}
    return {"stem": stem, "stages": stages, "head": head}


def test_string_json_yaml_and_hash_round_trip_on_random_networks(tmp_path: Path) -> None:
    rng = random.Random(11)
    hashes = set()
    for i in range(200):
        arch = _random_arch(rng)
        text = arch.to_string()
        assert Architecture.parse(text) == arch and Architecture.parse(text).to_string() == text
        assert Architecture.from_json(arch.to_json()) == arch
        path = tmp_path / f"a{i}.yaml"
        path.write_text(yaml.safe_dump(_as_space_file(arch)))
        again = next(Space(load_space_file(path)).enumerate())
        assert again == arch and again.semantic_hash == arch.semantic_hash
        model = build_model(arch, in_channels=1, num_classes=10, resolution=16)
        assert sum(p.numel() for p in model.parameters()) == count_params(arch, in_channels=1, num_classes=10)
        hashes.add(arch.semantic_hash)
    assert len(hashes) > 150


def test_unread_and_default_forms_fold_to_one_hash() -> None:
    a = Architecture.parse("stem_c16_k3_s1_relu/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25")
    b = Architecture.parse("stem_c16/inverted_d1_s1_c16_e6.0_k3_relu_dw_bn_se0.25-exp-relu-hsig")
    assert a == b and a.semantic_hash == b.semantic_hash
    assert a.to_string() == "stem_c16_k3_s1/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25-exp-relu-hsig"
    plain = Architecture.parse("stem_c16/basic_d1_s1_c16_k3_relu_bn_se0.25-in-silu-sig")  # basic reads no SE
    assert plain.to_string() == "stem_c16_k3_s1/basic_d1_s1_c16_k3_relu_bn"
    old = Architecture.parse("stem_c16_k3_s1/inverted_d2_s2_c24_e6_k3_relu6_dw_bn/head_c1280")
    assert old.semantic_hash == "a770bcbba097"  # networks without the new forms keep their hash


def test_blocks_list_is_consecutive_stages_and_expanded_is_a_ratio() -> None:
    data = {
        "stem": {"width": 16},
        "stages": [
            {"stride": 2, "width": 24, "kernel": 5, "blocks": [{"expanded": 72}, {"expanded": 88, "kernel": 3}]},
        ],
        "choices": {"block": "inverted"},
    }
    arch = next(_space(data).enumerate())
    assert [(s.stride, s.width, s.kernel, s.expansion) for s in arch.stages] == [(2, 24, 5, 4.5), (1, 24, 3, 3.6667)]
    blocks = data["stages"][0]["blocks"]
    same = {**data, "stages": [{"stride": 2, "width": 24, "kernel": 5, "depth": 2, "blocks": blocks}]}
    assert next(_space(same).enumerate()) == arch


def _space(data: dict) -> Space:
    return Space(parse_space(data, "test.yaml"))


@pytest.mark.parametrize(
    ("stage", "choices", "needle"),
    [
        ({"se": 0}, {"se": [0, 1.5]}, r"choices.se\[1\]: must be 0 \(no squeeze-excitation\) or a ratio"),
        ({"se": -0.25}, {}, r"stages\[0\].se\[0\]: must be 0"),
        ({"se": "yes"}, {}, r"stages\[0\].se\[0\]: must be 0"),
        ({"expanded": 8}, {}, r"stages\[0\].expanded: expanded width 8 is below the block's input width 16"),
        ({"expanded": 300}, {}, r"more than 16 x"),
        ({"expanded": 32, "expansion": 2}, {}, r"stages\[0\]: give 'expansion' \(a ratio\) or 'expanded'"),
        ({"expansion": 0.5}, {}, r"stages\[0\].expansion\[0\]: must be a number from 1 to 16"),
        ({"expansion": float("nan")}, {}, r"must be a number from 1 to 16"),
        ({"se_gate": "tanh"}, {}, r"stages\[0\].se_gate\[0\]: unknown squeeze-excitation gate 'tanh'"),
        ({"se_of": "output"}, {}, r"unknown squeeze-excitation base 'output'"),
        ({}, {"se_activation": ["relu", "silu"]}, r"choices.se_activation: takes one value"),
        ({"blocks": [{"kernel": 3}, {"stride": 2}]}, {}, r"stages\[0\].blocks\[1\]: unknown key 'stride'"),
        ({"blocks": [{"kernel": 3}, {"blocks": []}]}, {}, r"stages\[0\].blocks\[1\]: unknown key 'blocks'"),
        ({"blocks": [{"colour": 3}]}, {}, r"stages\[0\].blocks\[0\]: unknown key 'colour'"),
        ({"blocks": []}, {}, r"stages\[0\].blocks: must be a non-empty list"),
        ({"blocks": "3x3"}, {}, r"stages\[0\].blocks: must be a non-empty list"),
        ({"blocks": [1]}, {}, r"stages\[0\].blocks\[0\]: must be a mapping"),
        ({"depth": 3, "blocks": [{}, {}]}, {}, r"stages\[0\].depth: is 3 but 2 blocks are listed"),
        ({"blocks": [{"kernel": 3}] * 40}, {}, r"stages: an architecture has 1 to 32 stages, got 40 \(each listed"),
    ],
)
def test_new_fields_are_checked_with_their_key_path(stage: dict, choices: dict, needle: str) -> None:
    base = {"stride": 1, "width": 32, **({} if "blocks" in stage else {"depth": 1}), **stage}
    data = {"stem": {"width": 16}, "stages": [base], "choices": {"block": "inverted", **choices}}
    with pytest.raises(SpaceError, match=needle):
        _space(data)


@pytest.mark.parametrize(
    ("stem", "head", "needle"),
    [
        ({"width": 16, "activation": "swish"}, {}, r"stem.activation: unknown activation 'swish'"),
        ({"width": 16}, {"hidden": 0}, r"head.hidden: must be a positive integer"),
        ({"width": 16}, {"hidden": 1.5}, r"head.hidden: must be a positive integer"),
    ],
)
def test_stem_and_head_fields_are_checked(stem: dict, head: dict, needle: str) -> None:
    with pytest.raises(SpaceError, match=needle):
        _space({"stem": stem, "stages": [{"width": 16, "depth": 1}], "head": head})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se1.5", "must be 0 .no squeeze-excitation. or a ratio"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25-out", "unknown squeeze-excitation part 'out'"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25-in-exp", "two se of values"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se0.25_se0.5", "two squeeze-excitation parts"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn_se.5", "unknown field 'se.5'.*se<ratio>"),
        ("stem_c16/inverted_d1_s1_c16_e0.5_k3_relu_dw_bn", "expansion must be a number from 1 to 16"),
        ("stem_c16/inverted_d1_s1_c16_e17_k3_relu_dw_bn", "expansion must be a number from 1 to 16"),
        ("stem_c16_relu_gelu/inverted_d1_s1_c16_e6_k3_relu_dw_bn", "stem: two activations"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn/head_h0", "hidden must be a positive integer"),
        ("stem_c16/inverted_d1_s1_c16_e6_k3_relu_dw_bn/head_h1.5", "'h' must be a whole number"),
    ],
)
def test_bad_new_string_fields(text: str, needle: str) -> None:
    with pytest.raises(SpaceError, match=needle):
        Architecture.parse(text)


def test_baselines_scale_to_a_small_budget() -> None:
    shape = Shape(in_channels=1, resolution=28, num_classes=10)
    for name in TORCHVISION:
        arch = _baseline(name).adapted_to_input(28).with_downsamplings(3)
        solved = fit(arch, Budget(1_500_000), shape)
        assert 1_425_000 <= solved.params <= 1_500_000
        head = solved.arch.head
        assert (head.hidden is None) == (name == "efficientnet_b0")  # the hidden layer is scaled, not dropped
        pairs = zip(arch.stages, solved.arch.stages, strict=True)
        assert all(a.se == b.se and a.expansion == b.expansion for a, b in pairs)


def test_mobile_space_searches_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    space = Space(load_space_file(SPACES / "mobile.yaml"))
    assert space.size() > 10**9 and space.spec.budget is not None and space.spec.budget.params == 1_500_000
    drawn = space.sample_distinct(20, seed=0)
    assert any(s.se for a in drawn for s in a.stages) and any(not s.se for a in drawn for s in a.stages)
    assert any(isinstance(s.expansion, float) for a in drawn for s in a.stages)
    code = main(["search", "--space", str(SPACES / "mobile.yaml"), "--budget", "1.5M", "--dataset", "synthetic",
                 "--trials", "2", "--set", "train_images=64", "--set", "epochs=1", "--set", "val_images=60",
                 "--set", "probe_images=60", "--set", "batch_size=32", "--workers", "1", "--cpus-per-trial", "1",
                 "--results-dir", str(tmp_path), "--run", "mobile"])
    assert code == 0
    rows = (tmp_path / "mobile" / "trials.csv").read_text().splitlines()
    assert len(rows) == 3 and all("inverted_" in row for row in rows[1:])


def test_committed_runs_keep_their_strings_and_hashes() -> None:
    """Every architecture in the committed runs' trials.csv parses back to its stored string and hash."""
    import csv

    seen = 0
    for table in sorted((ROOT / "results").rglob("trials.csv")):
        with open(table) as fh:
            for row in csv.DictReader(fh):
                if row.get("arch") and row.get("arch_hash"):
                    arch = Architecture.parse(row["arch"])
                    assert (arch.to_string(), arch.semantic_hash) == (row["arch"], row["arch_hash"]), table
                    seen += 1
    assert seen > 100


def test_new_baselines_join_retrain_and_compare() -> None:
    from nas.retrain.select import baseline_names

    assert set(TORCHVISION) <= set(baseline_names())
