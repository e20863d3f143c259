"""StyleNet: our fast style-transfer generator, plus instance norm that can be tiled.

Architecture (Johnson et al. style, with resize-convolution upsampling)::

    stem   9x9 conv 3 -> C, norm, ReLU
    down   2 x (3x3 stride-2 conv, norm, ReLU)            C -> 2C -> 4C
    res    n_res x (conv, norm, ReLU, conv, norm) + skip   at 4C
    up     2 x (nearest x2, 3x3 conv, norm, ReLU)          4C -> 2C -> C
    head   9x9 conv C -> 3, sigmoid                        output in [0, 1]

Upsampling is nearest resize + conv, not transposed conv (2x slower in bf16 on our CPUs, and
checkerboard-prone). All convs use reflect padding. Default (C=32, n_res=5): about 1.7M params.

Instance norm normalises with the statistics of the whole image, so a tile normalised with its
own statistics looks different from its neighbours. :class:`TileableInstanceNorm` can instead
use statistics captured from a downscaled copy of the whole image::

    with frozen_norm_stats(model, small):      # or model.frozen_norm_stats(small)
        out = run_tiled(model, image, ...)      # every tile uses the same per-layer stats
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.registry import register_arch

NORMS = ("instance", "none")


class TileableInstanceNorm(nn.Module):
    """InstanceNorm2d (biased variance, ``eps``) whose statistics can be captured and frozen.

    ``mode``: ``"instance"`` (normal), ``"capture"`` (normal, and keep the stats seen) or
    ``"frozen"`` (use the kept stats instead of the input's). Statistics are computed in float32
    whatever the input dtype. With ``affine=False`` it has no parameters or buffers, so it can
    stand in for ``nn.InstanceNorm2d(affine=False)`` without changing a state dict.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.mode = "instance"
        self.stats: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "frozen":
            if self.stats is None:
                raise RuntimeError("TileableInstanceNorm is frozen but no statistics were captured")
            mean, var = self.stats
        else:
            var, mean = torch.var_mean(x.float(), dim=(-2, -1), keepdim=True, unbiased=False)
            if self.mode == "capture":
                self.stats = (mean.detach(), var.detach())
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight.float().view(1, -1, 1, 1)
        shift = -mean * scale
        if self.bias is not None:
            shift = shift + self.bias.float().view(1, -1, 1, 1)
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.weight is not None}, mode={self.mode}"


def _norms(model: nn.Module) -> list[TileableInstanceNorm]:
    return [m for m in model.modules() if isinstance(m, TileableInstanceNorm)]


def compute_norm_stats(model: nn.Module, x_small: Tensor) -> None:
    """Run ``model`` on ``x_small`` (a downscaled whole image) and keep every norm's stats."""
    norms = _norms(model)
    for m in norms:
        m.mode, m.stats = "capture", None
    try:
        with torch.no_grad():
            model(x_small)
    finally:
        for m in norms:
            m.mode = "instance"


@contextlib.contextmanager
def frozen_norm_stats(model: nn.Module, x_small: Tensor | None = None) -> Iterator[nn.Module]:
    """Within the block every norm of ``model`` uses its captured stats (captured from
    ``x_small`` first when given); on exit the norms return to per-input statistics and the
    stats are dropped. Tiles must have the batch size of ``x_small`` (or it must be 1)."""
    if x_small is not None:
        compute_norm_stats(model, x_small)
    norms = _norms(model)
    missing = [m for m in norms if m.stats is None]
    if missing:
        raise RuntimeError(f"{len(missing)} norm layer(s) have no statistics: call compute_norm_stats first")
    for m in norms:
        m.mode = "frozen"
    try:
        yield model
    finally:
        for m in norms:
            m.mode, m.stats = "instance", None


class NormStatsMixin:
    """Adds ``compute_norm_stats`` / ``frozen_norm_stats`` methods to a module."""

    def compute_norm_stats(self, x_small: Tensor) -> None:
        compute_norm_stats(self, x_small)  # type: ignore[arg-type]

    def frozen_norm_stats(self, x_small: Tensor | None = None) -> contextlib.AbstractContextManager:
        return frozen_norm_stats(self, x_small)  # type: ignore[arg-type]


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


@register_arch("stylenet")
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

    # -- registry hooks ------------------------------------------------------------------
    @staticmethod
    def detect(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        stem = state_dict.get("stem.0.weight")
        head = state_dict.get("head.weight")
        if stem is None or head is None or stem.dim() != 4 or stem.shape[-1] != 9:
            return None
        n_res = len({k.split(".")[1] for k in state_dict if k.startswith("res.") and k.endswith("conv1.weight")})
        return dict(base_channels=int(stem.shape[0]), n_res=n_res,
                    norm="instance" if "stem.1.weight" in state_dict else "none",
                    in_channels=int(stem.shape[1]), out_channels=int(head.shape[0]))

    @staticmethod
    def describe(config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(scale=1, in_channels=config["in_channels"], out_channels=config["out_channels"],
                    size_multiple=4, tiling=True, bf16=True, min_size=16)
