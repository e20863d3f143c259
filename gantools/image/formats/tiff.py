"""TIFF: magic (classic and BigTIFF), Pillow header.

OpenCV refuses truncated files and applies the orientation tag itself; TIFF metadata lives in
TIFF tags, so no EXIF block is returned and none is written.
"""

from __future__ import annotations

import struct

from gantools.image.registry import Header, Unsupported, pillow_header, register_format

BITS_PER_SAMPLE_TAG = 258
SAMPLE_FORMAT_TAG = 339
FLOAT_SAMPLES = 3


def accept(prefix: bytes) -> bool:
    """Whether the data starts with a little- or big-endian TIFF/BigTIFF signature."""
    return prefix[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def header(data: bytes) -> Header:
    """Size, mode (``CMYK`` matters to the decoder), ICC and EXIF tags of the first page, and
    the number of pages; :class:`Unsupported` for floating-point samples."""
    from PIL.TiffImagePlugin import TiffImageFile

    if _short_tag(data, SAMPLE_FORMAT_TAG) == FLOAT_SAMPLES:
        bits = _short_tag(data, BITS_PER_SAMPLE_TAG) or ""
        raise Unsupported(f"float{bits} samples are not supported (only 8- and 16-bit images)")
    return pillow_header(TiffImageFile, data)


def _short_tag(data: bytes, tag: int) -> int | None:
    """The first value of SHORT tag ``tag`` on the first page of a classic TIFF (``None``: absent,
    BigTIFF or unreadable; the Pillow parser then judges the file)."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        if struct.unpack_from(order + "H", data, 2)[0] != 42:
            return None
        ifd = struct.unpack_from(order + "I", data, 4)[0]
        for i in range(struct.unpack_from(order + "H", data, ifd)[0]):
            entry = ifd + 2 + 12 * i
            found, kind, count = struct.unpack_from(order + "HHI", data, entry)
            if found == tag and kind == 3:  # SHORT values, inline when they fit in 4 bytes
                at = entry + 8 if count <= 2 else struct.unpack_from(order + "I", data, entry + 8)[0]
                return struct.unpack_from(order + "H", data, at)[0]
    except struct.error:
        return None
    return None


register_format(
    "tiff", label="TIFF", extensions=(".tif", ".tiff"), aliases=("tif",), accept=accept,
    header=header, oriented_by_decoder=True,
)
