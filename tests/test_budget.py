"""Tests for the budget solver (nas.models.budget)."""

from __future__ import annotations

import random
import time

import pytest
import torch

from nas.errors import BudgetError
from nas.models import build_model, count_params, round_to_divisor, solve_budget
from nas.space.architecture import Architecture, Head, Stage, Stem
from nas.space.vocabulary import ACTIVATIONS, FAMILIES, NORMS

torch.set_num_threads(1)

BUDGET, TOL, DIV = 1_500_000, 0.05, 8


def reference(rng: random.Random) -> Architecture:
    """A 4-stage reference with relative widths 1-2-4-8 (jittered) and mixed families."""
    base = rng.choice([8, 16, 24])
    stages = tuple(
        Stage(
            block=rng.choice(list(FAMILIES)),
            depth=rng.randint(1, 4),
            stride=stride,
            width=max(1, round(base * mult * rng.uniform(0.75, 1.5))),
            expansion=rng.choice([1, 2, 4, 6]),
            kernel=rng.choice([3, 5]),
            activation=rng.choice(list(ACTIVATIONS)),
            depthwise=rng.random() < 0.5,
            norm=rng.choice(NORMS),
        )
        for stride, mult in zip((1, 2, 2, 2), (1, 2, 4, 8), strict=True)
    )
    head = Head(width=rng.choice([None, None, base * 16]), dropout=0.1)
    return Architecture(Stem(width=base, kernel=3, stride=rng.choice([1, 2])), stages, head)


def test_round_to_divisor() -> None:
    assert round_to_divisor(0, 8) == 8
    assert round_to_divisor(3.9, 8) == 8
    assert round_to_divisor(12, 8) == 16  # halves round up
    assert round_to_divisor(11.9, 8) == 8
    assert round_to_divisor(100, 8) == 104
    assert round_to_divisor(7, 1) == 7


def test_random_references_land_in_the_window() -> None:
    rng = random.Random(0)
    elapsed = 0.0
    for _ in range(300):
        ref = reference(rng)
        t0 = time.perf_counter()
        arch = solve_budget(ref, budget=BUDGET, tolerance=TOL, divisor=DIV, in_channels=1, num_classes=10)
        elapsed += time.perf_counter() - t0
        n = count_params(arch, in_channels=1, num_classes=10)
        assert 1_425_000 <= n <= 1_500_000, (ref, arch, n)
        widths = [arch.stem.width, *(s.width for s in arch.stages)] + ([arch.head.width] if arch.head.width else [])
        assert all(w % DIV == 0 and w >= DIV for w in widths)
        # only the widths change
        assert arch.with_widths(ref.stem.width, [s.width for s in ref.stages], ref.head.width, None) == ref
    assert elapsed / 300 < 0.05  # typically ~1 ms; generous for a shared CPU


def test_solved_count_matches_built_model() -> None:
    rng = random.Random(1)
    for _ in range(5):
        arch = solve_budget(reference(rng), budget=BUDGET, tolerance=TOL, divisor=DIV, in_channels=1, num_classes=10)
        with torch.device("meta"):
            model = build_model(arch, in_channels=1, num_classes=10, resolution=28)
        assert sum(p.numel() for p in model.parameters()) == count_params(arch, in_channels=1, num_classes=10)


def test_width_ratios_roughly_kept() -> None:
    ref = Architecture.parse(
        "stem_c16_k3_s1/inverted_d2_s1_c16_e4_k3_relu_dw_bn/inverted_d2_s2_c32_e4_k3_relu_dw_bn/"
        "inverted_d2_s2_c64_e4_k3_relu_dw_bn/inverted_d2_s2_c128_e4_k3_relu_dw_bn"
    )
    arch = solve_budget(ref, budget=BUDGET, tolerance=TOL, divisor=DIV, in_channels=1, num_classes=10)
    widths = [s.width for s in arch.stages]
    assert widths == sorted(widths)
    assert 1.5 < widths[3] / widths[2] < 2.5 and 1.5 < widths[2] / widths[1] < 2.5


def test_cheap_stem_does_not_soak_up_the_gap() -> None:
    # one divisor step of the later stages overshoots; an uncapped greedy fill grew this stem to 648
    ref = Architecture.parse(
        "stem_c16_k3_s1/separable_d1_s1_c16_k3_silu_ln/inverted_d4_s2_c35_e2_k5_gelu_dense_bn/"
        "nodepth_d4_s2_c80_e1_k5_relu2_ln/convnext_d4_s2_c151_e1_k5_relu2_dense/head_p0.1"
    )
    arch = solve_budget(ref, budget=BUDGET, tolerance=TOL, divisor=DIV, in_channels=1, num_classes=10)
    assert 1_425_000 <= count_params(arch, in_channels=1, num_classes=10) <= BUDGET
    assert arch.stem.width <= 2 * max(s.width for s in arch.stages[:2])


def test_impossible_budget() -> None:
    ref = reference(random.Random(2))
    with pytest.raises(BudgetError, match="minimum") as info:
        solve_budget(ref, budget=1000, tolerance=TOL, divisor=DIV, in_channels=1, num_classes=10)
    small = ref.with_widths(8, [8] * 4, 8 if ref.head.width else None, None)
    smallest = count_params(small, in_channels=1, num_classes=10)
    assert f"{smallest:,}" in str(info.value)


def test_unreachable_tolerance() -> None:
    ref = Architecture.parse("stem_c8_k3_s1/basic_d1_s1_c8_k3_relu_bn")
    smallest = count_params(ref, in_channels=1, num_classes=10)
    # one more parameter than the smallest network: no divisor step fits, and 1e-9 cannot be met
    with pytest.raises(BudgetError, match="larger tolerance") as info:
        solve_budget(ref, budget=smallest + 1, tolerance=1e-9, divisor=8, in_channels=1, num_classes=10)
    assert f"{smallest:,}" in str(info.value)
    arch = solve_budget(ref, budget=smallest + 1, tolerance=0.5, divisor=8, in_channels=1, num_classes=10)
    assert count_params(arch, in_channels=1, num_classes=10) == smallest


@pytest.mark.parametrize(("budget", "tolerance", "divisor"), [(0, 0.05, 8), (1000, 1.0, 8), (1000, 0.05, 0)])
def test_bad_arguments(budget: int, tolerance: float, divisor: int) -> None:
    with pytest.raises(BudgetError):
        solve_budget(
            Architecture.parse("stem_c8/basic_d1_c8_relu"),
            budget=budget,
            tolerance=tolerance,
            divisor=divisor,
            in_channels=1,
            num_classes=10,
        )
