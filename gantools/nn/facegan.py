"""FaceGAN: a small conditional style-based generator and a projection discriminator, for CPUs.

The generator follows the StyleGAN2 recipe (Karras et al. 2020) in a form that is fast on CPUs
with AMX under bf16 autocast and ``channels_last`` (see ``bench/train_speed_faces.py``):

* **mapping**: ``z`` (normalised) concatenated with a label embedding (age group + gender, each
  an embedding table, summed and normalised) -> MLP with equalised learning rate and a 0.01 lr
  multiplier -> ``w``. ``mapping.w_avg`` tracks the mean ``w`` during training (truncation).
* **synthesis**: a learned 4x4 constant and one modulated conv at 4 px, then per resolution
  r = 8..R two modulated 3x3 convs and a toRGB. Modulation is done without grouped convolutions:
  the input is scaled per sample and channel by the style ``s = A(w)``, convolved with the
  shared weight, and demodulated by ``d = rsqrt(sum_{i,k} (W[o,i,k] s[i])^2)`` per sample and
  output channel - StyleGAN2's weight demodulation, exactly. ``d`` is folded into the next
  layer's input scaling (leaky ReLU is positively homogeneous), so a layer costs one
  elementwise pass besides its conv, and bias + noise + activation (one batched matmul and an
  in-place activation).
  Upsampling is a bilinear (or nearest) resize next to a conv, never a transposed conv (slow in
  bf16 on CPU). ``up_order="post"`` (default) convolves cin->cout at r/2 and upsamples before
  the second conv (the scaling is done before the resize, at r/2); ``"pre"`` is StyleGAN2's
  order (resize, then both convs at r) at about twice the FLOPs. Each resolution's toRGB (a
  modulated 1x1 conv, i.e. one batched matmul) is added to the upsampled image (skip design).
* **noise**: optional per-layer noise (one learned strength per layer); random in training,
  the fixed ``noise_const`` buffers in eval mode, so inference is a function of ``z`` and labels.

Images come out in [0, 1] (unclamped), the gantools convention. Labels are ``LongTensor``s:
age group in ``[0, num_ages)``, gender in ``[0, num_genders)``. The discriminator also accepts
``-1`` (:data:`UNKNOWN`) for a label missing from the training file name: that label type then
contributes nothing to the logit of that sample.

:class:`FaceDiscriminator` is a residual discriminator (default stem: a 4x4 stride-2 conv from
RGB, so no layer runs at full resolution; blocks of conv3x3 + strided conv3x3 with a learned 2x2
stride-2 skip), optional minibatch standard deviation, and a projection head (Miyato & Koyama
2018): ``logit = linear(phi(x)) + <E_age[age], phi(x)> + <E_gender[gender], phi(x)>``. Spectral
norm is optional (R1 is the default regulariser).

Default widths (``channel_base=1024, channel_max=128``: 128, 128, 64, 32, 16 channels at 4..64
px) were chosen for training speed on 2 CPU cores; at 64 px G has 1.1 M parameters (0.26 M in the
mapping network), D 1.0 M.
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

#: Label value meaning "not known" (discriminator only).
UNKNOWN = -1
RESOLUTIONS = (32, 64, 128)
SQRT2 = math.sqrt(2.0)


def channels_for(res: int, base: int, cmax: int) -> int:
    """Channels at resolution ``res``: ``min(base // res, cmax)`` (at least 8)."""
    return max(8, min(base // res, cmax))


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale each row to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weight ~ N(0, 1/lr_mul^2), scaled at run time.

    ``act`` applies a leaky ReLU (slope 0.2) with gain sqrt(2).
    """

    def __init__(self, cin: int, cout: int, *, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.w_gain = lr_mul / math.sqrt(cin)
        self.b_gain = lr_mul
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.w_gain, self.bias * self.b_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class MappingNetwork(nn.Module):
    """``(z, age, gender) -> w``; see the module docstring. Tracks ``w_avg`` while training."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, num_ages: int, num_genders: int,
                 embed_dim: int, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.embed_dim = z_dim, w_dim, embed_dim
        self.w_avg_beta = w_avg_beta
        self.age_embed = nn.Parameter(torch.randn(num_ages, embed_dim))
        self.gender_embed = nn.Parameter(torch.randn(num_genders, embed_dim))
        dims = [z_dim + embed_dim] + [w_dim] * num_layers
        self.fcs = nn.ModuleList(EqualLinear(dims[i], dims[i + 1], lr_mul=0.01, act=True) for i in range(num_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def embed(self, age: Tensor, gender: Tensor) -> Tensor:
        """Label embedding ``(N, embed_dim)`` (before normalisation) for known labels."""
        return self.age_embed[age] + self.gender_embed[gender]

    def forward(self, z: Tensor, age: Tensor | None = None, gender: Tensor | None = None, *,
                embed: Tensor | None = None, update_w_avg: bool | None = None) -> Tensor:
        """``w`` (N, w_dim). Give ``age`` and ``gender``, or a precomputed ``embed``.

        ``update_w_avg`` (default: ``self.training``) moves ``w_avg`` towards this batch's mean.
        """
        if embed is None:
            embed = self.embed(age, gender)
        x = torch.cat([normalize_2nd_moment(z.float()), normalize_2nd_moment(embed.float())], dim=1)
        for fc in self.fcs:
            x = fc(x)
        if self.training if update_w_avg is None else update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        return x


def bias_noise_act(y: Tensor, bias: Tensor, noise: Tensor | None, strength: Tensor | None,
                   slope: float = 0.2) -> Tensor:
    """``lrelu(y + bias + strength * noise)`` with per-sample, per-channel ``bias`` and ``strength``.

    ``y`` is (N, C, H, W); ``bias`` and ``strength`` are (N, C); ``noise`` is (N or 1, 1, H, W) or
    None. On channels_last tensors a broadcast over the (innermost) channel axis is slow on CPU
    (3-4x a plain add for 16 channels in bf16), so the sum is one batched rank-2 update instead:
    ``baddbmm(y as (N, HW, C), [noise, 1] as (N, HW, 2), [strength; bias] as (N, 2, C))``. The
    activation runs in place on that fresh (N, HW, C) result before it is viewed back as
    (N, C, H, W) (in place on the view would make autograd's backward ~10x slower).
    """
    n, c, h, w = y.shape
    dt = y.dtype
    if c > 1 and y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous():
        y2 = y.permute(0, 2, 3, 1).reshape(n, h * w, c)
        ones = torch.ones(1, h * w, 1, dtype=dt, device=y.device).expand(n, h * w, 1)
        if noise is None:
            col, row = ones, bias[:, None, :].to(dt)
        else:
            col = torch.cat([noise.to(dt).expand(n, 1, h, w).reshape(n, h * w, 1), ones], dim=2)
            row = torch.stack([strength, bias], dim=1).to(dt)
        out = F.leaky_relu(torch.baddbmm(y2, col, row), slope, inplace=True)
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2)
    out = y + bias.to(dt)[:, :, None, None]
    if noise is not None:
        out = out + noise.to(dt) * strength.to(dt)[:, :, None, None]
    return F.leaky_relu(out, slope, inplace=True)


class ModulatedConv(nn.Module):
    """Modulated conv with weight demodulation, computed without grouped convolutions.

    ``forward(x, d_in, w) -> (y, d)``. The layer's true input is ``d_in * x`` (``d_in``: the
    previous layer's demodulation, ``None`` = 1) and its true output is ``d * y``: the
    per-sample, per-channel demodulation scale ``d = rsqrt((s^2) @ sum_k(W^2)^T + eps)`` is not
    applied here but folded into the next layer's input scaling (``x * (d_in * s)``, one pass).
    This is exact because ``d > 0`` and the leaky ReLU is positively homogeneous:
    ``lrelu(d * z) = d * lrelu(z)``; so ``y = lrelu(conv(x * d_in * s) + (b + strength * noise) / d)``
    and ``d * y = lrelu(d * conv(...) + b + strength * noise)``, StyleGAN2's layer exactly (bias
    and noise after the demodulation).
    ``up=True`` doubles the resolution by ``up_mode`` interpolation between the input scaling
    (done at the lower resolution, 4x fewer pixels) and the convolution.
    """

    def __init__(self, cin: int, cout: int, w_dim: int, *, up: bool = False, noise_res: int | None = None,
                 up_mode: str = "bilinear") -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.w_gain = 1.0 / math.sqrt(cin * 9)
        self.up, self.up_mode = up, up_mode
        if noise_res is not None:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(1, 1, noise_res, noise_res))
        else:
            self.noise_strength = None

    def forward(self, x: Tensor, d_in: Tensor | None, w: Tensor, noise_mode: str = "random") -> tuple[Tensor, Tensor]:
        weight = self.weight * self.w_gain
        s = self.affine(w)
        scale = s if d_in is None else s * d_in.to(s.dtype)
        x = x * scale.to(x.dtype)[:, :, None, None]
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode=self.up_mode,
                              **({"align_corners": False} if self.up_mode == "bilinear" else {}))
        y = F.conv2d(x, weight, None, padding=1)
        d = (s.float().square() @ weight.float().square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, cout)
        inv = 1.0 / d  # bias and noise act after the demodulation: scaled by 1/d here
        noise = strength = None
        if self.noise_strength is not None and noise_mode != "none":
            if noise_mode == "const":
                noise = self.noise_const
            else:
                n, _, h, wd = y.shape
                noise = torch.randn(n, 1, h, wd, dtype=y.dtype, device=y.device)
            strength = inv * self.noise_strength
        y = bias_noise_act(y, inv * self.bias, noise, strength)
        return y, d


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation): ``rgb = W (d_in * s * x) + b``.

    A per-sample 1x1 conv is a batched matrix product, so the style is folded into the weights
    (``(N, 3, C)``) and applied with one ``bmm`` on the channels_last view: no elementwise pass
    over the features at all.
    """

    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.w_gain = 1.0 / math.sqrt(cin)

    def forward(self, x: Tensor, d_in: Tensor | None, w: Tensor) -> Tensor:
        n, c, h, wd = x.shape
        s = self.affine(w)
        scale = s if d_in is None else s * d_in.to(s.dtype)
        wm = (self.weight[:, :, 0, 0] * self.w_gain)[None] * scale[:, None, :]  # (N, 3, C)
        wm = wm.to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):
            y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * wd, c), wm.transpose(1, 2))  # (N, HW, 3)
            y = y.reshape(n, h, wd, 3).permute(0, 3, 1, 2)
        else:
            y = torch.bmm(wm, x.reshape(n, c, h * wd)).reshape(n, 3, h, wd)
        return y.float() + self.bias.float()[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """``ws`` (N, num_ws, w_dim) or ``w`` (N, w_dim) -> image (N, 3, R, R) in about [0, 1], fp32.

    Per resolution r = 8..R two modulated convs and a toRGB. ``up_order="pre"`` (StyleGAN2):
    upsample, then conv cin->cout at r, then conv cout->cout at r. ``"post"`` (default, about
    half the FLOPs): conv cin->cout at r/2, then upsample and conv cout->cout at r.
    """

    def __init__(self, resolution: int, w_dim: int, channel_base: int, channel_max: int, noise: bool,
                 up_mode: str, up_order: str = "post") -> None:
        super().__init__()
        self.resolution = resolution
        c4 = channels_for(4, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        self.convs = nn.ModuleList()
        self.torgbs = nn.ModuleList()
        res, cin = 4, c4
        self.convs.append(ModulatedConv(c4, c4, w_dim, noise_res=4 if noise else None))
        self.torgbs.append(ToRGB(c4, w_dim))
        while res < resolution:
            res *= 2
            cout = channels_for(res, channel_base, channel_max)
            pre = up_order == "pre"
            n0 = (res if pre else res // 2) if noise else None
            self.convs.append(ModulatedConv(cin, cout, w_dim, up=pre, noise_res=n0, up_mode=up_mode))
            self.convs.append(ModulatedConv(cout, cout, w_dim, up=not pre, noise_res=res if noise else None,
                                            up_mode=up_mode))
            self.torgbs.append(ToRGB(cout, w_dim))
            cin = cout
        self.num_ws = len(self.convs) + 1

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        if ws.dim() == 2:
            ws = ws[:, None, :].expand(-1, self.num_ws, -1)
        n = ws.shape[0]
        x = self.const[None].expand(n, -1, -1, -1)
        x, d = self.convs[0](x, None, ws[:, 0], noise_mode)
        img = self.torgbs[0](x, d, ws[:, 1])
        for i, rgb in enumerate(self.torgbs[1:]):
            x, d = self.convs[1 + 2 * i](x, d, ws[:, 1 + 2 * i], noise_mode)
            x, d = self.convs[2 + 2 * i](x, d, ws[:, 2 + 2 * i], noise_mode)
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False)
            img = img + rgb(x, d, ws[:, 3 + 2 * i])
        return img * 0.5 + 0.5


class FaceGenerator(nn.Module):
    """Conditional style-based generator ``(z, age, gender) -> (N, 3, R, R)`` in about [0, 1].

    ``forward(z, age, gender, truncation=1.0, center=None, noise_mode=None)``: ``noise_mode``
    defaults to ``"random"`` in training and ``"const"`` in eval mode; ``truncation`` pulls ``w``
    towards ``center`` (default ``mapping.w_avg``).
    """

    def __init__(self, resolution: int = 64, z_dim: int = 128, w_dim: int = 256, mapping_layers: int = 4,
                 channel_base: int = 1024, channel_max: int = 128, num_ages: int = 9, num_genders: int = 2,
                 embed_dim: int = 128, noise: bool = True, up_mode: str = "bilinear", up_order: str = "post") -> None:
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {resolution}")
        if up_mode not in ("bilinear", "nearest"):
            raise ValueError(f"up_mode must be bilinear or nearest, not {up_mode!r}")
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.num_ages, self.num_genders = num_ages, num_genders
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, num_ages, num_genders, embed_dim)
        if up_order not in ("pre", "post"):
            raise ValueError(f"up_order must be pre or post, not {up_order!r}")
        self.synthesis = SynthesisNetwork(resolution, w_dim, channel_base, channel_max, noise, up_mode, up_order)

    def _noise_mode(self, noise_mode: str | None) -> str:
        return noise_mode or ("random" if self.training else "const")

    def widened_state(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A narrower generator's ``state`` as this one's, same images (:func:`widen_generator_state`)."""
        return widen_generator_state(state, self)

    def forward(self, z: Tensor, age: Tensor, gender: Tensor, truncation: float = 1.0,
                center: Tensor | None = None, noise_mode: str | None = None) -> Tensor:
        w = self.mapping(z, age, gender)
        if truncation != 1.0:
            c = self.mapping.w_avg if center is None else center
            w = c.to(w.dtype).lerp(w, truncation)
        return self.synthesis(w, self._noise_mode(noise_mode))


_CONV_WEIGHT = re.compile(r"synthesis\.convs\.\d+\.weight")
_RGB_WEIGHT = re.compile(r"synthesis\.torgbs\.\d+\.weight")


def widen_generator_state(state: Mapping[str, Tensor], G: FaceGenerator) -> dict[str, Tensor]:
    """``state`` of a narrower :class:`FaceGenerator` as a state dict of ``G`` with the same images.

    ``G`` may differ from ``state``'s generator only in its widths (``channel_base`` /
    ``channel_max``), each at least the old one. Old tensors fill the leading slices; the new
    channels keep ``G``'s own initialisation (random convs and styles) except their weights into
    old channels, which are zero: a modulated conv's old outputs then see only old inputs (its
    demodulation cancels the changed equalised-lr gain), and each toRGB's old columns are scaled
    by ``sqrt(new / old)`` to cancel its gain (no demodulation there). So the widened generator
    computes the same images, and the new channels learn from there (Net2Net-style growth).
    ``ValueError`` (one line) for any other difference.
    """
    own = G.state_dict()
    extra = sorted(set(state) - set(own))
    if extra:
        raise ValueError(f"facegan: the narrower generator has {extra[0]}, this one does not (another resolution?)")
    out = {}
    for key, init in own.items():
        if key not in state:
            raise ValueError(f"facegan: the narrower generator has no {key}")
        old = state[key].to(init.dtype)
        if old.shape == init.shape:
            out[key] = old.clone()
            continue
        if old.dim() != init.dim() or any(o > n for o, n in zip(old.shape, init.shape)) or key.startswith("mapping."):
            raise ValueError(f"facegan: {key} {list(old.shape)} cannot widen to {list(init.shape)}")
        new = init.clone()
        if _RGB_WEIGHT.fullmatch(key):
            old = old * math.sqrt(init.shape[1] / old.shape[1])
            new[:, old.shape[1]:] = 0
        elif _CONV_WEIGHT.fullmatch(key):
            new[: old.shape[0], old.shape[1]:] = 0
        new[tuple(slice(0, n) for n in old.shape)] = old
        out[key] = new
    return out


@register_arch
class FaceGANArch(Architecture):
    """Our conditional face generator (exports of ``gantools train faces``)."""

    id = "facegan"
    module = FaceGenerator

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """Config from key names and shapes (``mapping.*`` / ``synthesis.*`` layout)."""
        need = ("mapping.age_embed", "mapping.gender_embed", "mapping.fcs.0.weight", "synthesis.const")
        if not all(k in state_dict for k in need):
            return None
        fcs = [int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"mapping\.fcs\.(\d+)\.weight", k))]
        rgbs = [int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"synthesis\.torgbs\.(\d+)\.weight", k))]
        age, gender = state_dict["mapping.age_embed"], state_dict["mapping.gender_embed"]
        fc0 = state_dict["mapping.fcs.0.weight"]
        n_blocks = max(rgbs) + 1
        resolution = 4 * 2 ** (n_blocks - 1)
        if resolution not in RESOLUTIONS:
            raise UnsupportedVariant(f"facegan: resolution {resolution} is not supported ({RESOLUTIONS})")
        chans = [int(state_dict[f"synthesis.torgbs.{i}.weight"].shape[1]) for i in range(n_blocks)]
        cmax, base = chans[0], chans[-1] * resolution
        if [channels_for(4 * 2**i, base, cmax) for i in range(n_blocks)] != chans:
            raise UnsupportedVariant(f"facegan: channel layout {chans} is not min(base // res, max)")
        # up_order shows in the noise buffer of the first conv at 8 px ("post": it runs at 4 px);
        # without noise it cannot be seen (the default is assumed). up_mode never can.
        noise = "synthesis.convs.0.noise_strength" in state_dict
        up_order = "post"
        if noise and "synthesis.convs.1.noise_const" in state_dict:
            up_order = "post" if state_dict["synthesis.convs.1.noise_const"].shape[-1] == 4 else "pre"
        return dict(
            resolution=resolution, z_dim=int(fc0.shape[1] - age.shape[1]), w_dim=int(fc0.shape[0]),
            mapping_layers=max(fcs) + 1, channel_base=base, channel_max=cmax, num_ages=int(age.shape[0]),
            num_genders=int(gender.shape[0]), embed_dim=int(age.shape[1]),
            noise=noise, up_mode="bilinear", up_order=up_order,
        )

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=3, out_channels=3, tiling=Tiling.DISCOURAGED, bf16=True)


# -- discriminator ---------------------------------------------------------------------------
class EqualConv2d(nn.Module):
    """Conv with equalised learning rate times ``gain`` (or spectral norm times ``gain``, when ``sn``)."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, padding: int | None = None,
                 bias: bool = True, sn: bool = False, gain: float = 1.0) -> None:
        super().__init__()
        pad = kernel // 2 if padding is None else padding
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, bias=bias)
        if sn:
            nn.utils.parametrizations.spectral_norm(self.conv)
            self.w_gain = gain
        else:
            with torch.no_grad():
                self.conv.weight.normal_()
            self.w_gain = gain / math.sqrt(cin * kernel * kernel)
        if bias:
            with torch.no_grad():
                self.conv.bias.zero_()
        self.b_gain = gain

    def forward(self, x: Tensor) -> Tensor:
        c = self.conv
        b = c.bias * self.b_gain if c.bias is not None and self.b_gain != 1.0 else c.bias
        return F.conv2d(x, c.weight * self.w_gain, b, c.stride, c.padding)


class DBlock(nn.Module):
    """Residual down block: ``(lrelu(conv3x3/2(lrelu(conv3x3(x)))) + conv2x2/2(x)) / sqrt2``.

    The ``1/sqrt2`` is folded into the weights of both branches (exact: leaky ReLU is
    positively homogeneous); the skip is a learned 2x2 stride-2 conv (an average pool followed
    by a 1x1 conv is one special case of it) so the block has one elementwise add.
    """

    def __init__(self, cin: int, cout: int, sn: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, sn=sn)
        self.conv1 = EqualConv2d(cin, cout, 3, stride=2, sn=sn, gain=1 / SQRT2)
        self.skip = EqualConv2d(cin, cout, 2, stride=2, padding=0, bias=False, sn=sn, gain=1 / SQRT2)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.conv0(x), 0.2, inplace=True)
        y = F.leaky_relu(self.conv1(y), 0.2, inplace=True)
        return y + self.skip(x)


def minibatch_stddev(x: Tensor, group: int) -> Tensor:
    """Append one channel: the mean std over groups of ``group`` samples (Karras et al. 2018).

    Groups are runs of consecutive samples (``group`` is lowered until it divides the batch), so
    a batch made of reals followed by fakes, each a multiple of ``group``, never mixes them.
    """
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().contiguous().reshape(n // g, g, c, h, w)
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n//g,)
    y = y.repeat_interleave(g).reshape(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class FaceDiscriminator(nn.Module):
    """Projection discriminator ``(x, age, gender) -> logits (N,)`` for (N, 3, R, R) in [0, 1].

    ``age``/``gender`` may be ``None`` (unconditional logit) or hold :data:`UNKNOWN` (-1) for
    samples whose label is not known: that sample gets no projection term for that label type.
    ``mbstd_group`` 0 turns minibatch-stddev off; with it on, a sample's logit depends on the
    other samples of its group (groups are consecutive samples).
    """

    def __init__(self, resolution: int = 64, channel_base: int = 1024, channel_max: int = 128, num_ages: int = 9,
                 num_genders: int = 2, mbstd_group: int = 4, spectral_norm: bool = False, stem: str = "s2") -> None:
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {resolution}")
        ch = lambda r: channels_for(r, channel_base, channel_max)  # noqa: E731
        if stem not in ("rgb", "s2"):
            raise ValueError(f"stem must be rgb (1x1 conv at full resolution) or s2 (4x4 stride-2 conv), not {stem!r}")
        if stem == "rgb":
            self.from_rgb = EqualConv2d(3, ch(resolution), 1, sn=spectral_norm)
            res = resolution
        else:
            self.from_rgb = EqualConv2d(3, ch(resolution // 2), 4, stride=2, padding=1, sn=spectral_norm)
            res = resolution // 2
        blocks = []
        while res > 4:
            blocks.append(DBlock(ch(res), ch(res // 2), spectral_norm))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = ch(4)
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(c4 + (1 if mbstd_group else 0), c4, 3, sn=spectral_norm)
        self.fc = nn.Linear(c4 * 16, c4)
        self.out = nn.Linear(c4, 1)
        if spectral_norm:
            for m in (self.fc, self.out):
                nn.utils.parametrizations.spectral_norm(m)
        self.age_embed = nn.Embedding(num_ages, c4)
        self.gender_embed = nn.Embedding(num_genders, c4)
        for emb in (self.age_embed, self.gender_embed):
            nn.init.normal_(emb.weight, std=1.0 / math.sqrt(c4))

    def features(self, x: Tensor) -> Tensor:
        """``phi(x)``: (N, C) features before the output layer."""
        x = F.leaky_relu(self.from_rgb(x * 2.0 - 1.0), 0.2, inplace=True)
        x = self.blocks(x)
        if self.mbstd_group:
            x = minibatch_stddev(x, self.mbstd_group)
        x = F.leaky_relu(self.conv(x), 0.2, inplace=True)
        # flattened in (H, W, C) order: a view for channels_last maps, and the gradient comes back
        # in the same layout (a (C, H, W) flatten sent an NCHW gradient into channels_last ops)
        return F.leaky_relu(self.fc(x.permute(0, 2, 3, 1).flatten(1)), 0.2, inplace=True)

    def forward(self, x: Tensor, age: Tensor | None = None, gender: Tensor | None = None) -> Tensor:
        phi = self.features(x)
        logit = self.out(phi).squeeze(1)
        for labels, table in ((age, self.age_embed), (gender, self.gender_embed)):
            if labels is None:
                continue
            known = labels >= 0
            proj = (table(labels.clamp(min=0)).to(phi.dtype) * phi).sum(1)
            logit = logit + proj * known.to(proj.dtype)
        return logit



@register_arch
class FaceDiscriminatorArch(Architecture):
    """The projection discriminator that trains :class:`FaceGenerator` (training only)."""

    id = "face_discriminator"
    module = FaceDiscriminator

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=3, out_channels=1, tiling=Tiling.DISCOURAGED)


__all__ = [
    "UNKNOWN", "FaceDiscriminator", "FaceGenerator", "MappingNetwork", "ModulatedConv", "SynthesisNetwork",
    "channels_for", "minibatch_stddev", "widen_generator_state",
]
