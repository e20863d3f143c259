"""AnimeGANv2 generator, in the layout of bryandlee/animegan2-pytorch (``model.py``).

Checkpoints: face_paint_512_v1/v2, celeba_distill, paprika. Every ``ConvNormLReLU`` is a
Sequential ``(pad, conv, GroupNorm(1), LeakyReLU(0.2))``, so its keys are ``<name>.1.weight``
(conv, no bias except depthwise) and ``<name>.2.weight/bias`` (norm)::

    block_a.0  7x7 3->32 | block_a.1 3x3 s2 32->64 | block_a.2 64->64
    block_b.0  3x3 s2 64->128 | block_b.1 128->128
    block_c.0  128->128 | block_c.1..4 InvertedResBlock (128->256, 256->256 x3) | block_c.5 256->128
    block_d.0, .1  128->128 (after bilinear x2) | block_e.0 128->64, .1 64->64, .2 7x7 64->32
    out_layer.0  1x1 32->3, no bias, then Tanh

An ``InvertedResBlock(in, out)`` (expansion 2, bottleneck 2*in) has ``layers.0`` (1x1
ConvNormLReLU in->2in: ``layers.0.1.weight [2in,in,1,1]``), ``layers.1`` (depthwise 3x3 with bias:
``layers.1.1.weight [2in,1,3,3]``), ``layers.2`` (1x1 conv 2in->out, ``[out,2in,1,1]``) and
``layers.3`` (GroupNorm(1, out)); residual when in == out. Stride-2 layers pad right/bottom only.

The module maps [0, 1] input to [-1, 1] and its output back to [0, 1]. GroupNorm(1) normalises
over the whole image, so the net cannot be tiled; it is kept in fp32.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.registry import Architecture, register_arch


class ConvNormLReLU(nn.Sequential):
    """Reflect pad, conv (padding 0), GroupNorm(1, out), LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | tuple[int, int, int, int] = 1, groups: int = 1, bias: bool = False) -> None:
        super().__init__(
            nn.ReflectionPad2d(padding),
            nn.Conv2d(cin, cout, kernel_size, stride, 0, groups=groups, bias=bias),
            nn.GroupNorm(1, cout, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class InvertedResBlock(nn.Module):
    """MobileNetV2-style block: expand 1x1, depthwise 3x3, project 1x1 + GroupNorm."""

    def __init__(self, cin: int, cout: int, expansion: float = 2) -> None:
        super().__init__()
        self.use_res_connect = cin == cout
        hidden = int(round(cin * expansion))
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvNormLReLU(cin, hidden, kernel_size=1, padding=0))
        layers += [
            ConvNormLReLU(hidden, hidden, groups=hidden, bias=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.GroupNorm(1, cout, affine=True),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(x)
        return x + out if self.use_res_connect else out


_DOWN_PAD = (0, 1, 0, 1)


class AnimeGANv2Generator(nn.Module):
    """(N, 3, H, W) in [0, 1] -> same shape in [0, 1]. Any H, W >= 16 (multiples of 4 preferred)."""

    def __init__(self, align_corners: bool = True) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            ConvNormLReLU(32, 64, stride=2, padding=_DOWN_PAD),
            ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(ConvNormLReLU(64, 128, stride=2, padding=_DOWN_PAD), ConvNormLReLU(128, 128))
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256),
            *(InvertedResBlock(256, 256) for _ in range(3)),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(ConvNormLReLU(128, 128), ConvNormLReLU(128, 128))
        self.block_e = nn.Sequential(
            ConvNormLReLU(128, 64), ConvNormLReLU(64, 64), ConvNormLReLU(64, 32, kernel_size=7, padding=3)
        )
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())

    def _up(self, x: Tensor, size: Any) -> Tensor:
        if self.align_corners:
            return F.interpolate(x, size, mode="bilinear", align_corners=True)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block_a(x * 2 - 1)
        half = out.shape[-2:]
        out = self.block_c(self.block_b(out))
        out = self.block_d(self._up(out, half))
        out = self.block_e(self._up(out, x.shape[-2:]))
        return self.out_layer(out) * 0.5 + 0.5


@register_arch
class AnimeGANv2Arch(Architecture):
    """AnimeGANv2 generator checkpoints (bryandlee's PyTorch layout)."""

    id = "animegan2"
    module = AnimeGANv2Generator

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        first = state_dict.get("block_a.0.1.weight")
        out = state_dict.get("out_layer.0.weight")
        if first is None or out is None or tuple(first.shape) != (32, 3, 7, 7):
            return None
        if "block_c.1.layers.1.1.weight" not in state_dict:
            return None
        return {}

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=3, out_channels=3, size=SizeRequirements(1, 16),
                    tiling=Tiling.DISCOURAGED, bf16=False)
