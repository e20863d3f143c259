"""SRVGGNetCompact: Real-ESRGAN's compact super-resolution network (our default SR net).

A plain stack of 3x3 convolutions with activations at input resolution, one last convolution
to ``out_ch * upscale**2`` channels, a pixel shuffle, and the nearest-upsampled input added
(the network learns the residual). State-dict layout, as published by Real-ESRGAN::

    body.0.weight/bias        conv in_ch -> num_feat
    body.1.weight             PReLU slopes [num_feat] (relu/leakyrelu: no key, index still used)
    body.{2k}.weight/bias     conv num_feat -> num_feat, k = 1..num_conv, each followed by
    body.{2k+1}.weight        its activation
    body.{2*num_conv+2}       conv num_feat -> out_ch * upscale**2

Known checkpoints: realesr-general-x4v3 (num_feat=64, num_conv=32, upscale=4, prelu) and
realesr-animevideov3 (num_feat=64, num_conv=16, upscale=4, prelu).

Every op keeps the channels_last layout, which the descriptor asks for at every precision (fp32
3x3 convolutions of 16 channels measured 2-4x faster in it on CPU). The pixel shuffle and the
nearest-upsampled input are one broadcast add between strided views (:func:`shuffle_add`): 6.5 ms
for a 256x256 x4 image on one core, against 13.0 for an add of the repeated input and a pixel
shuffle (a 3-channel channels_last interpolate is slower still).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from torch import Tensor, nn

from gantools.nn.descriptor import SizeRequirements, Tiling
from gantools.nn.registry import Architecture, register_arch

ACT_TYPES = ("prelu", "relu", "leakyrelu")
#: below this many channels a network is "narrow" (see :meth:`SRVGGArch.describe`): on a 2-core
#: AVX512-BF16 Xeon, 16 channels x 8 convolutions ran 27.3 MP/s fp32 vs 24.5 bf16 (plugin calls, x4)
#: and 32 x 12 ran 17.9 fp32 vs 11.8 bf16 (network alone); 64 x 12 ran the same in both there and
#: 3.8x faster in bf16 on an AMD EPYC
NARROW = 32

#: Published configs (also handy for tests and training presets).
PRESETS: dict[str, dict[str, Any]] = {
    "realesr-general-x4v3": dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu"),
    "realesr-animevideov3": dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"),
}


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"act_type must be one of {', '.join(ACT_TYPES)}, not {act_type!r}")


class SRVGGNetCompact(nn.Module):
    """Compact VGG-style SR network: (N, in_ch, H, W) in [0, 1] -> (N, out_ch, H*up, W*up).

    The output is not clamped (callers clamp). It is float32 for float32 input even under bf16
    autocast: the residual is added to the full-precision input. Without residual when the
    input and output channel counts differ.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        if act_type not in ACT_TYPES:
            raise ValueError(f"act_type must be one of {', '.join(ACT_TYPES)}, not {act_type!r}")
        self.num_in_ch, self.num_out_ch, self.upscale = num_in_ch, num_out_ch, upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        if self.num_in_ch == self.num_out_ch:
            return shuffle_add(out, x, self.upscale)
        return self.upsampler(out)


def shuffle_add(out: Tensor, x: Tensor, r: int) -> Tensor:
    """``pixel_shuffle(out, r)`` plus ``x`` upsampled r times by nearest, in one elementwise pass.

    ``out`` is (N, C*r*r, H, W), ``x`` (N, C, H, W); returns (N, C, H*r, W*r) in the channels_last
    layout (a view of an (N, H*r, W*r, C) tensor), fp32 when either input is. pixel_shuffle puts
    ``out[c*r*r + i*r + j, h, w]`` at ``(c, h*r+i, w*r+j)``, where the nearest upsampling puts
    ``x[c, h, w]``: both are read as (N, H, i, W, j, C) views and added into a new (H*r, W*r, C)
    image, a view for channels_last inputs (a copy otherwise).
    """
    n, _, h, w = out.shape
    c = x.shape[1]
    sub = out.permute(0, 2, 3, 1).reshape(n, h, w, c, r, r).permute(0, 1, 4, 2, 5, 3)
    base = x.permute(0, 2, 3, 1).reshape(n, h, 1, w, 1, c)
    return (sub + base).reshape(n, h * r, w * r, c).permute(0, 3, 1, 2)


def fold_area_downscale(state_dict: Mapping[str, Tensor], factor: int) -> dict[str, Tensor]:
    """The state dict of the same network at ``upscale / factor``: its output equals this
    network's output area-downscaled by ``factor`` (``cv2.INTER_AREA``: the mean of each
    ``factor x factor`` block), before any clamping, at the cost of a network of the lower scale.

    Exact because everything after the last convolution is linear: an output block of the
    pixel shuffle comes from ``factor**2`` output channels of that convolution, so their mean is
    one channel with the mean weight and bias; the nearest-upsampled input is constant over the
    block. ``ValueError`` unless ``factor`` divides the network's scale (a residual network).
    """
    last = max(int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"body\.(\d+)\.weight", k)))
    weight, bias = state_dict[f"body.{last}.weight"], state_dict[f"body.{last}.bias"]
    c = state_dict["body.0.weight"].shape[1]
    r = round((weight.shape[0] / c) ** 0.5)
    if factor < 1 or r % factor or c * r * r != weight.shape[0]:
        raise ValueError(f"cannot fold a {factor}x area downscale into an x{r} network with {weight.shape[0]} "
                         f"output channels")
    s = r // factor

    def fold(t: Tensor) -> Tensor:
        # channel c*r*r + i*r + j with i = p*factor + a, j = q*factor + b -> mean over (a, b)
        blocks = t.reshape(c, s, factor, s, factor, *t.shape[1:])
        return blocks.mean(dim=(2, 4)).reshape(c * s * s, *t.shape[1:])

    out = dict(state_dict)
    out[f"body.{last}.weight"], out[f"body.{last}.bias"] = fold(weight).contiguous(), fold(bias).contiguous()
    return out


@register_arch
class SRVGGArch(Architecture):
    """Recognises the ``body.*`` layout of Real-ESRGAN compact checkpoints."""

    id = "srvgg"
    module = SRVGGNetCompact

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """Config from the ``body.*`` layout; relu and leakyrelu cannot be told apart (-> relu)."""
        first = state_dict.get("body.0.weight")
        if first is None or first.dim() != 4 or not all(k.startswith("body.") for k in state_dict):
            return None
        indices = [int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"body\.(\d+)\.weight", k))]
        last = max(indices)
        last_w = state_dict[f"body.{last}.weight"]
        if last % 2 or last < 2 or last_w.dim() != 4:
            return None
        num_in_ch, num_feat = int(first.shape[1]), int(first.shape[0])
        prelu = "body.1.weight" in state_dict
        num_out_ch = num_in_ch
        upscale = round((last_w.shape[0] / num_out_ch) ** 0.5)
        if upscale < 1 or num_out_ch * upscale * upscale != last_w.shape[0]:
            num_out_ch, upscale = int(last_w.shape[0]), 1
        return dict(
            num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
            num_conv=(last - 2) // 2, upscale=int(upscale), act_type="prelu" if prelu else "relu",
        )

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Narrow networks (``num_feat`` < :data:`NARROW`) run fp32 and have their own backend-table
        row: with so few channels bf16 and the graph backends were measured slower than torch fp32."""
        narrow = config["num_feat"] < NARROW
        return dict(scale=config["upscale"], in_channels=config["num_in_ch"], out_channels=config["num_out_ch"],
                    size=SizeRequirements(), tiling=Tiling.SUPPORTED, bf16=not narrow,
                    receptive_radius=config["num_conv"] + 2, family="srvgg-narrow" if narrow else "srvgg",
                    channels_last=True)
