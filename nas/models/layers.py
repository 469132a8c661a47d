"""Layer helpers shared by the blocks, each with a matching parameter-count function (pycls style)."""

from __future__ import annotations

import torch
from torch import nn

from nas.models.activations import activation_params, make_activation
from nas.models.norms import make_norm, norm_params


def conv_padding(kernel: int, stride: int) -> int | str:
    """Padding giving ceil(size / stride) outputs: k // 2 for odd k; 'same' for even k at stride 1."""
    if kernel % 2 == 1:
        return kernel // 2
    return "same" if stride == 1 else (kernel - 1) // 2


def conv2d(c_in: int, c_out: int, kernel: int, stride: int = 1, *, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """A k x k convolution padded by :func:`conv_padding` (bias off: a norm follows)."""
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=conv_padding(kernel, stride), groups=groups, bias=bias)


def conv_params(c_in: int, c_out: int, kernel: int, *, groups: int = 1, bias: bool = False) -> int:
    """Parameters of :func:`conv2d`."""
    return c_out * (c_in // groups) * kernel * kernel + (c_out if bias else 0)


def reduced(channels: int, expansion: float) -> int:
    """A width divided by the expansion: max(1, round(c / e))."""
    return max(1, round(channels / expansion))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, never below 90 % of ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def expanded(channels: int, expansion: float) -> int:
    """A width times the expansion: C·e when that is whole, else C·e rounded by :func:`make_divisible`."""
    exact = round(float(channels * expansion), 6)
    return int(exact) if exact.is_integer() else make_divisible(exact)


def se_width(c_in: int, hidden: int, ratio: float, of: str) -> int:
    """The squeezed width: ``ratio`` of the expanded width rounded to a multiple of 8 (MobileNetV3), or of the
    block's input width, floored and at least 1 (EfficientNet)."""
    if of == "input":
        return max(1, int(c_in * ratio))
    return make_divisible(int(hidden * ratio))


class SqueezeExcite(nn.Module):
    """Squeeze-excitation (Hu et al. 2018): x * gate(fc2(σ(fc1(avgpool(x))))), the fc layers 1x1 convs with bias."""

    def __init__(self, channels: int, squeezed: int, *, act: str, gate: str) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = make_activation(act, squeezed)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid() if gate == "hardsigmoid" else nn.Sigmoid()

    @staticmethod
    def count_params(channels: int, squeezed: int, *, act: str) -> int:
        return (
            conv_params(channels, squeezed, 1, bias=True)
            + activation_params(act, squeezed)
            + conv_params(squeezed, channels, 1, bias=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class ConvNorm(nn.Sequential):
    """conv (bias off) -> norm [-> activation]; ``act=None`` keeps it linear."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        *,
        groups: int = 1,
        norm: str,
        act: str | None = None,
    ) -> None:
        layers: list[nn.Module] = [conv2d(c_in, c_out, kernel, stride, groups=groups), make_norm(norm, c_out)]
        if act is not None:
            layers.append(make_activation(act, c_out))
        super().__init__(*layers)

    @staticmethod
    def count_params(c_in: int, c_out: int, kernel: int, *, groups: int = 1, norm: str, act: str | None = None) -> int:
        n = conv_params(c_in, c_out, kernel, groups=groups) + norm_params(norm, c_out)
        return n + (activation_params(act, c_out) if act is not None else 0)
