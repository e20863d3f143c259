"""RRDBNet: the ESRGAN / Real-ESRGAN generator (Residual-in-Residual Dense Blocks).

State-dict layout (BasicSR naming, used by RealESRGAN_x4plus, x2plus, RealESRNet, ...)::

    conv_first                     in_ch * k -> num_feat   (k = 1 for x4, 4 for x2, 16 for x1)
    body.{i}.rdb{1,2,3}.conv{1..5} dense block convs, conv1: num_feat -> num_grow_ch
    conv_body, conv_up1, conv_up2, conv_hr    num_feat -> num_feat
    conv_last                      num_feat -> out_ch

The network always upsamples x4; for scale 2 (1) the input is first pixel-unshuffled by 2 (4),
which is why conv_first sees 4x (16x) the input channels and why inputs must be a multiple of
2 (4). RealESRGAN_x4plus: num_feat=64, num_block=23, num_grow_ch=32. Checkpoints from the
original ESRGAN repository (``RRDB_trunk.*``, ``trunk_conv``, ``upconv1``, ``HRconv``) are
renamed on load.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.registry import Architecture, UnsupportedVariant, register_arch

PRESETS: dict[str, dict[str, Any]] = {
    "RealESRGAN_x4plus": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32),
    "RealESRGAN_x2plus": dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=64, num_block=23, num_grow_ch=32),
    "RealESRGAN_x4plus_anime_6B": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=6, num_grow_ch=32),
}
_UNSHUFFLE = {4: 1, 2: 2, 1: 4}
_LEGACY = [
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv(\d)\."), r"conv_up\1."),
    (re.compile(r"^HRconv\."), "conv_hr."),
]


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output = x + 0.2 * conv5(...)."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        for i in range(1, 6):
            cin = num_feat + (i - 1) * num_grow_ch
            setattr(self, f"conv{i}", nn.Conv2d(cin, num_feat if i == 5 else num_grow_ch, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for i in range(1, 5):
            conv = getattr(self, f"conv{i}")
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Three dense blocks with a scaled residual around them."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN generator: (N, in_ch, H, W) in [0, 1] -> (N, out_ch, H*scale, W*scale), unclamped."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, not {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


@register_arch
class RRDBNetArch(Architecture):
    """ESRGAN RRDBNet checkpoints (BasicSR layout, or the original ESRGAN names)."""

    id = "rrdbnet"
    module = RRDBNet

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rename original-ESRGAN keys to the BasicSR layout (other dicts pass unchanged)."""
        if "conv_first.weight" not in state_dict or not any(k.startswith("RRDB_trunk.") for k in state_dict):
            return dict(state_dict)
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in _LEGACY:
                key = pattern.sub(repl, key)
            out[key] = value
        return out

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        sd = self.convert(state_dict)
        needed = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight",
                  "conv_up1.weight", "conv_up2.weight", "conv_hr.weight", "conv_last.weight")
        if not all(k in sd for k in needed):
            return None
        if "conv_up3.weight" in sd:
            raise UnsupportedVariant("RRDBNet with conv_up3 (an x8 ESRGAN variant) is not supported")
        first, last = sd["conv_first.weight"], sd["conv_last.weight"]
        num_out_ch, in_total = int(last.shape[0]), int(first.shape[1])
        for scale, k in _UNSHUFFLE.items():
            if in_total == num_out_ch * k * k:
                break
        else:
            raise UnsupportedVariant(
                f"RRDBNet conv_first has {in_total} input channels for {num_out_ch} output channels: "
                "not a x1/x2/x4 model with matching input and output channels"
            )
        blocks = {int(m.group(1)) for key in sd if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", key))}
        return dict(
            num_in_ch=num_out_ch, num_out_ch=num_out_ch, scale=scale, num_feat=int(first.shape[0]),
            num_block=max(blocks) + 1, num_grow_ch=int(sd["body.0.rdb1.conv1.weight"].shape[0]),
        )

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=config["scale"], in_channels=config["num_in_ch"], out_channels=config["num_out_ch"],
                    size=SizeRequirements(_UNSHUFFLE[config["scale"]]), tiling=Tiling.SUPPORTED, bf16=True)
