"""The devices a network trains on (cpu, cuda), checked before any work starts."""

from __future__ import annotations

from nas.errors import ConfigError, shown

DEVICES = ("cpu", "cuda")


def check_device(device: str) -> str:
    """cpu, or cuda where it is available; anything else is refused before work starts."""
    if device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {shown(device)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but CUDA is not available here; use --device cpu")
    return device
