"""StyleNet: our fast style-transfer generator, plus instance norm that can be tiled.

Architecture (Johnson et al. style, with resize-convolution upsampling)::

    stem   9x9 conv 3 -> C, norm, ReLU
    down   2 x (3x3 stride-2 conv, norm, ReLU)            C -> 2C -> 4C
    res    n_res x (conv, norm, ReLU, conv, norm) + skip   at 4C
    up     2 x (nearest x2, 3x3 conv, norm, ReLU)          4C -> 2C -> C
    head   9x9 conv C -> 3, sigmoid                        output in [0, 1]

Upsampling is nearest resize + conv, not transposed conv (2x slower in bf16 on our CPUs, and
checkerboard-prone). All convs use reflect padding. Default (C=32, n_res=5): about 1.7M params.
Its instance norms are :class:`~gantools.nn.layers.norm.TileableInstanceNorm`, so it tiles with
frozen statistics (``Tiling.INTERNAL``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.layers.norm import NormStatsMixin, TileableInstanceNorm
from gantools.nn.registry import Architecture, register_arch

NORMS = ("instance", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return TileableInstanceNorm(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {kind!r}")


def _conv_block(cin: int, cout: int, k: int, norm: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, padding_mode="reflect", bias=norm == "none"),
        _norm(norm, cout),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """conv-norm-ReLU-conv-norm with an identity skip."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect", bias=norm == "none")
        self.norm1 = _norm(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect", bias=norm == "none")
        self.norm2 = _norm(norm, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))


class UpBlock(nn.Module):
    """Nearest x2 resize, then a 3x3 conv block."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.block = _conv_block(cin, cout, 3, norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(F.interpolate(x, scale_factor=2, mode="nearest"))


class StyleNet(NormStatsMixin, nn.Module):
    """Style-transfer generator: (N, 3, H, W) in [0, 1] -> same shape in [0, 1].

    H and W must be multiples of 4 (two stride-2 stages) and at least 16.
    """

    def __init__(self, base_channels: int = 32, n_res: int = 5, norm: str = "instance",
                 in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        c = base_channels
        self.stem = _conv_block(in_channels, c, 9, norm)
        self.down = nn.Sequential(
            _conv_block(c, 2 * c, 3, norm, stride=2), _conv_block(2 * c, 4 * c, 3, norm, stride=2)
        )
        self.res = nn.Sequential(*(ResBlock(4 * c, norm) for _ in range(n_res)))
        self.up = nn.Sequential(UpBlock(4 * c, 2 * c, norm), UpBlock(2 * c, c, norm))
        self.head = nn.Conv2d(c, out_channels, 9, 1, 4, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.up(self.res(self.down(self.stem(x))))))


@register_arch
class StyleNetArch(Architecture):
    """Our style-transfer generator (exports of ``gantools train stylize``)."""

    id = "stylenet"
    module = StyleNet

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        stem = state_dict.get("stem.0.weight")
        head = state_dict.get("head.weight")
        if stem is None or head is None or stem.dim() != 4 or stem.shape[-1] != 9:
            return None
        n_res = len({k.split(".")[1] for k in state_dict if k.startswith("res.") and k.endswith("conv1.weight")})
        return dict(base_channels=int(stem.shape[0]), n_res=n_res,
                    norm="instance" if "stem.1.weight" in state_dict else "none",
                    in_channels=int(stem.shape[1]), out_channels=int(head.shape[0]))

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=config["in_channels"], out_channels=config["out_channels"],
                    size=SizeRequirements(4, 16, pad=False), tiling=Tiling.INTERNAL, bf16=True,
                    receptive_radius=14 + 8 * config["n_res"])
