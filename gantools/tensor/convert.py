"""The one array <-> tensor converter (inference, training data, projection, grids, benchmarks).

OpenCV arrays (``HxW`` gray, ``HxWx3`` BGR, ``HxWx4`` BGRA; uint8/uint16) become float tensors
``(N, C, H, W)`` in [0, 1] (kornia's convention); channel order is converted by name
(``bgr_to_rgb`` / ``rgb_to_bgr``), never implied. Alpha is split off by :func:`split` and handled
by the caller. Tensors go back rounded to the nearest level of the target bit depth.

Large images can stay integer: :func:`to_int_tensor` keeps an array's levels (uint8/uint16, a
quarter or half of the float tensor's memory) and :func:`as_float` converts one tile of it at a
time, bit-identical to :func:`to_tensor` on the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Layout:
    """How an input array was laid out, so the output can be put back the same way."""

    gray: bool
    squeeze: bool  # HxW (True) vs HxWx1 (False) for gray
    alpha: bool
    dtype: np.dtype

    @property
    def maxval(self) -> float:
        return maxval(self.dtype)


def maxval(dtype: np.dtype) -> float:
    """The value of full intensity: 255 (uint8), 65535 (uint16) or 1.0 (float arrays in [0, 1])."""
    if np.issubdtype(dtype, np.floating):
        return 1.0
    return 65535.0 if dtype == np.uint16 else 255.0


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


def images_to_tensor(images: Sequence[np.ndarray], *, bgr_to_rgb: bool) -> Tensor:
    """N same-size HxWxC (C=1 or 3) arrays -> float32 tensor (N, C, H, W) in [0, 1].

    Integer arrays are scaled by their full intensity; float arrays are taken as [0, 1].

    ``bgr_to_rgb`` reverses the channels of 3-channel arrays (OpenCV BGR -> tensor RGB); pass
    ``False`` for planes that are not colour (alpha, masks) or arrays already in RGB.
    """
    import torch

    stack = np.stack([np.asarray(a) for a in images])
    _check_nhwc(stack.shape)
    if bgr_to_rgb and stack.shape[-1] == 3:
        stack = stack[..., ::-1]
    floats = np.ascontiguousarray(stack).astype(np.float32) / maxval(stack.dtype)
    return torch.from_numpy(floats).permute(0, 3, 1, 2).contiguous()


def _check_nhwc(shape: tuple[int, ...]) -> None:
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise ValueError(f"expected N x H x W x C arrays with C = 1 or 3, got {shape}")


def tensor_to_images(tensor: Tensor, dtype: np.dtype = np.uint8, *, rgb_to_bgr: bool) -> np.ndarray:
    """(N, C, H, W) float tensor in [0, 1] -> N x H x W x C array of ``dtype``, rounded.

    ``rgb_to_bgr`` reverses the channels of a 3-channel tensor (tensor RGB -> OpenCV BGR).
    """
    import torch

    if tensor.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(tensor.shape)}")
    dtype = np.dtype(dtype)
    levels = tensor.detach().float().clamp(0, 1).cpu()
    torch_dtype = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16}.get(dtype)
    if torch_dtype is not None:  # rounded in torch (half to even, as np.rint): no float array in numpy
        levels = levels.mul_(maxval(dtype)).round_().to(torch_dtype)
        if rgb_to_bgr and levels.shape[1] == 3:  # with OpenCV (2-3x a strided copy)
            import cv2

            if levels.is_contiguous(memory_format=torch.channels_last):  # interleaved already: swap
                swapped = [cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in levels.permute(0, 2, 3, 1).numpy()]
            else:  # planes: interleave
                swapped = [cv2.merge([p[2], p[1], p[0]]) for p in levels.numpy()]
            return swapped[0][None] if len(swapped) == 1 else np.stack(swapped)
    arr = levels.permute(0, 2, 3, 1).numpy()
    if rgb_to_bgr and arr.shape[-1] == 3:
        arr = arr[..., ::-1]
    if torch_dtype is None:
        arr = np.rint(arr * maxval(dtype)).astype(dtype)
    return np.ascontiguousarray(arr)


def to_tensor(color: np.ndarray, *, bgr_to_rgb: bool) -> Tensor:
    """One HxWxC (C=1 or 3) integer array -> (1, C, H, W): :func:`images_to_tensor` of ``[color]``."""
    return images_to_tensor([color], bgr_to_rgb=bgr_to_rgb)


def to_int_tensor(color: np.ndarray, *, bgr_to_rgb: bool) -> Tensor:
    """One HxWxC (C=1 or 3) uint8/uint16 array -> (1, C, H, W) tensor of the same dtype and levels
    (one integer copy, no float one); :func:`as_float` of it, or of any slice of it, equals
    :func:`to_tensor` of the same pixels exactly. Arrays of other dtypes: :func:`to_tensor`."""
    import torch

    if color.dtype not in (np.uint8, np.uint16):
        return to_tensor(color, bgr_to_rgb=bgr_to_rgb)
    _check_nhwc((1, *color.shape))
    bits = np.ascontiguousarray(color)
    if bits.dtype == np.uint16:  # torch only moves uint16 in part: move the same bits as int16
        bits = bits.view(np.int16)
    planes = torch.from_numpy(bits).permute(2, 0, 1)
    order = (2, 1, 0) if bgr_to_rgb and color.shape[-1] == 3 else range(color.shape[-1])
    t = torch.stack([planes[c] for c in order])[None]  # one contiguous copy, channels in order
    return t.view(torch.uint16) if color.dtype == np.uint16 else t


def as_float(t: Tensor) -> Tensor:
    """An integer tensor of levels (:func:`to_int_tensor`: uint8 or uint16) as float32 in [0, 1],
    in its memory format; a float tensor is returned as it is (no copy)."""
    import torch

    if t.is_floating_point():
        return t
    if t.dtype not in (torch.uint8, torch.uint16):
        raise TypeError(f"expected a uint8, uint16 or float tensor, got {t.dtype}")
    return t.float().div_(65535.0 if t.dtype == torch.uint16 else 255.0)


def from_tensor(tensor: Tensor, dtype: np.dtype, *, rgb_to_bgr: bool) -> np.ndarray:
    """(1, C, H, W) float tensor in [0, 1] -> one HxWxC array: :func:`tensor_to_images`, first image."""
    return tensor_to_images(tensor[:1], dtype, rgb_to_bgr=rgb_to_bgr)[0]


__all__ = ["Layout", "as_float", "from_tensor", "images_to_tensor", "maxval", "merge", "split", "tensor_to_images",
           "to_int_tensor", "to_tensor"]
