"""The 20 architectures of `nas space sample bottleneck.yaml --budget 1.5M -n 20 --seed 0` build and run forward."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.cli import main
from nas.models import build_model
from nas.space import Architecture
from nas.space.vocabulary import is_superlinear

torch.set_num_threads(1)

BOTTLENECK = Path(__file__).resolve().parents[1] / "search_spaces" / "bottleneck.yaml"
N = 20


@pytest.fixture(scope="module")
def sampled() -> list[dict[str, Any]]:
    """The CLI's JSON rows (params, hash, arch), taken once for the module."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["space", "sample", str(BOTTLENECK), "--budget", "1.5M", "-n", str(N), "--seed", "0", "--json"])
    assert code == 0
    rows = json.loads(out.getvalue())
    assert len(rows) == N
    return rows


@pytest.mark.parametrize("index", range(N))
def test_sampled_architecture_builds_and_runs(sampled: list[dict[str, Any]], index: int) -> None:
    row = sampled[index]
    arch = Architecture.parse(row["arch"])
    torch.manual_seed(index)
    model = build_model(arch, in_channels=1, num_classes=10, resolution=28)
    assert sum(p.numel() for p in model.parameters()) == row["params"]
    x = torch.randn(2, 1, 28, 28)
    with torch.inference_mode():
        logits = model.train()(x)  # BatchNorm on batch statistics, as in training
        assert logits.shape == (2, 10) and logits.dtype == torch.float32
        assert torch.isfinite(logits).all(), row["arch"]
        logits = model.eval()(x)
    assert logits.shape == (2, 10)
    # Untrained BatchNorm in eval mode is the identity, so stacked superlinear activations (relu2, ...) may overflow;
    # DESIGN.md records that as a property of those networks. Every other network must stay finite.
    if not any(is_superlinear(s.activation) for s in arch.stages):
        assert torch.isfinite(logits).all(), row["arch"]
