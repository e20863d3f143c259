"""JPEG: magic, segment-walk completeness check, Pillow header, APP1/APP2 insertion."""

from __future__ import annotations

from gantools.image.registry import Header, Quality, Warn, pillow_header, register_format

SEGMENT_MAX = 65_533  # payload bytes of one JPEG marker segment
ICC_CHUNK = SEGMENT_MAX - 14  # minus b"ICC_PROFILE\0" + sequence number + count


def accept(prefix: bytes) -> bool:
    """Whether the data starts with SOI and a marker."""
    return prefix.startswith(b"\xff\xd8\xff")


def complete(data: bytes) -> bool:
    """True if the JPEG's segments are intact up to its first scan and an EOI marker follows it."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker == 0xDA:  # start of scan: entropy-coded data never contains FF D9
            return data.find(b"\xff\xd9", pos + 2) != -1
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return False


def header(data: bytes) -> Header:
    """Size, mode, ICC and EXIF from the segments before the scan."""
    from PIL.JpegImagePlugin import JpegImageFile

    return pillow_header(JpegImageFile, data)


def _segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment (payload at most 65533 bytes)."""
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def insert_metadata(data: bytes, icc: bytes | None, exif: bytes | None, warn: Warn) -> bytes:
    """Insert APP1 (EXIF) and APP2 (ICC) segments after SOI and its JFIF APP0, as libjpeg does."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG stream")
    segments = b""
    if exif and len(exif) + 6 > SEGMENT_MAX:
        warn(f"EXIF block of {len(exif)} bytes is too large for JPEG; not written")
    elif exif:
        segments += _segment(0xE1, b"Exif\0\0" + exif)
    parts = [icc[i:i + ICC_CHUNK] for i in range(0, len(icc), ICC_CHUNK)] if icc else []
    if len(parts) > 255:
        warn(f"ICC profile of {len(icc)} bytes is too large for JPEG; not written")
        parts = []
    for seq, part in enumerate(parts, 1):
        segments += _segment(0xE2, b"ICC_PROFILE\0" + bytes((seq, len(parts))) + part)
    pos = 2
    if data[2:4] == b"\xff\xe0":
        pos += 2 + int.from_bytes(data[4:6], "big")
    return data[:pos] + segments + data[pos:]


register_format(
    "jpeg", label="JPEG", extensions=(".jpg", ".jpeg", ".jpe", ".jfif"), aliases=("jpg",),
    accept=accept, header=header, complete=complete, insert_metadata=insert_metadata,
    quality=Quality(1, 100, 95, "IMWRITE_JPEG_QUALITY"), alpha=False, bits=(8,), max_side=65_500,
)
