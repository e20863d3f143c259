"""StyleGAN2 generator (Karras et al. 2020), from the paper and the published checkpoint layouts.

The computation, in plain torch (no custom kernels):

* **mapping**: ``z`` scaled to unit second moment (pixel norm), optionally concatenated with the
  normalised class embedding ``embed(c)`` (class-conditional models, ``c`` one-hot), then
  ``mapping_layers`` fully connected layers with equalised learning rate (lr multiplier 0.01)
  and leaky ReLU (slope 0.2, gain sqrt(2)). Truncation: ``w' = w_avg + psi * (w - w_avg)``.
* **synthesis**: a learned 4x4 constant, then per resolution a block of modulated 3x3 convs
  (``conv0`` upsamples by 2: a stride-2 transposed conv followed by the [1,3,3,1] blur,
  :func:`upfirdn2d`) and a modulated 1x1 ``torgb`` whose outputs are summed over resolutions
  with the running image upsampled by :func:`upfirdn2d` (the "skip" architecture).
  A modulated conv scales its input by the style ``s = A(w)`` (affine layer, bias 1), convolves,
  and demodulates each output channel by ``rsqrt(sum_{i,k} (W[o,i,k] s[i])^2 + 1e-8)``; then
  noise (the constant ``noise_const`` buffer times a learned strength) and the fused bias +
  leaky ReLU with gain sqrt(2) (clamped to ``conv_clamp * sqrt(2)`` when the model has one).

Our key layout is NVlabs ``stylegan2-ada-pytorch``'s ``G_ema`` state dict (``mapping.fc0.weight``,
``mapping.w_avg``, ``synthesis.b4.const``, ``synthesis.bN.conv0|conv1|torgb.*``, ``mapping.embed``
for class-conditional models); rosinality ``stylegan2-pytorch`` ``g_ema`` state dicts
(``style.N``, ``input.input``, ``conv1``, ``convs.N``, ``to_rgb1``, ``to_rgbs.N``, ``noises.noise_N``)
are renamed into it by :meth:`StyleGAN2Arch.convert` (their ``latent_avg``, kept outside the state
dict, may be passed as the ``latent_avg`` entry). Resolution, channels per resolution, mapping depth,
``z``/``w``/class dimensions are read from tensor shapes. Rosinality scales the conv weight by
``1/sqrt(fan_in)`` before demodulating and NVlabs does not; the two differ only in where the
1e-8 of the demodulation sits (a relative 1e-8 / fan_in), so both run the NVlabs formula.

The generator outputs images in about [-1, 1] (the published convention; see :func:`to_uint8`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import Tiling
from gantools.nn.registry import Architecture, UnsupportedVariant, register_arch

SQRT2 = math.sqrt(2.0)
BLUR = (1.0, 3.0, 3.0, 1.0)


# -- ops -------------------------------------------------------------------------------------
def blur_kernel(taps: tuple[float, ...] = BLUR) -> Tensor:
    """The separable 2-D FIR filter of ``taps`` (outer product), normalised to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[:, None] * k[None, :]
    return k / k.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0) -> Tensor:
    """Upsample by zero insertion (``up``), pad (``x0, x1, y0, y1``; negative crops), filter.

    The filter is ``kernel * gain`` applied as a true convolution (flipped), per channel; the
    output of an (N, C, H, W) input is ``H * up + y0 + y1 - kh + 1`` high (likewise wide).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    f = (kernel * gain).flip([0, 1]).to(x.dtype)
    return F.conv2d(x, f[None, None].expand(c, 1, -1, -1), groups=c)


def bias_act(x: Tensor, bias: Tensor, *, act: bool = True, gain: float = SQRT2, clamp: float | None = None) -> Tensor:
    """Fused bias + leaky ReLU (slope 0.2) times ``gain`` (``act=False``: bias only, gain 1), then a
    symmetric clamp when ``clamp`` is given: ``clamp(gain * lrelu(x + b))``."""
    x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if act:
        x = F.leaky_relu(x, 0.2) * gain
    return x if clamp is None else x.clamp(-clamp, clamp)


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each row scaled to unit root-mean-square (pixel norm)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# -- layers ----------------------------------------------------------------------------------
class FullyConnected(nn.Module):
    """Equalised-lr linear layer: ``x @ (W * lr_mul / sqrt(in)).T + b * lr_mul`` (+ leaky ReLU)."""

    def __init__(self, cin: int, cout: int, *, lr_mul: float = 1.0, bias_init: float = 0.0, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.weight_gain, self.bias_gain, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain)
        return bias_act(x, self.bias * self.bias_gain, act=self.act)


class MappingNetwork(nn.Module):
    """``(z, c) -> w`` (N, w_dim); ``w_avg`` is the centre of truncation (never updated here)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, embed_features: int, num_layers: int,
                 layer_features: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_layers = z_dim, c_dim, w_dim, num_layers
        if c_dim:
            self.embed = FullyConnected(c_dim, embed_features)
        dims = [z_dim + (embed_features if c_dim else 0)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(dims[i], dims[i + 1], lr_mul=0.01, act=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim:
            if c is None:
                raise ValueError(f"this mapping network is class-conditional: give c (N, {self.c_dim})")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(torch.float32)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x if truncation_psi == 1 else self.w_avg.lerp(x, truncation_psi)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv with demodulation (``up``: doubles the resolution), noise, bias + lrelu."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, *, up: bool = False,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("blur", blur_kernel(), persistent=False)
        self.up, self.conv_clamp = up, conv_clamp

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w)  # (N, cin)
        d = (s.square() @ self.weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, cout)
        x = x * s[:, :, None, None]
        if self.up:
            x = F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2)
            x = upfirdn2d(x, self.blur, pad=(1, 1, 1, 1), gain=4.0)
        else:
            x = F.conv2d(x, self.weight, padding=1)
        x = x * d[:, :, None, None] + self.noise_strength * self.noise_const
        clamp = None if self.conv_clamp is None else self.conv_clamp * SQRT2
        return bias_act(x, self.bias, clamp=clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, plus bias (clamped to ``conv_clamp``)."""

    def __init__(self, cin: int, img_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain, self.conv_clamp = 1.0 / math.sqrt(cin), conv_clamp

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w) * self.weight_gain
        x = F.conv2d(x * s[:, :, None, None], self.weight)
        return bias_act(x, self.bias, act=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 up) -> conv1 -> torgb added to the upsampled image."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None) -> None:
        super().__init__()
        if cin == 0:
            self.const = nn.Parameter(torch.randn(cout, 4, 4))
        else:
            self.conv0 = SynthesisLayer(cin, cout, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(cout, cout, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(cout, img_channels, w_dim, conv_clamp)
        self.register_buffer("blur", blur_kernel(), persistent=False)
        self.num_conv = 1 if cin == 0 else 2

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor) -> tuple[Tensor, Tensor]:
        """``ws`` (N, num_conv + 1, w_dim): one per conv, the last for torgb."""
        if x is None:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0])
        else:
            x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])
        y = self.torgb(x, ws[:, self.num_conv])
        if img is not None:
            y = y + upfirdn2d(img, self.blur, up=2, pad=(2, 1, 2, 1), gain=4.0)
        return x, y


class SynthesisNetwork(nn.Module):
    """``ws`` (N, num_ws, w_dim) or ``w`` (N, w_dim) -> image (N, img_channels, R, R) in about [-1, 1]."""

    def __init__(self, w_dim: int, channels: tuple[int, ...], img_channels: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.resolutions = [4 * 2**i for i in range(len(channels))]
        cin = 0
        for res, cout in zip(self.resolutions, channels):
            setattr(self, f"b{res}", SynthesisBlock(cin, cout, w_dim, res, img_channels, conv_clamp))
            cin = cout
        self.num_ws = 2 * len(channels)

    def forward(self, ws: Tensor) -> Tensor:
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        x = img = None
        i = 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, i: i + block.num_conv + 1])
            i += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """``(z, c) -> image`` (N, img_channels, R, R) in about [-1, 1]; ``c`` one-hot (N, c_dim) or None.

    ``channels[i]`` is the width at resolution ``4 * 2**i`` (so ``R = 4 * 2**(len(channels) - 1)``).
    ``conv_clamp`` (NVlabs models trained with mixed precision: 256) clamps every layer's output.
    Noise is always the constant buffers (the published "const" noise mode).
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0, embed_features: int = 0,
                 mapping_layers: int = 8, layer_features: int = 512, channels: tuple[int, ...] = (512,) * 9,
                 img_channels: int = 3, conv_clamp: float | None = None) -> None:
        super().__init__()
        if len(channels) < 1:
            raise ValueError("channels must name at least the 4 px width")
        self.z_dim, self.w_dim, self.c_dim, self.img_channels = z_dim, w_dim, c_dim, img_channels
        self.resolution = 4 * 2 ** (len(channels) - 1)
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, embed_features, mapping_layers, layer_features)
        self.synthesis = SynthesisNetwork(w_dim, tuple(channels), img_channels, conv_clamp)

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi))


def to_uint8(img: Tensor) -> Tensor:
    """(N, C, H, W) in about [-1, 1] -> (N, H, W, C) uint8 as the published tools write PNGs:
    ``floor(clamp(127.5 x + 128, 0, 255))`` (= round(127.5 (x + 1)), halves up)."""
    return (img.float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


# -- checkpoint layouts ----------------------------------------------------------------------
def _numbers(state_dict: Mapping[str, Tensor], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state_dict if (m := re.fullmatch(pattern, k))})


def _is_rosinality(sd: Mapping[str, Tensor]) -> bool:
    return all(k in sd for k in ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight"))


def _is_nvlabs(sd: Mapping[str, Tensor]) -> bool:
    return all(k in sd for k in ("mapping.fc0.weight", "synthesis.b4.const", "synthesis.b4.conv1.affine.weight"))


def _nvlabs_config(sd: Mapping[str, Tensor]) -> dict[str, Any]:
    res = _numbers(sd, r"synthesis\.b(\d+)\.conv1\.weight")
    if res != [4 * 2**i for i in range(len(res))]:
        raise UnsupportedVariant(f"stylegan2: synthesis blocks at {res} px are not 4, 8, 16, ...")
    if any(f"synthesis.b{r}.torgb.weight" not in sd for r in res) or any(".skip." in k for k in sd):
        raise UnsupportedVariant("stylegan2: only the 'skip' synthesis architecture (every block has torgb) is supported")
    if any(f"synthesis.b{r}.conv1.noise_const" not in sd for r in res):
        raise UnsupportedVariant("stylegan2: generators without noise buffers (use_noise=False) are not supported")
    fcs = _numbers(sd, r"mapping\.fc(\d+)\.weight")
    embed = sd.get("mapping.embed.weight")
    fc0 = sd["mapping.fc0.weight"]
    e = 0 if embed is None else int(embed.shape[0])
    return dict(
        z_dim=int(fc0.shape[1]) - e, w_dim=int(sd["synthesis.b4.conv1.affine.weight"].shape[1]),
        c_dim=0 if embed is None else int(embed.shape[1]), embed_features=e, mapping_layers=len(fcs),
        layer_features=int(fc0.shape[0]) if len(fcs) > 1 else int(sd["mapping.w_avg"].shape[0]),
        channels=tuple(int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in res),
        img_channels=int(sd["synthesis.b4.torgb.weight"].shape[0]), conv_clamp=None,
    )


def _rosinality_config(sd: Mapping[str, Tensor]) -> dict[str, Any]:
    styles = _numbers(sd, r"style\.(\d+)\.weight")
    convs = _numbers(sd, r"convs\.(\d+)\.conv\.weight")
    rgbs = _numbers(sd, r"to_rgbs\.(\d+)\.conv\.weight")
    if styles != list(range(1, len(styles) + 1)) or convs != list(range(2 * len(rgbs))) or rgbs != list(range(len(rgbs))):
        raise UnsupportedVariant("stylegan2: rosinality layout with gaps in style.N / convs.N / to_rgbs.N")
    style_dim = int(sd["style.1.weight"].shape[1])
    chans = [int(sd["input.input"].shape[1])] + [int(sd[f"convs.{2 * i}.conv.weight"].shape[1]) for i in range(len(rgbs))]
    return dict(z_dim=style_dim, w_dim=style_dim, c_dim=0, embed_features=0, mapping_layers=len(styles),
                layer_features=style_dim, channels=tuple(chans),
                img_channels=int(sd["to_rgb1.conv.weight"].shape[1]), conv_clamp=None)


def _rosinality_layer(sd: Mapping[str, Tensor], src: str, dst: str, noise: str) -> dict[str, Tensor]:
    return {
        f"{dst}.weight": sd[f"{src}.conv.weight"][0], f"{dst}.bias": sd[f"{src}.activate.bias"],
        f"{dst}.affine.weight": sd[f"{src}.conv.modulation.weight"],
        f"{dst}.affine.bias": sd[f"{src}.conv.modulation.bias"],
        f"{dst}.noise_strength": sd[f"{src}.noise.weight"].reshape(()),
        f"{dst}.noise_const": sd[noise][0, 0],
    }


def _rosinality_rgb(sd: Mapping[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    return {f"{dst}.weight": sd[f"{src}.conv.weight"][0], f"{dst}.bias": sd[f"{src}.bias"].reshape(-1),
            f"{dst}.affine.weight": sd[f"{src}.conv.modulation.weight"],
            f"{dst}.affine.bias": sd[f"{src}.conv.modulation.bias"]}


def rosinality_to_nvlabs(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A rosinality ``g_ema`` state dict (+ optional ``latent_avg``) renamed into our layout.

    Without ``latent_avg`` the ``mapping.w_avg`` entry is zeros (the caller estimates it)."""
    cfg = _rosinality_config(sd)
    out: dict[str, Tensor] = {}
    for i in range(cfg["mapping_layers"]):
        out[f"mapping.fc{i}.weight"], out[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.weight"], sd[f"style.{i + 1}.bias"]
    latent_avg = sd.get("latent_avg")
    out["mapping.w_avg"] = torch.zeros(cfg["w_dim"]) if latent_avg is None else latent_avg.reshape(-1)
    out["synthesis.b4.const"] = sd["input.input"][0]
    out.update(_rosinality_layer(sd, "conv1", "synthesis.b4.conv1", "noises.noise_0"))
    out.update(_rosinality_rgb(sd, "to_rgb1", "synthesis.b4.torgb"))
    for i in range(len(cfg["channels"]) - 1):
        b = f"synthesis.b{8 * 2**i}"
        out.update(_rosinality_layer(sd, f"convs.{2 * i}", f"{b}.conv0", f"noises.noise_{2 * i + 1}"))
        out.update(_rosinality_layer(sd, f"convs.{2 * i + 1}", f"{b}.conv1", f"noises.noise_{2 * i + 2}"))
        out.update(_rosinality_rgb(sd, f"to_rgbs.{i}", f"{b}.torgb"))
    return out


@register_arch
class StyleGAN2Arch(Architecture):
    """StyleGAN2 generators: NVlabs stylegan2-ada-pytorch ``G_ema`` and rosinality ``g_ema`` layouts."""

    id = "stylegan2"
    module = StyleGAN2Generator

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """Config from key names and shapes of either published layout (see the module docstring)."""
        if _is_nvlabs(state_dict):
            return _nvlabs_config(state_dict)
        if _is_rosinality(state_dict):
            return _rosinality_config(state_dict)
        return None

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=0, out_channels=int(config["img_channels"]), tiling=Tiling.DISCOURAGED,
                    bf16=False)

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rosinality keys renamed; the fixed blur kernels (``resample_filter``, ``blur.kernel``) dropped."""
        sd = rosinality_to_nvlabs(state_dict) if _is_rosinality(state_dict) else dict(state_dict)
        return {k: v for k, v in sd.items() if not k.endswith(("resample_filter", "latent_avg"))}


__all__ = [
    "MappingNetwork", "StyleGAN2Arch", "StyleGAN2Generator", "SynthesisNetwork", "bias_act", "blur_kernel",
    "normalize_2nd_moment", "rosinality_to_nvlabs", "to_uint8", "upfirdn2d",
]
