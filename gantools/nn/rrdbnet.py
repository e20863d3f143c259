"""RRDBNet: the ESRGAN / Real-ESRGAN generator (Residual-in-Residual Dense Blocks).

State-dict layout (BasicSR naming, used by RealESRGAN_x4plus, x2plus, RealESRNet, ...)::

    conv_first                     in_ch * k -> num_feat   (k = 1 for x4, 4 for x2, 16 for x1)
    body.{i}.rdb{1,2,3}.conv{1..5} dense block convs, conv1: num_feat -> num_grow_ch
    conv_body, conv_up1, conv_up2, conv_hr    num_feat -> num_feat
    conv_last                      num_feat -> out_ch

Each ``conv_up{i}`` follows a nearest x2 upsampling. With ``pixel_unshuffle`` (Real-ESRGAN) the
network upsamples x4 and, for scale 2 (1), the input is first pixel-unshuffled by 2 (4), which is
why conv_first sees 4x (16x) the input channels and why inputs must be a multiple of 2 (4).
Without it (original ESRGAN x1/x2 models) there are log2(scale) upsampling stages. Scale 8 has
three (``conv_up3``). RealESRGAN_x4plus: num_feat=64, num_block=23, num_grow_ch=32.

Checkpoints of the original ESRGAN repository are renamed on load: the new-arch names
(``RRDB_trunk.*``, ``trunk_conv``, ``upconv1``, ``HRconv``) and the old-arch ``nn.Sequential``
layout of community models::

    model.0                              conv_first
    model.1.sub.{i}.RDB{r}.conv{c}.0     body.{i}.rdb{r}.conv{c}
    model.1.sub.{num_block}              conv_body
    model.{3k}, k = 1..n                 conv_up{k}  (each stage: nearest x2, conv, LeakyReLU)
    model.{3n+2}, model.{3n+4}           conv_hr, conv_last   (x4: 3, 6, 8, 10; x2: 3, 5, 7;
                                                               x1: 2, 4; x8: 3, 6, 9, 11, 13)
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
    "RealESRGAN_x4plus": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32,
                              pixel_unshuffle=True),
    "RealESRGAN_x2plus": dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=64, num_block=23, num_grow_ch=32,
                              pixel_unshuffle=True),
    "RealESRGAN_x4plus_anime_6B": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=6,
                                       num_grow_ch=32, pixel_unshuffle=True),
}
SCALES = (1, 2, 4, 8)
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
    """ESRGAN generator: (N, in_ch, H, W) in [0, 1] -> (N, out_ch, H*scale, W*scale), unclamped.

    ``scale`` is 1, 2, 4 or 8; ``pixel_unshuffle`` picks how x1/x2 are made (module docstring).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        pixel_unshuffle: bool = True,
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"RRDBNet scale must be one of {', '.join(map(str, SCALES))}, not {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE.get(scale, 1) if pixel_unshuffle else 1
        self.num_up = (scale * self.unshuffle).bit_length() - 1
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        for i in range(1, self.num_up + 1):
            setattr(self, f"conv_up{i}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.num_up + 1):
            conv = getattr(self, f"conv_up{i}")
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


def _old_arch_names(state_dict: Mapping[str, Tensor]) -> dict[str, str]:
    """Old-arch ``model.*`` key -> BasicSR key; raises :class:`UnsupportedVariant` off the layout."""
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
    num_block = len(blocks)
    if blocks != set(range(num_block)) or f"model.1.sub.{num_block}.weight" not in state_dict:
        raise UnsupportedVariant(
            f"ESRGAN old-arch: unknown block layout (RRDB blocks {sorted(blocks)[:3]}..., expected "
            f"model.1.sub.0..{num_block - 1} then the trunk conv model.1.sub.{num_block})"
        )
    tops = sorted({int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"model\.(\d+)\.weight", k))})
    n_up = (len(tops) - 3) if tops[:1] == [0] else -1
    expected = [0] + [3 * k for k in range(1, n_up + 1)] + [3 * n_up + 2, 3 * n_up + 4] if n_up >= 0 else []
    if tops != expected or 2**n_up not in SCALES:
        raise UnsupportedVariant(
            f"ESRGAN old-arch: unknown scale (top-level convs model.{{{','.join(map(str, tops))}}}; "
            "x1/x2/x4/x8 have model.{0,2,4} / {0,3,5,7} / {0,3,6,8,10} / {0,3,6,9,11,13})"
        )
    names = ["conv_first"] + [f"conv_up{k}" for k in range(1, n_up + 1)] + ["conv_hr", "conv_last"]
    out = {f"model.{i}.{p}": f"{n}.{p}" for i, n in zip(tops, names) for p in ("weight", "bias")}
    out |= {f"model.1.sub.{num_block}.{p}": f"conv_body.{p}" for p in ("weight", "bias")}
    for key in state_dict:
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
            out[key] = f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    return out


@register_arch
class RRDBNetArch(Architecture):
    """ESRGAN RRDBNet checkpoints (BasicSR layout, or the original ESRGAN new-arch/old-arch names)."""

    id = "rrdbnet"
    module = RRDBNet

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rename original-ESRGAN keys to the BasicSR layout (other dicts pass unchanged)."""
        if "model.0.weight" in state_dict and "model.1.sub.0.RDB1.conv1.0.weight" in state_dict:
            names = _old_arch_names(state_dict)
            return {names.get(k, k): v for k, v in state_dict.items()}
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
        needed = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_hr.weight",
                  "conv_last.weight")
        if not all(k in sd for k in needed):
            return None
        first, last = sd["conv_first.weight"], sd["conv_last.weight"]
        num_feat, num_out_ch, in_total = int(first.shape[0]), int(last.shape[0]), int(first.shape[1])
        num_up = sum(1 for i in range(1, 5) if f"conv_up{i}.weight" in sd)
        if any(f"conv_up{i}.weight" not in sd for i in range(1, num_up + 1)) or num_up > 3:
            raise UnsupportedVariant(f"RRDBNet with {num_up} upsampling convs: unknown scale (x1/x2/x4/x8 have 0-3)")
        if any(sd[f"conv_up{i}.weight"].shape[0] != num_feat for i in range(1, num_up + 1)):
            raise UnsupportedVariant("RRDBNet with a pixel-shuffle upsampler is not supported")
        scale, unshuffle = 2**num_up, 1
        if num_up == 2:
            for scale, unshuffle in _UNSHUFFLE.items():
                if in_total == num_out_ch * unshuffle * unshuffle:
                    break
            else:
                raise UnsupportedVariant(
                    f"RRDBNet conv_first has {in_total} input channels for {num_out_ch} output channels: "
                    "not a x1/x2/x4 model with matching input and output channels"
                )
        blocks = {int(m.group(1)) for key in sd if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", key))}
        return dict(
            num_in_ch=in_total // unshuffle**2, num_out_ch=num_out_ch, scale=scale, num_feat=num_feat,
            num_block=max(blocks) + 1, num_grow_ch=int(sd["body.0.rdb1.conv1.weight"].shape[0]),
            pixel_unshuffle=num_up >= 2,
        )

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        unshuffle = _UNSHUFFLE.get(config["scale"], 1) if config["pixel_unshuffle"] else 1
        return dict(scale=config["scale"], in_channels=config["num_in_ch"], out_channels=config["num_out_ch"],
                    size=SizeRequirements(unshuffle), tiling=Tiling.SUPPORTED, bf16=True)
