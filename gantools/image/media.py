"""Writing generated images: one PNG per seed, a grid sheet, GIF (Pillow) and MP4 (OpenCV) walks.

All inputs are lists of HxWx3 BGR uint8 arrays of one size. Files are written atomically
through :mod:`gantools.image.atomic` (images via :func:`gantools.image.write_image`, MP4 via
:func:`gantools.image.atomic.atomic_path`); failures raise ``OSError``/``ValueError`` subclasses
with the path in the message.
"""

from __future__ import annotations

import math
import os
from io import BytesIO
from pathlib import Path
from typing import Sequence

import numpy as np

def seed_name(seed: int, width: int = 4) -> str:
    """File name of a seed's image: ``seed0007.png`` (at least ``width`` digits)."""
    return f"seed{seed:0{width}d}.png"


def _check_frames(images: Sequence[np.ndarray]) -> tuple[int, int]:
    if not images:
        raise ValueError("no images to write")
    h, w = images[0].shape[:2]
    for im in images:
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape != (h, w, 3):
            raise ValueError(f"images must all be {h}x{w}x3 uint8 BGR arrays")
    return h, w


def write_pngs(images: Sequence[np.ndarray], seeds: Sequence[int], folder: str | os.PathLike) -> list[Path]:
    """Write ``images[i]`` as ``folder/seedNNNN.png`` for ``seeds[i]``; returns the paths."""
    from gantools.image import encode_image, write_image

    if len(images) != len(seeds):
        raise ValueError("one seed per image is needed")
    out = []
    for im, s in zip(images, seeds):
        path = Path(folder) / seed_name(s)
        write_image(path, encode_image(im, "png"))
        out.append(path)
    return out


def grid(images: Sequence[np.ndarray], nrow: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile ``images`` row by row, ``nrow`` per row (default: about square), ``pad`` px apart."""
    h, w = _check_frames(images)
    n = len(images)
    nrow = max(1, nrow or math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    sheet = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), fill, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y0 : y0 + h, x0 : x0 + w] = im
    return sheet


def write_grid(images: Sequence[np.ndarray], path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Write :func:`grid` of ``images`` to ``path`` (format from the suffix: png, jpg, webp...)."""
    from gantools.image import encode_image, format_from_name, write_image

    fmt = format_from_name(path) or "png"
    write_image(path, encode_image(grid(images, nrow), fmt))
    return Path(path)


def write_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 24.0) -> Path:
    """Animated GIF (looping, Pillow's adaptive palette per frame)."""
    from PIL import Image

    from gantools.image import write_image

    _check_frames(frames)
    pics = [Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])) for f in frames]
    buf = BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], loop=0,
                 duration=max(20, round(1000.0 / fps)), optimize=False)
    write_image(path, buf.getvalue())
    return Path(path)


def write_mp4(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 24.0) -> Path:
    """MP4 (MPEG-4 part 2, ``mp4v``) through ``cv2.VideoWriter``, written atomically.

    Odd frame sizes are padded by one edge pixel (the codec needs even sides).
    """
    import cv2

    from gantools.image.atomic import atomic_path

    h, w = _check_frames(frames)
    ph, pw = h + h % 2, w + w % 2
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:  # the suffix tells OpenCV the container
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (pw, ph))
        if not writer.isOpened():
            raise OSError(f"{path}: cannot write MP4 (OpenCV has no mp4v encoder here); write a .gif instead")
        try:
            for f in frames:
                if (ph, pw) != (h, w):
                    f = cv2.copyMakeBorder(f, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
                writer.write(np.ascontiguousarray(f))
        finally:
            writer.release()
        if tmp.stat().st_size == 0:
            raise OSError(f"{path}: the MP4 encoder wrote nothing")
    return path


def write_animation(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 24.0) -> Path:
    """GIF or MP4 by ``path``'s suffix; ``ValueError`` for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(frames, path, fps)
    if suffix == ".mp4":
        return write_mp4(frames, path, fps)
    raise ValueError(f"{path}: an interpolation is written as .gif or .mp4, not {suffix or 'no suffix'!r}")
