"""SPAN: Swift Parameter-free Attention Network (Wan et al., 2024), an efficient SR network.

Written from the paper and the published checkpoint layout (OpenModelDB's SPAN models)::

    conv_1                  Conv3XC in_ch -> feat
    block_{i}.c{1,2,3}_r    Conv3XC feat -> feat, i = 1..num_blocks (SPAB blocks)
    conv_2                  Conv3XC feat -> feat
    conv_cat                1x1 conv 4*feat -> feat
    upsampler.0             3x3 conv feat -> out_ch * upscale**2, then a pixel shuffle
    no_norm                 buffer present when the input is NOT normalised (norm=False)

A Conv3XC has a trained branch (``sk``: 1x1; ``conv.0`` 1x1 c_in -> 2c_in, ``conv.1`` 3x3
without padding 2c_in -> 2c_out, ``conv.2`` 1x1 2c_out -> c_out, on the zero-padded input) and
``eval_conv``, the same sum folded into one 3x3 convolution. As published, inference runs the
folded conv (recomputed from the branches whenever the module enters eval mode, so a stale
``eval_conv`` in a checkpoint does not matter); training runs the branches.

An SPAB block: three Conv3XC with SiLU between them, then the parameter-free attention
``(c3 + x) * (sigmoid(c3) - 0.5)``. The network concatenates the first conv's features, the
last block's output after conv_2, the first block's output and the last block's c1 output. With
``norm`` the input is first mapped to ``(x - mean) * 255`` (no de-normalisation at the end).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.registry import Architecture, UnsupportedVariant, register_arch

RGB_MEAN = (0.4488, 0.4371, 0.4040)
IMG_RANGE = 255.0


class Conv3XC(nn.Module):
    """3x3 conv trained as 1x1-3x3-1x1 plus a 1x1 skip, folded into ``eval_conv`` for inference."""

    def __init__(self, c_in: int, c_out: int, gain: int = 2) -> None:
        super().__init__()
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * gain, 1), nn.Conv2d(c_in * gain, c_out * gain, 3), nn.Conv2d(c_out * gain, c_out, 1)
        )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.eval_conv.requires_grad_(False)

    @torch.no_grad()
    def fold(self) -> None:
        """Set ``eval_conv`` to the branches' sum (exact: the input is zero-padded before ``conv.0``)."""
        (w1, b1), (w2, b2), (w3, b3) = ((c.weight, c.bias) for c in self.conv)
        w = torch.einsum("on,nmhw,mi->oihw", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
        b = w3[:, :, 0, 0] @ (torch.einsum("nmhw,m->n", w2, b1) + b2) + b3
        w[:, :, 1, 1] += self.sk.weight[:, :, 0, 0]
        self.eval_conv.weight.copy_(w)
        self.eval_conv.bias.copy_(b + self.sk.bias)

    def train(self, mode: bool = True) -> Conv3XC:
        super().train(mode)
        if not mode:
            self.fold()
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Three Conv3XC with SiLU, then parameter-free attention; returns (out, c1 output)."""

    def __init__(self, feat: int) -> None:
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = Conv3XC(feat, feat), Conv3XC(feat, feat), Conv3XC(feat, feat)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out1 = self.c1_r(x)
        out3 = self.c3_r(F.silu(self.c2_r(F.silu(out1))))
        return (out3 + x) * (torch.sigmoid(out3) - 0.5), out1


class SPAN(nn.Module):
    """SPAN: (N, in_ch, H, W) in [0, 1] -> (N, out_ch, H*upscale, W*upscale), unclamped."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        num_blocks: int = 6,
        upscale: int = 4,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"SPAN needs at least one block, not {num_blocks}")
        self.num_blocks, self.norm = num_blocks, norm
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        if not norm:
            self.register_buffer("no_norm", torch.zeros(1))
        self.conv_1 = Conv3XC(num_in_ch, feature_channels)
        for i in range(1, num_blocks + 1):
            setattr(self, f"block_{i}", SPAB(feature_channels))
        self.conv_cat = nn.Conv2d(feature_channels * 4, feature_channels, 1)
        self.conv_2 = Conv3XC(feature_channels, feature_channels)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, num_out_ch * upscale * upscale, 3, padding=1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.norm:
            x = (x - self.mean) * IMG_RANGE
        first = out = out_b1 = mid = self.conv_1(x)
        for i in range(1, self.num_blocks + 1):
            out, mid = getattr(self, f"block_{i}")(out)
            if i == 1:
                out_b1 = out
        out = self.conv_cat(torch.cat([first, self.conv_2(out), out_b1, mid], 1))
        return self.upsampler(out)


@register_arch
class SPANArch(Architecture):
    """Recognises the published SPAN layout (``conv_1.sk``, ``block_{i}.c1_r``, ``conv_cat``, ``upsampler.0``)."""

    id = "span"
    module = SPAN

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        needed = ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "conv_cat.weight", "upsampler.0.weight")
        if not all(k in state_dict for k in needed):
            return None
        blocks = {int(m[1]) for k in state_dict if (m := re.match(r"block_(\d+)\.", k))}
        if blocks != set(range(1, len(blocks) + 1)):
            raise UnsupportedVariant(f"SPAN: unknown block layout (blocks {sorted(blocks)}, expected block_1..block_N)")
        sk, up = state_dict["conv_1.sk.weight"], state_dict["upsampler.0.weight"]
        num_in_ch, feat = int(sk.shape[1]), int(sk.shape[0])
        scale = round((up.shape[0] / num_in_ch) ** 0.5)
        if scale < 1 or num_in_ch * scale * scale != up.shape[0]:
            raise UnsupportedVariant(
                f"SPAN: unknown scale (upsampler has {up.shape[0]} output channels for {num_in_ch} input channels)"
            )
        return dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, feature_channels=feat, num_blocks=len(blocks),
                    upscale=scale, norm="no_norm" not in state_dict)

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=config["upscale"], in_channels=config["num_in_ch"], out_channels=config["num_out_ch"],
                    size=SizeRequirements(), tiling=Tiling.SUPPORTED, bf16=False,
                    receptive_radius=3 * config["num_blocks"] + 3)
