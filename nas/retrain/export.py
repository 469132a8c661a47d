"""Export a trained network (safetensors weights + arch.json), load it back (``nas.load``), and ONNX with a check.

``arch.json`` holds everything needed to rebuild the network without pickle: the architecture (string and
JSON), the input shape it was built for, and the data set's normalisation (``mean``/``std`` on the 0..1
scale; the model takes ``(x / 255 - mean) / std``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.atomic import atomic_path, atomic_write_json
from nas.errors import CheckpointError, ConfigError, ExportError
from nas.space.architecture import Architecture

WEIGHTS_NAME = "model.safetensors"
ARCH_NAME = "arch.json"
ONNX_NAME = "model.onnx"
EXPORT_FORMAT = 1
ONNX_TOLERANCE = 1e-4  # max abs difference of the logits, ONNX Runtime vs. PyTorch
ONNX_INSTALL = "pip install 'bottleneck-nas[onnx]'"


def save_export(
    model: nn.Module,
    arch: Architecture,
    folder: Path,
    *,
    in_channels: int,
    num_classes: int,
    resolution: int,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``model.safetensors`` (the state dict, contiguous CPU tensors) and ``arch.json``, both atomically."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": str(EXPORT_FORMAT), "arch": arch.to_string()})
    info = {
        "format": EXPORT_FORMAT,
        "arch": arch.to_string(),
        "arch_hash": arch.semantic_hash,
        "arch_json": arch.to_json(),
        "in_channels": in_channels,
        "num_classes": num_classes,
        "resolution": resolution,
        "params": sum(int(v.numel()) for v in model.parameters()),
        "weights": WEIGHTS_NAME,
        **(extra or {}),
    }
    atomic_write_json(folder / ARCH_NAME, info)
    return folder / WEIGHTS_NAME, folder / ARCH_NAME


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    if p.is_dir():
        return p / WEIGHTS_NAME, p / ARCH_NAME
    if p.suffix == ".json":
        return p.with_name(WEIGHTS_NAME), p
    return p, p.with_name(ARCH_NAME)


def read_export_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``arch.json`` of an export folder (or of the folder holding ``path``)."""
    _, arch_path = _paths(path)
    if not arch_path.is_file():
        raise CheckpointError(
            f"{path} is not a bottleneck-nas export: {arch_path} is missing (an export folder holds "
            f"{WEIGHTS_NAME} and {ARCH_NAME}, written by `nas retrain`)."
        )
    try:
        info = json.loads(arch_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{arch_path} cannot be read ({exc}); re-export the model with `nas retrain`.") from None
    needed = ("format", "arch", "in_channels", "num_classes", "resolution")
    if not isinstance(info, dict) or any(k not in info for k in needed):
        raise CheckpointError(f"{arch_path} lacks one of {', '.join(needed)}; it is not a bottleneck-nas export.")
    if info["format"] != EXPORT_FORMAT:
        raise CheckpointError(f"{arch_path} has export format {info['format']}; this version reads {EXPORT_FORMAT}.")
    return info


def load(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild an exported network (folder, its ``model.safetensors`` or ``arch.json``) in eval mode.

    The weights are read with safetensors (no pickle); shapes are checked against the rebuilt model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nas.models import build_model
    from nas.train import check_state_dict

    weights, _ = _paths(path)
    info = read_export_info(path)
    arch = Architecture.from_json(info["arch_json"]) if "arch_json" in info else Architecture.parse(info["arch"])
    model = build_model(
        arch, in_channels=int(info["in_channels"]), num_classes=int(info["num_classes"]),
        resolution=int(info["resolution"]),
    )
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; the export in {weights.parent} is incomplete.")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is corrupt or unreadable ({exc}); re-export it with `nas retrain`.") from None
    check_state_dict(model, state, weights)
    model.load_state_dict(state)
    return model.to(device).eval()


# ---- ONNX ---------------------------------------------------------------------------------------------------


def onnx_available() -> bool:
    """Whether the ONNX exporter's and ONNX Runtime's packages can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def require_onnx() -> None:
    """ConfigError naming the extra to install when ``onnx``/``onnxruntime`` are missing."""
    if not onnx_available():
        raise ConfigError(f"--onnx needs the packages onnx and onnxruntime; install them with: {ONNX_INSTALL}")


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor, *, opset: int = 17) -> float:
    """Export ``model`` (CPU, eval) to ONNX with a dynamic batch, re-run it with ONNX Runtime on ``example``.

    Returns the max abs difference of the logits; ExportError when it exceeds ``ONNX_TOLERANCE``.
    """
    import warnings

    require_onnx()
    import numpy as np
    import onnxruntime as ort

    model = model.to("cpu").eval()
    example = example.to("cpu", torch.float32).contiguous()
    try:
        with atomic_path(path) as tmp:  # kept only when the re-run agrees
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
                torch.onnx.export(
                    model, (example,), str(tmp), dynamo=False, input_names=["images"], output_names=["logits"],
                    dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                )
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = session.run(None, {"images": example.numpy()})[0]
            with torch.inference_mode():
                want = model(example).float().numpy()
            diff = float(np.abs(got - want).max())
            if not diff <= ONNX_TOLERANCE:
                raise ExportError(
                    f"the ONNX export of {path.parent.name} gives logits up to {diff:.2e} away from PyTorch's "
                    f"(tolerance {ONNX_TOLERANCE:g}); the file was not kept."
                )
    except ExportError:
        raise
    except Exception as exc:  # exporter and runtime raise many kinds; all mean "no usable ONNX file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ONNX export of {path.parent.name} failed: {first}") from None
    return diff
