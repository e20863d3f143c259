"""Content and style losses that need no pretrained network.

* :func:`content_loss`: L1 between Gaussian-blurred luminance of output and photo, each
  normalised per image (mean 0, unit-ish contrast). Blurring leaves the fine scale free for
  brush texture; normalising lets the style shift global brightness and contrast.
* :func:`edge_loss`: L1 between Sobel gradients of the blurred, normalised luminances (keeps
  contours where a painting would otherwise wash them out).
* :func:`patch_swd_loss`: sliced Wasserstein distance between the 8x8 patch distributions of
  the generated batch and the batch of style crops, on RGB patches and on band-pass luminance
  patches (the two patch kinds :mod:`.metrics` judges a style by), at two scales: a direct
  signal for colour and brush texture that needs no pretrained network (Heitz et al. 2021 use
  the same distance on VGG features).
* :func:`feature_stats_loss`: matches per-channel mean and standard deviation of the
  discriminator's intermediate features between real (painting) and fake batches: feature
  matching for unpaired data, where pixel-wise feature matching would tie a photo to an
  unrelated painting crop.

Inputs are RGB tensors ``(N, 3, H, W)`` in [0, 1]; every loss is a float32 scalar.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d, spatial_gradient
from torch import Tensor

from gantools_stylize.color import luminance


def _kernel(sigma: float) -> int:
    return 2 * max(1, int(round(3 * sigma))) + 1


def blurred_luma(x: Tensor, sigma: float) -> Tensor:
    """Luminance blurred with a Gaussian of ``sigma`` px (identity for ``sigma <= 0``)."""
    y = luminance(x)
    if sigma <= 0:
        return y
    k = _kernel(sigma)
    return gaussian_blur2d(y, (k, k), (sigma, sigma), border_type="reflect")


def _normalise(y: Tensor, floor: float = 0.02) -> Tensor:
    std, mean = torch.std_mean(y, dim=(-2, -1), keepdim=True, unbiased=False)
    return (y - mean) / (std + floor)


def content_loss(fake: Tensor, photo: Tensor, sigma: float = 2.0, normalise: bool = True) -> Tensor:
    """L1 between blurred luminance of ``fake`` and ``photo`` (normalised per image if asked)."""
    a, b = blurred_luma(fake.float(), sigma), blurred_luma(photo.float(), sigma)
    if normalise:
        a, b = _normalise(a), _normalise(b)
    return F.l1_loss(a, b)


def edge_loss(fake: Tensor, photo: Tensor, sigma: float = 1.0) -> Tensor:
    """L1 between Sobel gradients of the blurred, per-image normalised luminances."""
    a = _normalise(blurred_luma(fake.float(), sigma))
    b = _normalise(blurred_luma(photo.float(), sigma))
    return F.l1_loss(spatial_gradient(a, "sobel"), spatial_gradient(b, "sobel"))


def feature_stats_loss(real_feats: Sequence[Tensor], fake_feats: Sequence[Tensor]) -> Tensor:
    """Mean over layers of L1(channel means) + L1(channel stds), batch and space pooled.

    ``real_feats`` are detached; both lists come from the same discriminator.
    """
    if not real_feats or len(real_feats) != len(fake_feats):
        raise ValueError("feature_stats_loss needs matching, non-empty feature lists")
    total = torch.zeros((), dtype=torch.float32, device=fake_feats[0].device)
    for r, f in zip(real_feats, fake_feats):
        rs, rm = torch.std_mean(r.detach().float(), dim=(0, 2, 3), unbiased=False)
        fs, fm = torch.std_mean(f.float(), dim=(0, 2, 3), unbiased=False)
        total = total + F.l1_loss(fm, rm) + F.l1_loss(fs, rs)
    return total / len(real_feats)


def _patch_rows(x: Tensor, stride: int) -> Tensor:
    """Every ``stride``-th 8x8 patch of a batch ``(N, C, H, W)`` as rows ``(N * positions, C * 64)``."""
    from gantools_stylize.metrics import PATCH

    cols = F.unfold(x, PATCH, stride=stride)  # (N, C*64, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def patch_swd_loss(fake: Tensor, style: Tensor, projections: int = 32, stride: int = 4,
                   generator: torch.Generator | None = None) -> Tensor:
    """Sliced Wasserstein distance between 8x8 patches of ``fake`` and of ``style`` (RGB batches in
    [0, 1], any sizes): RGB patches plus band-pass luminance patches, at full and half resolution,
    along ``projections`` random unit directions per kind (drawn from ``generator``). Differentiable
    in ``fake``; ``style`` is treated as a constant."""
    from gantools_stylize.metrics import band_pass, swd

    fake, style = fake.float(), style.detach().float()
    total = fake.new_zeros(())
    for level in range(2):
        if level:
            fake, style = F.avg_pool2d(fake, 2), F.avg_pool2d(style, 2)
        for a, b in ((fake, style), (band_pass(fake), band_pass(style))):
            pa, pb = _patch_rows(a, stride), _patch_rows(b, stride)
            proj = torch.randn(pa.shape[1], projections, generator=generator).to(fake.device)
            total = total + swd(pa, pb, proj / proj.norm(dim=0, keepdim=True))
    return total / 4


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """L1 between a cycle reconstruction and its original."""
    return F.l1_loss(reconstructed.float(), original.float())


__all__ = ["blurred_luma", "content_loss", "cycle_loss", "edge_loss", "feature_stats_loss", "patch_swd_loss"]
