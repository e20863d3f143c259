"""EXIF orientation and ICC profile fit, format-independent.

* EXIF blocks are TIFF-structured bytes starting with ``II*\\0`` or ``MM\\0*`` (what PNG's eXIf
  chunk holds); an ``Exif\\0\\0`` prefix is accepted and removed by :func:`clean_exif`.
* An ICC profile fits pixels when its colour space is ``RGB`` for BGR/BGRA or ``GRAY`` for gray.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

ORIENTATION_TAG = 0x0112


def clean_exif(exif: bytes | None) -> bytes | None:
    """EXIF as a TIFF-structured block (``Exif\\0\\0`` prefix removed), or ``None`` if unusable."""
    if exif and exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    return exif if exif and exif[:4] in (b"II*\0", b"MM\0*") else None


def exif_orientation(exif: bytes) -> tuple[int, int | None]:
    """``(orientation, offset of its value)`` from IFD0 of a clean EXIF block; ``(1, None)`` if absent."""
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind, n, value = struct.unpack_from(order + "HHIH", exif, entry)
            if tag == ORIENTATION_TAG and kind == 3 and n == 1:
                return (value if 1 <= value <= 8 else 1), entry + 8
    except struct.error:
        pass
    return 1, None


def reset_orientation(exif: bytes | None) -> bytes | None:
    """The EXIF block with its orientation value patched to 1 in place (nothing else changes)."""
    if exif is None:
        return None
    _, offset = exif_orientation(exif)
    if offset is None:
        return exif
    return exif[:offset] + (b"\0\1" if exif[:2] == b"MM" else b"\1\0") + exif[offset + 2:]


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so that the pixels are upright."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def icc_space(icc: bytes) -> str:
    """The colour space signature of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"`` ...)."""
    return icc[16:20].decode("latin-1").strip()


def icc_fits(icc: bytes | None, image: np.ndarray) -> bool:
    """Whether an ICC profile describes pixels of ``image``'s layout."""
    if not icc or len(icc) < 128:
        return False
    return icc_space(icc) == ("GRAY" if image.ndim == 2 else "RGB")
