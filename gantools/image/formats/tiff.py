"""TIFF: magic (classic and BigTIFF), Pillow header.

OpenCV refuses truncated files and applies the orientation tag itself; TIFF metadata lives in
TIFF tags, so no EXIF block is returned and none is written.
"""

from __future__ import annotations

from gantools.image.registry import Header, pillow_header, register_format


def accept(prefix: bytes) -> bool:
    """Whether the data starts with a little- or big-endian TIFF/BigTIFF signature."""
    return prefix[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def header(data: bytes) -> Header:
    """Size, mode (``CMYK`` matters to the decoder), ICC and EXIF tags of the first page."""
    from PIL.TiffImagePlugin import TiffImageFile

    return pillow_header(TiffImageFile, data)


register_format(
    "tiff", label="TIFF", extensions=(".tif", ".tiff"), aliases=("tif",), accept=accept,
    header=header, oriented_by_decoder=True,
)
