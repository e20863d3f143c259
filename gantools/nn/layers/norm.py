"""Normalisation layers shared by families: instance norm whose statistics can be frozen.

Instance norm normalises with the statistics of the whole image, so a tile normalised with its
own statistics looks different from its neighbours. :class:`TileableInstanceNorm` can instead
use statistics captured from a downscaled copy of the whole image::

    with frozen_norm_stats(model, small):      # or model.frozen_norm_stats(small)
        out = run_tiled(model, image, ...)      # every tile uses the same per-layer stats

Families built from it (``stylenet``, ``cyclegan``) describe themselves with
``Tiling.INTERNAL`` (:mod:`gantools.nn.descriptor`).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import Tensor, nn


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


def compute_norm_stats(model: nn.Module, x_small: Tensor, run: Callable[[Tensor], Tensor] | None = None) -> None:
    """Run ``model`` on ``x_small`` (a downscaled whole image) and keep every norm's stats.

    ``run`` calls the model in the caller's way (e.g. under bf16 autocast); default ``model``.
    """
    norms = _norms(model)
    for m in norms:
        m.mode, m.stats = "capture", None
    try:
        with torch.no_grad():
            (run or model)(x_small)
    finally:
        for m in norms:
            m.mode = "instance"


@contextlib.contextmanager
def frozen_norm_stats(model: nn.Module, x_small: Tensor | None = None,
                      run: Callable[[Tensor], Tensor] | None = None) -> Iterator[nn.Module]:
    """Within the block every norm of ``model`` uses its captured stats (captured from
    ``x_small`` first when given); on exit the norms return to per-input statistics and the
    stats are dropped. Tiles must have the batch size of ``x_small`` (or it must be 1)."""
    if x_small is not None:
        compute_norm_stats(model, x_small, run)
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


__all__ = ["NormStatsMixin", "TileableInstanceNorm", "compute_norm_stats", "frozen_norm_stats"]
