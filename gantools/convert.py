"""Array <-> tensor conversion for the plugin contract.

OpenCV arrays (``HxW`` gray, ``HxWx3`` BGR, ``HxWx4`` BGRA; uint8/uint16) become float tensors
``(1, C, H, W)`` in [0, 1] with RGB channel order (kornia's convention); alpha is split off and
handled by the caller. ``from_tensor`` reverses it, rounding to the original bit depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Layout:
    """How an input array was laid out, so the output can be put back the same way."""

    gray: bool
    squeeze: bool  # HxW (True) vs HxWx1 (False) for gray
    alpha: bool
    dtype: np.dtype

    @property
    def maxval(self) -> float:
        return 65535.0 if self.dtype == np.uint16 else 255.0


def split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, Layout]:
    """Split an OpenCV array into colour (HxWx1 or HxWx3) and alpha (HxW or None)."""
    squeeze = image.ndim == 2
    img = image[:, :, None] if squeeze else image
    c = img.shape[2]
    alpha = img[:, :, 3] if c == 4 else (img[:, :, 1] if c == 2 else None)
    color = img[:, :, :3] if c == 4 else img[:, :, :1] if c == 2 else img
    layout = Layout(gray=color.shape[2] == 1, squeeze=squeeze, alpha=alpha is not None, dtype=image.dtype)
    return color, alpha, layout


def merge(color: np.ndarray, alpha: np.ndarray | None, layout: Layout) -> np.ndarray:
    """Inverse of :func:`split` (``color`` HxWxC in the layout's dtype)."""
    if alpha is not None:
        return np.concatenate([color, alpha[:, :, None]], axis=2)
    if layout.gray and layout.squeeze:
        return color[:, :, 0]
    return color


def to_tensor(color: np.ndarray, *, bgr_to_rgb: bool = True) -> Any:
    """HxWxC (C=1 or 3) integer array -> float32 tensor (1, C, H, W) in [0, 1].

    ``bgr_to_rgb`` reverses the channels of a 3-channel array (OpenCV BGR -> tensor RGB);
    pass ``False`` for planes that are not colour (alpha, masks) or arrays already in RGB.
    """
    import torch

    maxval = 65535.0 if color.dtype == np.uint16 else 255.0
    arr = color[:, :, ::-1] if (bgr_to_rgb and color.shape[2] == 3) else color
    t = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32) / maxval)
    return t.permute(2, 0, 1).unsqueeze(0).contiguous()


def from_tensor(tensor: Any, dtype: np.dtype, *, rgb_to_bgr: bool = True) -> np.ndarray:
    """(1, C, H, W) float tensor in [0, 1] -> HxWxC array of ``dtype``, rounded.

    ``rgb_to_bgr`` reverses the channels of a 3-channel tensor (tensor RGB -> OpenCV BGR).
    """
    maxval = 65535.0 if dtype == np.uint16 else 255.0
    arr = tensor.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    if rgb_to_bgr and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(np.rint(arr * maxval).astype(dtype))
