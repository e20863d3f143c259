"""BMP: magic plus a known DIB header size, Pillow header. No alpha, 8-bit, no metadata."""

from __future__ import annotations

from gantools.image.registry import Header, pillow_header, register_format

DIB_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def accept(prefix: bytes) -> bool:
    """Whether the data starts with ``BM`` followed, at byte 14, by a known DIB header size."""
    return prefix[:2] == b"BM" and int.from_bytes(prefix[14:18], "little") in DIB_HEADER_SIZES


def header(data: bytes) -> Header:
    """Size and mode from the file and DIB headers."""
    from PIL.BmpImagePlugin import BmpImageFile

    return pillow_header(BmpImageFile, data)


register_format(
    "bmp", label="BMP", extensions=(".bmp",), accept=accept, header=header, alpha=False, bits=(8,),
)
