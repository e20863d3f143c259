"""Style-transfer quality metrics (used by ``bench/style.py``), none needing a pretrained net.

* :func:`content_ssim`: SSIM of luminance at 1/4 of the input size, input vs output.
* :func:`style_distance`: sliced Wasserstein distance (W1 per slice, averaged over random unit
  projections) between the 8x8 patch distributions of two image sets, patches sampled at long
  side 256 and 128. ``kind="color"`` uses RGB patches; ``kind="texture"`` band-pass luminance
  patches (luminance minus its Gaussian blur, sigma 2), which global colour matching cannot
  change much.
* :func:`swd`: the differentiable core of both (also the training loss
  :func:`gantools_stylize.losses.patch_swd_loss`).
* :func:`style_ratio`: distance(output, style) / distance(input, style): below 1 means the output
  moved towards the style.
* :func:`pooled_ratio`: the same ratio for a whole set (all outputs' patches vs all inputs'
  patches, against one draw of the style folder's patches, with the same projections and, for
  outputs and inputs, the same patch positions), :data:`POOLED_PATCHES` per scale, averaged over
  :data:`POOLED_SEEDS`. outputs == inputs gives exactly 1. It is *not* 0 for real paintings of the
  domain: a finite set of N images covers only part of the folder's patch distribution, so report
  it beside :func:`pooled_ratio` of N held-out paintings of the folder (the floor) and use the same
  photo set and resolution when comparing numbers (see ``bench/results/style.md``).

Images are float tensors ``(1, 3, H, W)``, RGB in [0, 1]. Every random draw comes from a
``torch.Generator`` seeded by the caller's ``seed``, so results are reproducible.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from kornia.metrics import ssim
from torch import Tensor

from gantools_stylize.color import luminance

PATCH = 8
LONG_SIDES = (256, 128)
PATCHES_PER_SCALE = 4096
PROJECTIONS = 128
KINDS = ("color", "texture")
POOLED_PATCHES = 16384
POOLED_SEEDS = (0, 1, 2)


def _resize_long(x: Tensor, long_side: int) -> Tensor:
    h, w = x.shape[-2:]
    f = long_side / max(h, w)
    size = (max(PATCH, round(h * f)), max(PATCH, round(w * f)))
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=f < 1)


def content_ssim(original: Tensor, output: Tensor) -> float:
    """SSIM (11x11 Gaussian window) of the luminances at 1/4 of ``original``'s size."""
    h, w = original.shape[-2:]
    size = (max(11, h // 4), max(11, w // 4))
    a = F.interpolate(luminance(original), size=size, mode="area")
    b = F.interpolate(luminance(output), size=size, mode="area")
    return float(ssim(a, b, 11).mean())


def band_pass(x: Tensor, sigma: float = 2.0) -> Tensor:
    """Luminance minus its Gaussian blur (``(N, 1, H, W)``)."""
    y = luminance(x)
    k = 2 * int(round(3 * sigma)) + 1
    return y - gaussian_blur2d(y, (k, k), (sigma, sigma), border_type="reflect")


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` of ``F.unfold(x, PATCH)[0].T`` (``x`` is ``(1, C, H, W)``) without unfolding
    every position: patch ``i`` has its top-left corner at ``divmod(i, W - PATCH + 1)``."""
    y0, x0 = idx // (x.shape[-1] - PATCH + 1), idx % (x.shape[-1] - PATCH + 1)
    d = torch.arange(PATCH)
    rows = (y0[:, None] + d)[:, :, None]  # (n, 8, 1)
    cols = (x0[:, None] + d)[:, None, :]  # (n, 1, 8)
    return x[0][:, rows, cols].permute(1, 0, 2, 3).reshape(len(idx), -1)  # (n, C*64), unfold's order


def patches(images: Sequence[Tensor], kind: str, seed: int = 0, per_scale: int = PATCHES_PER_SCALE) -> Tensor:
    """``(len(LONG_SIDES) * per_scale, D)`` random 8x8 patches drawn evenly from ``images``
    (uniformly over each resized image's patch positions)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    g = torch.Generator().manual_seed(seed)
    out = []
    for long_side in LONG_SIDES:
        per_image = [per_scale // len(images) + (i < per_scale % len(images)) for i in range(len(images))]
        for img, n in zip(images, per_image):
            x = _resize_long(img, long_side)
            x = band_pass(x) if kind == "texture" else x
            positions = (x.shape[-2] - PATCH + 1) * (x.shape[-1] - PATCH + 1)
            out.append(_gather(x, torch.randint(0, positions, (n,), generator=g)))
    return torch.cat(out)


def projections(dim: int, n: int = PROJECTIONS, seed: int = 0) -> Tensor:
    """``(dim, n)`` random unit directions."""
    g = torch.Generator().manual_seed(seed + 7919)
    p = torch.randn(dim, n, generator=g)
    return p / p.norm(dim=0, keepdim=True)


def swd(a: Tensor, b: Tensor, proj: Tensor) -> Tensor:
    """Mean over the ``proj`` columns (unit directions, ``(D, P)``) of the 1-D Wasserstein-1
    distance between the rows of ``a`` ``(N, D)`` and ``b`` ``(M, D)``; when ``M != N``, ``b``'s
    sorted projections are resampled at ``a``'s ranks. Differentiable (the training loss uses it)."""
    pa, _ = torch.sort(a @ proj, dim=0)
    pb, _ = torch.sort(b @ proj, dim=0)
    if pb.shape[0] != pa.shape[0]:  # quantiles of b at a's ranks
        idx = torch.linspace(0, pb.shape[0] - 1, pa.shape[0], device=pb.device).round().long()
        pb = pb[idx]
    return (pa - pb).abs().mean()


def sliced_wasserstein(a: Tensor, b: Tensor, proj: Tensor) -> float:
    """:func:`swd` in float64 of two patch sets of the same shape ``(N, D)`` (the metric)."""
    if a.shape != b.shape:
        raise ValueError(f"patch sets must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return float(swd(a.double(), b.double(), proj.double()))


def style_distance(images: Sequence[Tensor], style: Sequence[Tensor], kind: str, seed: int = 0) -> float:
    """Sliced Wasserstein distance between the patch distributions of ``images`` and ``style``."""
    a = patches(images, kind, seed)
    b = patches(style, kind, seed + 1)
    return sliced_wasserstein(a, b, projections(a.shape[1], seed=seed))


def style_ratio(original: Tensor, output: Tensor, style: Sequence[Tensor], kind: str, seed: int = 0) -> float:
    """``style_distance(output) / style_distance(original)`` against the same style patches."""
    b = patches(style, kind, seed + 1)
    proj = projections(b.shape[1], seed=seed)
    d_out = sliced_wasserstein(patches([output], kind, seed), b, proj)
    d_in = sliced_wasserstein(patches([original], kind, seed), b, proj)
    return d_out / max(d_in, 1e-12)


def pooled_ratio(originals: Sequence[Tensor], outputs: Sequence[Tensor], style: Sequence[Tensor], kind: str,
                 seeds: Sequence[int] = POOLED_SEEDS, per_scale: int = POOLED_PATCHES) -> float:
    """Mean over ``seeds`` of distance(all ``outputs``, style) / distance(all ``originals``, style).

    ``outputs[i]`` must have ``originals[i]``'s size, so both sets are sampled at the same patch
    positions (the ratio then measures only what the stylisation changed)."""
    if len(originals) != len(outputs) or not originals:
        raise ValueError(f"need as many outputs as originals (> 0), got {len(outputs)} and {len(originals)}")
    ratios = []
    for seed in seeds:
        b = patches(style, kind, seed + 1, per_scale)
        proj = projections(b.shape[1], seed=seed)
        d_out = sliced_wasserstein(patches(outputs, kind, seed, per_scale), b, proj)
        d_in = sliced_wasserstein(patches(originals, kind, seed, per_scale), b, proj)
        ratios.append(d_out / max(d_in, 1e-12))
    return float(sum(ratios) / len(ratios))


__all__ = ["KINDS", "POOLED_PATCHES", "POOLED_SEEDS", "band_pass", "content_ssim", "patches", "pooled_ratio",
           "projections", "sliced_wasserstein", "style_distance", "style_ratio", "swd"]
