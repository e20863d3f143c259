"""WebP: RIFF magic, RIFF-length completeness check, own header parser (ICCP/EXIF chunks).

Metadata is read but not written (``cv2.imencode`` output is not re-muxed).
"""

from __future__ import annotations

import struct

from gantools.image.registry import Header, Quality, register_format


def accept(prefix: bytes) -> bool:
    """Whether the data is a RIFF container of type WEBP."""
    return prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP"


def complete(data: bytes) -> bool:
    """True if the data is as long as its RIFF header says."""
    return len(data) >= 8 + int.from_bytes(data[4:8], "little")


def header(data: bytes) -> Header:
    """Canvas size, ICC, EXIF and the number of animation frames from the RIFF chunks.

    Not Pillow: its WebP reader allocates the whole canvas when it opens a file.
    """
    view, pos, size, icc, exif, frames = memoryview(data), 12, None, None, None, 0
    while pos + 8 <= len(data):
        kind, n = bytes(view[pos:pos + 4]), int.from_bytes(view[pos + 4:pos + 8], "little")
        body = view[pos + 8:pos + 8 + n]
        if kind == b"VP8X":
            size = 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
        elif kind == b"VP8 " and size is None and bytes(body[3:6]) == b"\x9d\x01\x2a":
            w, h = struct.unpack_from("<HH", body, 6)
            size = w & 0x3FFF, h & 0x3FFF
        elif kind == b"VP8L" and size is None and body[0] == 0x2F:
            bits = int.from_bytes(body[1:5], "little")
            size = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif kind == b"ANMF":
            frames += 1
        elif kind in (b"ICCP", b"EXIF"):
            icc, exif = (bytes(body), exif) if kind == b"ICCP" else (icc, bytes(body))
        pos += 8 + n + (n & 1)
    if size is None or min(size) < 1:
        raise ValueError("no WebP image chunk")
    return Header(size, None, icc, exif, max(1, frames))


register_format(
    "webp", label="WebP", extensions=(".webp",), accept=accept, header=header, complete=complete,
    quality=Quality(1, 100, 95, "IMWRITE_WEBP_QUALITY"), bits=(8,), max_side=16_383,
)
