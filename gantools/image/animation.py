"""Animations (GIF, APNG, animated WebP) as lists of frames, read and encoded with Pillow.

The still-image codec (:mod:`gantools.image.codec`) reads the first frame of a file; this module
owns the multi-frame side of the same formats. Frames are whole canvases (Pillow applies each
format's disposal and blending on reading), ``uint8`` BGR, or BGRA when any frame has
transparency. Per format:

* **GIF** (read and written here only; the still codec does not take GIF): per-frame durations
  (GIF stores hundredths of a second, so durations are rounded to 10 ms) and the loop count are
  kept. Written with Pillow's adaptive 256-colour palette per frame; alpha becomes one
  transparent colour (GIF has no partial transparency). Pillow merges consecutive identical
  frames into one longer frame (the timing is kept).
* **APNG** (``.png`` with several frames): durations and play count kept; frames are written
  whole (dispose none, blend source), 8-bit RGB(A).
* **Animated WebP**: durations and loop count kept; lossy at ``quality`` (default 95; 100 is
  lossless).
* JPEG, TIFF and BMP hold one image: an animation written to them keeps its first frame (the
  caller warns). Multi-page TIFF input stays first-page only.

``plays`` is the number of times the animation plays, ``0`` for forever (GIF's NETSCAPE loop
count is plays - 1; a GIF without it plays once). Nothing here runs at import time beyond
numpy; Pillow is imported on use. Errors are :class:`~gantools.image.codec.ImageError`
``"<name>: <problem>"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from io import BytesIO
from typing import Sequence

import numpy as np

from gantools.image.codec import ImageError, read_limited

#: formats that hold an animation (canonical names; ``gif`` is not a still-image format)
ANIMATED = ("gif", "png", "webp")
#: Pillow's name and the label of each animated format
_PILLOW = {"gif": ("GIF", "GIF"), "png": ("PNG", "APNG"), "webp": ("WEBP", "WebP")}
#: the shortest duration written to GIF (browsers play shorter GIF frames at 100 ms)
MIN_GIF_MS = 20


@dataclass
class Animation:
    """Frames of one size (``uint8`` BGR or BGRA), each one's duration in ms, and the play count
    (``0``: forever). ``format`` is the source format (``gif``, ``png``, ``webp``)."""

    frames: list[np.ndarray]
    durations: list[int]
    plays: int
    format: str


def is_animated_format(fmt: str) -> bool:
    """Whether ``fmt`` (a canonical format name) can hold an animation."""
    return fmt in ANIMATED


def read_animation(path: str | os.PathLike, *, name: str | None = None,
                   max_pixels: int | None = None) -> Animation:
    """Every frame of the GIF, APNG or animated WebP at ``path``.

    ``max_pixels`` bounds one frame's canvas (checked before decoding) and all frames together
    (checked while decoding), so a long animation cannot exhaust memory. :class:`ImageError` for
    an unreadable, unrecognised, too large or corrupt file.
    """
    from PIL import Image, UnidentifiedImageError

    shown = name or os.fsdecode(path)
    data = _read(path, shown, max_pixels)
    try:
        im = Image.open(BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{shown}: not a GIF, PNG or WebP animation") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad headers
        raise ImageError(f"{shown}: cannot read the animation ({exc})") from None
    fmt = {"GIF": "gif", "PNG": "png", "WEBP": "webp"}.get(im.format or "")
    if fmt is None:
        raise ImageError(f"{shown}: {im.format} is not an animation format (GIF, APNG or WebP)")
    width, height = im.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"{shown}: image is {width}x{height} = {width * height} pixels, above the limit of "
                         f"{max_pixels} (raise it with --max-pixels)")
    frames, durations = _frames(im, shown, fmt, max_pixels)
    return Animation(_layout(frames), durations, _plays(im.info, fmt), fmt)


def _read(path: str | os.PathLike, shown: str, max_pixels: int | None) -> bytes:
    """The file's bytes, at most what ``max_pixels`` allows (:func:`gantools.image.codec.read_limited`)."""
    try:
        with open(path, "rb") as f:
            data = read_limited(f, shown, max_pixels)
    except OSError as exc:
        raise ImageError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ImageError(f"{shown}: empty file")
    return data


def _frames(im, shown: str, fmt: str, max_pixels: int | None) -> tuple[list[np.ndarray], list[int]]:  # noqa: ANN001
    """RGBA canvases and durations (ms) of every frame of the open Pillow image ``im``."""
    frames: list[np.ndarray] = []
    durations: list[int] = []
    label = _PILLOW[fmt][1]
    try:
        count = getattr(im, "n_frames", 1)
        for index in range(count):
            im.seek(index)
            rgba = np.asarray(im.convert("RGBA"))
            frames.append(rgba)
            durations.append(max(0, round(float(im.info.get("duration") or 0))))
            if max_pixels is not None and len(frames) * rgba.shape[0] * rgba.shape[1] > 4 * max_pixels:
                raise ImageError(f"{shown}: {count} frames of {im.size[0]}x{im.size[1]} are more than 4 x "
                                 f"--max-pixels ({max_pixels}) pixels in all; raise --max-pixels")
    except ImageError:
        raise
    except Exception:  # noqa: BLE001 - EOFError, OSError, SyntaxError, zlib.error ... for bad data
        raise ImageError(f"{shown}: truncated or corrupt {label} data") from None
    return frames, durations


def _layout(frames: list[np.ndarray]) -> list[np.ndarray]:
    """RGBA frames as BGRA, or as BGR when every frame is fully opaque."""
    opaque = all(bool((f[:, :, 3] == 255).all()) for f in frames)
    if opaque:
        return [np.ascontiguousarray(f[:, :, 2::-1]) for f in frames]
    return [np.ascontiguousarray(f[:, :, [2, 1, 0, 3]]) for f in frames]


def _plays(info: dict, fmt: str) -> int:
    """How many times the animation plays (``0``: forever) from Pillow's ``info``."""
    loop = info.get("loop")
    if fmt == "gif":
        return 1 if loop is None else (0 if loop == 0 else int(loop) + 1)
    return 0 if loop is None else int(loop)


def encode_animation(frames: Sequence[np.ndarray], durations: Sequence[int], plays: int, fmt: str, *,
                     quality: int | None = None) -> bytes:
    """``frames`` (``uint8`` BGR or BGRA, one size) as an animated ``fmt`` (``gif``, ``png`` or
    ``webp``) with the given durations (ms) and play count (see the module docstring).

    ``quality``: WebP quality 1-100 (default 95; 100 = lossless), PNG compression 0-9 (default 3).
    ``ValueError`` for bad arguments, :class:`ImageError` when the format cannot hold the frames.
    """
    if fmt not in ANIMATED:
        raise ValueError(f"{fmt!r} cannot hold an animation (only {', '.join(ANIMATED)})")
    if not frames or len(frames) != len(durations):
        raise ValueError("one duration per frame, and at least one frame, are needed")
    pics = _pillow_frames(frames)
    pillow, label = _PILLOW[fmt]
    options: dict = {"save_all": True, "append_images": pics[1:]}
    if fmt == "gif":
        options["duration"] = [max(MIN_GIF_MS, int(d)) for d in durations]
        options["disposal"] = 2 if pics[0].mode == "RGBA" else 1
        if plays != 1:
            options["loop"] = 0 if plays == 0 else plays - 1
    else:
        options["duration"] = [int(d) for d in durations]
        options["loop"] = plays
    if fmt == "png":
        options.update(disposal=0, blend=0, compress_level=3 if quality is None else quality)
    elif fmt == "webp":
        q = 95 if quality is None else quality
        options.update(quality=q, lossless=q == 100, method=4)
    buf = BytesIO()
    try:
        pics[0].save(buf, pillow, **options)
    except (OSError, ValueError) as exc:
        h, w = frames[0].shape[:2]
        raise ImageError(f"cannot encode {len(frames)} frames of {w}x{h} as an animated {label}: {exc}") from None
    return buf.getvalue()


def _pillow_frames(frames: Sequence[np.ndarray]) -> list:
    """BGR(A) ``uint8`` arrays of one size and layout as Pillow RGB(A) images."""
    from PIL import Image

    first = frames[0]
    for f in frames:
        if f.dtype != np.uint8 or f.shape != first.shape or f.ndim != 3 or f.shape[2] not in (3, 4):
            raise ValueError("animation frames must all be HxWx3 or HxWx4 uint8 arrays of one size")
    order = [2, 1, 0] if first.shape[2] == 3 else [2, 1, 0, 3]
    return [Image.fromarray(np.ascontiguousarray(f[:, :, order])) for f in frames]


def first_frame_note(count: int, fmt_label: str) -> str:
    """The warning for an animation written to a format that holds one image."""
    return f"has {count} frames; {fmt_label} holds one image, so only the first is processed"


__all__ = ["ANIMATED", "Animation", "encode_animation", "first_frame_note", "is_animated_format", "read_animation"]
