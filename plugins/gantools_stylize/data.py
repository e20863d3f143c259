"""Training data for ``stylize``: style images cropped at several scales, content photo crops.

Every crop is a pure function of the ``numpy`` generator it is given (the engine seeds one per
step), so resumed runs see the same batches. Arrays are RGB ``uint8`` (HxWx3).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from gantools.train.data import DataError, ImageSet

#: shorter side below which a style image is refused (nothing to learn a texture from)
MIN_STYLE_SIDE = 64
#: channel spread (0-255) below which a style image counts as grayscale
GRAY_SPREAD = 4


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=interp)


def is_gray(img: np.ndarray) -> bool:
    """True when all three channels are (nearly) equal everywhere."""
    a = img.astype(np.int16)
    return int(max(np.abs(a[..., 0] - a[..., 1]).max(), np.abs(a[..., 1] - a[..., 2]).max())) <= GRAY_SPREAD


class StyleImages:
    """Style images downscaled so their long side is at most ``style_size`` (never upscaled,
    except so that the shorter side is at least ``crop``).

    Raises :class:`DataError` for a missing/empty path or an image whose shorter side is below
    :data:`MIN_STYLE_SIDE`. ``names`` are the file names, ``gray`` flags grayscale ones.
    """

    def __init__(self, paths: list[str], *, crop: int, style_size: int | None, workers: int = 2,
                 log: Callable[[str], None] | None = None) -> None:
        if not paths:
            raise DataError("no style images: give --style-images PAINTING (a file or a folder)")
        raw = ImageSet(paths, workers=workers, log=log)
        self.names = list(raw.names)
        self.images: list[np.ndarray] = []
        self.gray: list[bool] = []
        for name, img in zip(raw.names, raw.images):
            h, w = img.shape[:2]
            if min(h, w) < MIN_STYLE_SIDE:
                raise DataError(
                    f"style image {name} is {w}x{h} px: too small to learn a style from "
                    f"(the shorter side must be at least {MIN_STYLE_SIDE} px)"
                )
            f = min(1.0, style_size / max(h, w)) if style_size else 1.0
            f = max(f, crop / min(h, w))
            if f > 2.0 and log is not None:
                log(f"style image {name} ({w}x{h}) is upscaled {f:.1f}x; its texture will look soft")
            if abs(f - 1.0) > 1e-3:
                img = _resize(img, max(crop, round(w * f)), max(crop, round(h * f)))
            self.images.append(img)
            self.gray.append(is_gray(img))
        if log is not None and any(self.gray):
            grays = ", ".join(n for n, g in zip(self.names, self.gray) if g)
            log(f"grayscale style image(s): {grays}; the style learnt from them is grayscale too")

    def __len__(self) -> int:
        return len(self.images)

    def crop(self, rng: np.random.Generator, size: int, scale_range: float) -> np.ndarray:
        """A ``size`` crop of a random image over a window of ``size`` to ``size * scale_range``
        px (log-uniform; capped by the image), resized to ``size``, randomly mirrored."""
        img = self.images[int(rng.integers(len(self.images)))]
        return scaled_crop(img, rng, size, size * scale_range)


def scaled_crop(img: np.ndarray, rng: np.random.Generator, size: int, max_window: float) -> np.ndarray:
    """Square window of side log-uniform in ``[size, max_window]`` (capped by the image's
    shorter side), at a random position, resized to ``size`` and mirrored with p=0.5."""
    h, w = img.shape[:2]
    hi = max(size, min(max_window, min(h, w)))
    side = int(round(math.exp(rng.uniform(math.log(size), math.log(hi))))) if hi > size else size
    side = min(side, h, w)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    out = img[y : y + side, x : x + side]
    if side != size:
        out = _resize(out, size, size)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def center_square(img: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of ``img``, resized to ``size``."""
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(_resize(img[y : y + s, x : x + s], size, size))


def content_images(paths: list[str], *, crop: int, exclude: Callable[[str], bool] | None = None, workers: int = 2,
                   log: Callable[[str], None] | None = None) -> ImageSet:
    """Content photos (upscaled so the shorter side is at least ``crop``), without the file names
    ``exclude`` matches (the held-out split, :mod:`gantools_stylize.split`)."""
    if not paths:
        raise DataError("no content photos: give --content FOLDER (photos to learn to stylise)")
    return ImageSet(paths, min_side=crop, exclude=exclude, workers=workers, log=log)


def label(paths: list[str]) -> str:
    """A short label for a list of data paths (file or folder names)."""
    return ", ".join(Path(p).name or str(p) for p in paths)


__all__ = ["MIN_STYLE_SIDE", "StyleImages", "center_square", "content_images", "is_gray", "label", "scaled_crop"]
