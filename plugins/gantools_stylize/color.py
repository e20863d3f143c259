"""Colour helpers for stylisation: strength blending, colour preservation, Reinhard transfer.

All functions take and return float tensors ``(N, 3, H, W)``, RGB in [0, 1] (kornia's
convention), and work in float32 whatever the input dtype.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab, rgb_to_ycbcr, ycbcr_to_rgb
from torch import Tensor


def blend(styled: Tensor, original: Tensor, strength: float) -> Tensor:
    """``strength * styled + (1 - strength) * original``; ``strength`` in [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], not {strength}")
    if strength == 1.0:
        return styled
    if strength == 0.0:
        return original
    return torch.lerp(original.float(), styled.float(), strength)


def preserve_color(styled: Tensor, original: Tensor) -> Tensor:
    """Luminance (Y) of ``styled`` with the chroma (Cb, Cr) of ``original``, clamped to [0, 1].

    Both must have the same shape. Chroma is kept exactly except where the recombined colour
    falls outside the RGB cube and is clipped.
    """
    y = rgb_to_ycbcr(styled.float())[:, :1]
    cbcr = rgb_to_ycbcr(original.float())[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, cbcr], 1)).clamp(0, 1)


def luminance(x: Tensor) -> Tensor:
    """Y (BT.601, as kornia's YCbCr) of an RGB tensor: ``(N, 1, H, W)``."""
    return rgb_to_ycbcr(x.float())[:, :1]


def lab_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image Lab channel mean and standard deviation, each ``(N, 3, 1, 1)``."""
    lab = rgb_to_lab(x.float().clamp(0, 1))
    std, mean = torch.std_mean(lab, dim=(-2, -1), keepdim=True, unbiased=False)
    return mean, std


def reinhard(content: Tensor, style: Tensor | list[Tensor]) -> Tensor:
    """Reinhard et al. (2001) colour transfer: match ``content``'s Lab mean/std to ``style``'s.

    ``style`` is one image ``(1, 3, h, w)`` or a list of them (their statistics are pooled by
    averaging the per-image means and variances). Returns RGB in [0, 1], shaped like ``content``.
    """
    styles = style if isinstance(style, list) else [style]
    stats = [lab_stats(s) for s in styles]
    s_mean = torch.stack([m for m, _ in stats]).mean(0)
    s_std = torch.stack([s.pow(2) for _, s in stats]).mean(0).sqrt()
    c_mean, c_std = lab_stats(content)
    lab = rgb_to_lab(content.float().clamp(0, 1))
    out = (lab - c_mean) / (c_std + 1e-6) * s_std + s_mean
    out[:, :1] = out[:, :1].clamp(0, 100)
    return lab_to_rgb(out).clamp(0, 1)


__all__ = ["blend", "lab_stats", "luminance", "preserve_color", "reinhard"]
