"""Layer helpers shared by the blocks, each with a matching parameter-count function (pycls style)."""

from __future__ import annotations

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


def reduced(channels: int, expansion: int) -> int:
    """A width divided by the expansion: max(1, round(c / e))."""
    return max(1, round(channels / expansion))


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
