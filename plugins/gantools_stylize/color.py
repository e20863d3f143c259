"""Colour helpers for stylisation: strength blending, colour preservation, Reinhard transfer.

All functions but :func:`finish` take and return float tensors ``(N, 3, H, W)``, RGB in [0, 1]
(kornia's convention), and work in float32 whatever the input dtype. :func:`finish` applies them
to OpenCV arrays band by band.
"""

from __future__ import annotations

import numpy as np
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


#: pixels per band of :func:`finish` (a few float32 copies of a band are alive at a time)
BAND_PIXELS = 1 << 20


def finish(styled: np.ndarray, original: np.ndarray, strength: float, *, preserve: bool = False) -> np.ndarray:
    """The stylised ``styled`` with ``original``'s chroma (``preserve``, 3-channel only) and
    blended by ``strength`` (:func:`preserve_color`, :func:`blend`), as OpenCV arrays.

    Both are HxWxC arrays (C = 1 or 3, BGR) of the same shape and integer dtype. Works on
    horizontal bands of about :data:`BAND_PIXELS` pixels, writing into ``styled`` (which is
    returned), so float memory is a few bands, never the whole image.
    """
    from gantools.tensor.convert import from_tensor, to_tensor

    if styled.shape != original.shape or styled.dtype != original.dtype:
        raise ValueError(f"styled {styled.shape} {styled.dtype} and original {original.shape} {original.dtype} differ")
    if strength == 1.0 and not preserve:
        return styled
    rows = max(1, BAND_PIXELS // max(1, styled.shape[1]))
    for y0 in range(0, styled.shape[0], rows):
        s = to_tensor(styled[y0 : y0 + rows], bgr_to_rgb=True)
        o = to_tensor(original[y0 : y0 + rows], bgr_to_rgb=True)
        if preserve:
            s = preserve_color(s, o)
        styled[y0 : y0 + rows] = from_tensor(blend(s, o, strength).clamp(0, 1), styled.dtype, rgb_to_bgr=True)
    return styled


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


__all__ = ["BAND_PIXELS", "blend", "finish", "lab_stats", "luminance", "preserve_color", "reinhard"]
