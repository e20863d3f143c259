"""PNG: magic, chunk-walk completeness check, Pillow header, iCCP/eXIf insertion."""

from __future__ import annotations

import zlib

from gantools.image.registry import Header, Quality, Warn, pillow_header, register_format

MAGIC = b"\x89PNG\r\n\x1a\n"


def accept(prefix: bytes) -> bool:
    """Whether the data starts with the PNG signature."""
    return prefix.startswith(MAGIC)


def complete(data: bytes) -> bool:
    """True if the PNG's chunks run, length by length, up to a whole IEND chunk."""
    pos = 8
    while pos + 12 <= len(data):
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return False


def header(data: bytes) -> Header:
    """Size, mode, ICC and EXIF from the chunks before the pixels."""
    from PIL.PngImagePlugin import PngImageFile

    return pillow_header(PngImageFile, data)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC."""
    crc = zlib.crc32(kind + payload)
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


def insert_metadata(data: bytes, icc: bytes | None, exif: bytes | None, warn: Warn) -> bytes:
    """Insert iCCP and eXIf chunks right after IHDR (both must come before PLTE/IDAT)."""
    if data[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    chunks = b""
    if icc:
        chunks += _chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc))
    if exif:
        chunks += _chunk(b"eXIf", exif)
    return data[:33] + chunks + data[33:]


register_format(
    "png", label="PNG", extensions=(".png",), accept=accept, header=header, complete=complete,
    insert_metadata=insert_metadata,
    quality=Quality(0, 9, 3, "IMWRITE_PNG_COMPRESSION", "compression level"),
)
