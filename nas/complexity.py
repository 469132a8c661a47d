"""Complexity of a network: parameters, MACs (fvcore), activation memory (total and peak) and CPU latency.

MAC convention (documented in the README):

- convolutions and linear layers: one MAC per multiply-add, as fvcore counts them;
- normalisation: fvcore's counts (BatchNorm in eval mode 1 per element, or 2 with affine
  parameters; LayerNorm 5 per element with affine parameters);
- every other op that touches tensor values — activations (relu2, starrelu and solu
  included), residual additions, multiplications, softmax, pooling — one MAC per output
  element. fvcore skips these; we register a handler for each op it reports as
  unsupported, so nothing counts silently as zero (``ComplexityReport.elementwise_ops``
  names them).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn

from nas.space.architecture import Architecture

# fvcore ignores these on purpose, but they do arithmetic on every element.
_COUNTED_ANYWAY = ("aten::clamp", "aten::clamp_", "aten::max", "aten::min", "aten::masked_fill")


@dataclass(frozen=True)
class ComplexityReport:
    """What one architecture costs at a given input shape."""

    params: int
    macs: int
    activation_bytes: int
    latency_ms: float | None
    input_shape: tuple[int, ...]
    per_stage: list[dict[str, Any]] = field(default_factory=list)
    elementwise_ops: list[str] = field(default_factory=list)
    peak_activation_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fvcore_nn() -> Any:
    """``fvcore.nn``, imported without the DeprecationWarning its focal-loss module raises by calling
    ``torch.jit.script`` at import (fvcore's code, not ours; nothing of it runs here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
        import fvcore.nn
        import fvcore.nn.jit_handles
    return fvcore.nn


def _elementwise(inputs: list[Any], outputs: list[Any]) -> int:
    get_shape = _fvcore_nn().jit_handles.get_shape

    shape = get_shape(outputs[0]) if outputs else None
    return int(prod(shape)) if shape else 0


_ELEMENTWISE: set[str] = set(_COUNTED_ANYWAY)  # ops given our handler, grown as networks bring new ones


def count_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int], list[str]]:
    """Total MACs, MACs by module name (one level down) and the element-wise ops our handler counted (non-zero).

    One fvcore trace per call once the element-wise ops of the network's layers are known: a trace that meets
    an op without a handler adds it to the known set and counts again.
    """
    import logging

    FlopCountAnalysis = _fvcore_nn().FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        while True:
            analysis = FlopCountAnalysis(model, (example,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.set_op_handle(**{op: _elementwise for op in _ELEMENTWISE})
            total = int(analysis.total())
            new = set(analysis.unsupported_ops()) - _ELEMENTWISE
            if not new:
                break
            _ELEMENTWISE.update(new)
        by_module = {k: int(v) for k, v in analysis.by_module().items()}
        by_operator = analysis.by_operator()
    finally:
        model.train(was_training)
    counted = {op.split("::")[-1] for op in _ELEMENTWISE if op not in _COUNTED_ANYWAY}
    return total, by_module, sorted(f"aten::{op}" for op in by_operator if op in counted)


def activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of every leaf module's output for one forward pass of ``example`` (float32)."""
    total = 0

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    run_hooked(model, example, [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())])
    return total


def run_hooked(model: nn.Module, example: torch.Tensor, handles: list[Any]) -> None:
    """One forward pass of ``example`` in eval and inference mode, then the hooks' ``handles`` removed."""
    try:
        with torch.inference_mode():
            model.eval()
            model(example)
    finally:
        for h in handles:
            h.remove()


def peak_activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Peak bytes of activations alive at once in one forward pass at batch 1 (the limit on microcontrollers).

    Layers run one after another, each reading its input and writing its output; a block with a shortcut
    keeps its input alive until the addition; norms and activations run in place (a deployed graph folds
    batch norm into the conv before it and fuses the activation). So at the end of every other module (leaf
    or not) the live set is its inputs, its output and the inputs held by the enclosing residual blocks,
    each tensor counted once; the peak is the largest such set. Weights are not counted (they live in flash
    on such targets).
    """
    from nas.models.activations import Activation
    from nas.models.norms import ChannelLayerNorm

    in_place = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, ChannelLayerNorm, Activation, nn.Identity,
                nn.Dropout, nn.Sigmoid, nn.Hardsigmoid)
    held: list[torch.Tensor] = []
    peak = 0

    def tensors(value: Any) -> list[torch.Tensor]:
        if isinstance(value, torch.Tensor):
            return [value]
        if isinstance(value, list | tuple):
            return [t for t in value if isinstance(t, torch.Tensor)]
        return []

    def hold(module: nn.Module, inputs: Any) -> None:
        held.extend(tensors(inputs)[:1] if getattr(module, "shortcut", None) is not None else [])

    def release(module: nn.Module, _inputs: Any, _output: Any) -> None:
        if getattr(module, "shortcut", None) is not None and held:
            held.pop()

    def live(_module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal peak
        alive = {t.data_ptr(): t.numel() * t.element_size() for t in [*held, *tensors(inputs), *tensors(output)]}
        peak = max(peak, sum(alive.values()))

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(hold))
        if not isinstance(module, in_place):
            handles.append(module.register_forward_hook(live))
        handles.append(module.register_forward_hook(release))
    run_hooked(model, example, handles)
    return peak


LATENCY_REPEATS, LATENCY_WARMUP = 50, 10  # a trained network's batch-1 latency: median of 50 timed passes


def latency_ms(model: nn.Module, example: torch.Tensor, *, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of one forward pass at batch 1 on the CPU, channels_last, inference mode."""
    model = model.eval().to(memory_format=torch.channels_last)
    x = example.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(
    arch: Architecture,
    *,
    in_channels: int,
    num_classes: int,
    resolution: int,
    latency: bool = True,
    repeats: int = 20,
) -> ComplexityReport:
    """Parameters, MACs, activation memory and (optionally) batch-1 CPU latency of ``arch``.

    Nothing is allocated before ``build_model`` has checked, from the architecture alone, that the network
    and one image's activations fit in memory (``nas.models.memory.check_memory``; a BudgetError if not).
    """
    from nas.models import build_model

    model = build_model(arch, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    params = sum(p.numel() for p in model.parameters())
    example = torch.randn(1, in_channels, resolution, resolution)
    macs, by_module, elementwise = count_macs(model, example)
    per_stage = []
    adapted = model.arch
    for i, stage in enumerate(adapted.stages):
        prefix = f"stages.{i}"
        per_stage.append(
            {
                "stage": i,
                "block": stage.block,
                "depth": stage.depth,
                "stride": stage.stride,
                "width": stage.width,
                "params": sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix + ".")),
                "macs": by_module.get(prefix, 0),
            }
        )
    return ComplexityReport(
        params=params,
        macs=macs,
        activation_bytes=activation_bytes(model, example),
        peak_activation_bytes=peak_activation_bytes(model, example),
        latency_ms=latency_ms(model, example, repeats=repeats) if latency else None,
        input_shape=(1, in_channels, resolution, resolution),
        per_stage=per_stage,
        elementwise_ops=elementwise,
    )
