"""Synthetic test images and hand-built image files (no files from outside the tests).

Arrays follow the OpenCV layout (BGR/BGRA); helpers that go through Pillow say so and take RGB.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms


def gradient(h: int = 12, w: int = 16, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth image whose every channel differs (``channels`` 1 gives ``HxW``)."""
    maxval = np.iinfo(dtype).max
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * (c + 1) + y * (3 - c % 3)) / (w * (c + 1) + h * 3) for c in range(channels)]
    arr = np.rint(np.stack(planes, axis=2) * maxval).astype(dtype)
    return arr[:, :, 0] if channels == 1 else arr


def noise(h: int = 12, w: int = 16, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """Uniform random samples over the dtype's whole range."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def checker(h: int = 12, w: int = 16, cell: int = 4) -> np.ndarray:
    """A gray 0/255 checkerboard."""
    y, x = np.mgrid[0:h, 0:w]
    return (((y // cell + x // cell) % 2) * 255).astype(np.uint8)


def pil_bytes(image: Image.Image | np.ndarray, fmt: str, **save) -> bytes:
    """Encode with Pillow (arrays are taken as Pillow sees them: RGB order)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, fmt, **save)
    return buf.getvalue()


def exif_block(orientation: int | None = None, make: str = "gantools-test") -> bytes:
    """A TIFF-structured EXIF block (no ``Exif\\0\\0`` prefix) with a Make tag."""
    exif = Image.Exif()
    exif[0x010F] = make
    if orientation is not None:
        exif[0x0112] = orientation
    data = exif.tobytes()
    return data[6:] if data.startswith(b"Exif\0\0") else data


def orientation_of(exif: bytes) -> int | None:
    """Orientation tag read back by Pillow from a TIFF-structured EXIF block."""
    parsed = Image.Exif()
    parsed.load(b"Exif\0\0" + exif)
    return parsed.get(0x0112)


def srgb_icc() -> bytes:
    """A real sRGB ICC profile made by LittleCMS."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def fake_icc(space: bytes, size: int = 128) -> bytes:
    """Bytes shaped like an ICC profile header for colour space ``space`` (e.g. ``b"CMYK"``)."""
    head = size.to_bytes(4, "big") + b"lcms" + b"\x02\x10\0\0" + b"prtr" + space.ljust(4) + b"Lab "
    return head.ljust(size, b"\0")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR claims ``width x height`` RGB, followed by a tiny IDAT and IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) + png_chunk(b"IEND", b"")
    )


def png_chunk_types(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, in order."""
    pos, kinds = 8, []
    while pos + 8 <= len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + n
    return kinds


def jpeg_markers(data: bytes) -> list[int]:
    """Marker codes of a JPEG up to and including its first SOS."""
    pos, markers = 2, [0xD8]
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


def training_images(folder, n: int = 4, size: int = 48):
    """``n`` blurred-noise PNGs of ``size`` x ``size + 8`` in ``folder`` (created); returns it."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((size, size + 8, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return folder
