"""The supported image formats, one module each, and lookups over them.

Each module (``png``, ``jpeg``, ``webp``, ``tiff``, ``bmp``) registers itself with
:func:`gantools.image.registry.register_format`; adding a format means adding its module and
naming it on the import line below (whose order is the order formats are listed in messages).
The lookups here never name a format. Importing this package loads neither OpenCV nor Pillow.
"""

from __future__ import annotations

import os
from pathlib import Path

from gantools.image.formats import png, jpeg, webp, tiff, bmp  # noqa: F401  (registers them, in this order)
from gantools.image.registry import ImageFormat, registered

#: Bytes of the file given to ``accept``.
PREFIX_BYTES = 32
#: The default pixel limit of ``run --max-pixels`` and ``train --max-pixels`` (Pillow's
#: decompression-bomb threshold); here so that settings can name it without loading a codec.
DEFAULT_MAX_PIXELS = 89_478_485
#: Canonical format name -> extension written.
FORMATS = {fmt.name: fmt.extension for fmt in registered()}
_BY_NAME = {alias: fmt for fmt in registered() for alias in (fmt.name, *fmt.aliases)}
_BY_SUFFIX = {ext: fmt for fmt in registered() for ext in fmt.extensions}


def get(format: str) -> ImageFormat:
    """The format named ``format`` (canonical name or alias, any case).

    Raises ``ValueError`` listing the choices if unknown.
    """
    fmt = _BY_NAME.get(format.lower())
    if fmt is None:
        raise ValueError(f"unknown image format {format!r} (choose from {', '.join(FORMATS)})")
    return fmt


def sniff(data: bytes) -> ImageFormat | None:
    """The format whose ``accept`` recognises the first bytes of ``data``, or ``None``."""
    prefix = data[:PREFIX_BYTES]
    return next((fmt for fmt in registered() if fmt.accept(prefix)), None)


def is_complete(data: bytes) -> bool:
    """Whether ``data`` is a whole image file: a registered format whose header parses and whose
    structure is complete (the format's ``complete``), without decoding pixels. A cheap check for
    "this output was written"; TIFF and BMP are only checked up to their header."""
    fmt = sniff(data)
    if fmt is None:
        return False
    try:
        fmt.header(data)
    except Exception:  # any failure of a header parser means the header is unusable
        return False
    return fmt.complete(data)


def format_from_name(path: str | os.PathLike) -> str | None:
    """Canonical format for a file name's extension (``".JPG"`` -> ``"jpeg"``), else ``None``."""
    fmt = _BY_SUFFIX.get(Path(path).suffix.lower())
    return fmt.name if fmt else None


def labels() -> str:
    """The formats for messages: ``"PNG, JPEG, WebP, TIFF or BMP"``."""
    names = [fmt.label for fmt in registered()]
    return " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]


def check_quality(format: str, quality: int | None) -> int | None:
    """The quality ``encode_image`` will use for ``format`` (``None`` where it has none).

    JPEG/WebP take 1-100 (default 95), PNG a compression level 0-9 (default 3); TIFF and BMP
    ignore it. Raises ``ValueError`` for an out-of-range value, so a CLI can check it up front.
    """
    fmt = get(format)
    if fmt.quality is None:
        return None
    low, high, default, _, word = fmt.quality
    if quality is None:
        return default
    if not low <= quality <= high:
        raise ValueError(f"--quality for {fmt.label} is a {word} {low}-{high}, got {quality}")
    return int(quality)
