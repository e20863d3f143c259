"""Reading and writing image files as OpenCV-style arrays (the plugin contract's layouts).

Pixels are decoded and encoded by OpenCV (``cv2.imdecode``/``cv2.imencode``: file I/O is done
here, so any path Python can open works, unicode included). Pillow is used only where OpenCV
cannot help: reading the header (size, ICC profile, EXIF) before any decoding. Nothing global is
changed: Pillow's decompression-bomb check is bypassed by instantiating the format's image class
directly (only ``Image.open`` runs that check), and :func:`read_image` applies its own
``max_pixels`` limit instead.

Decisions, stated once:

* The format is detected from the content (magic bytes), never from the file name.
* Every format is decoded with ``cv2.IMREAD_UNCHANGED``: 16-bit stays ``uint16``, gray stays
  ``HxW``; gray+alpha becomes BGRA (gray copied to B, G, R) because the plugin contract has no
  two-channel layout; a palette with transparency becomes BGRA, without it BGR; CMYK becomes BGR.
  Float or 32-bit samples (some TIFFs) are refused.
* EXIF orientation (1-8) is applied so that returned pixels are upright (OpenCV itself already
  does this for TIFF). :attr:`Decoded.exif` then has its orientation reset to 1.
* EXIF blocks are TIFF-structured bytes starting with ``II*\\0`` or ``MM\\0*`` (what PNG's eXIf
  chunk holds); an ``Exif\\0\\0`` prefix given to :func:`encode_image` is accepted and removed.
  TIFF files carry their metadata as TIFF tags, so their ``exif`` is ``None``.
* An ICC profile is kept only while it fits the pixels (``RGB`` profile for BGR/BGRA, ``GRAY``
  for gray): a CMYK profile is dropped once CMYK pixels are converted to BGR.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import tempfile
import zlib
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from gantools.plugin import check_image

DEFAULT_MAX_PIXELS = 89_478_485
#: Canonical format name -> extension written.
FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tif", "bmp": ".bmp"}
_LABELS = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "tiff": "TIFF", "bmp": "BMP"}
_SUFFIXES = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
    ".webp": "webp", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp",
}
_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
_NO_ALPHA = ("jpeg", "bmp")
_EIGHT_BIT_ONLY = ("jpeg", "webp", "bmp")
_MAX_SIDE = {"jpeg": 65_500, "webp": 16_383}
_QUALITY = {"jpeg": (1, 100, 95), "webp": (1, 100, 95), "png": (0, 9, 3)}  # min, max, default
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_ORIENTATION_TAG = 0x0112
_JPEG_SEGMENT_MAX = 65_533  # payload bytes of one JPEG marker segment
_ICC_CHUNK = _JPEG_SEGMENT_MAX - 14  # minus b"ICC_PROFILE\0" + sequence number + count
Warn = Callable[[str], None]


class ImageError(ValueError):
    """One-line, user-facing message that names the file and the problem."""


@dataclass
class Decoded:
    """An image read by :func:`read_image`.

    ``image`` is ``HxW``, ``HxWx3`` BGR or ``HxWx4`` BGRA, ``uint8`` or ``uint16``, upright
    (EXIF orientation applied). ``name`` is the path as given, ``"<stdin>"``, ``"<bytes>"`` or
    the caller's name. ``format`` is a key of :data:`FORMATS`, detected from the content.
    ``icc`` is the ICC profile (only if it matches the pixels); ``exif`` the TIFF-structured EXIF
    block with orientation reset to 1, or ``None``.
    """

    image: np.ndarray
    name: str
    format: str
    icc: bytes | None
    exif: bytes | None


# -- small public helpers ---------------------------------------------------------------------
def format_from_name(path: str | os.PathLike) -> str | None:
    """Canonical format for a file name's extension (``".JPG"`` -> ``"jpeg"``), else ``None``."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def image_info(image: np.ndarray) -> str:
    """Short description for messages, e.g. ``"640x480 BGR uint8"``."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    layout = {1: "gray", 3: "BGR", 4: "BGRA"}.get(channels, f"{channels}-channel")
    return f"{image.shape[1]}x{image.shape[0]} {layout} {image.dtype}"


def check_quality(format: str, quality: int | None) -> int | None:
    """The quality ``encode_image`` will use for ``format`` (``None`` where it has none).

    JPEG/WebP take 1-100 (default 95), PNG a compression level 0-9 (default 3); TIFF and BMP
    ignore it. Raises ``ValueError`` for an out-of-range value, so a CLI can check it up front.
    """
    fmt = _canonical(format)
    if fmt not in _QUALITY:
        return None
    low, high, default = _QUALITY[fmt]
    if quality is None:
        return default
    if not low <= quality <= high:
        what = "compression level" if fmt == "png" else "quality"
        raise ValueError(f"--quality for {_LABELS[fmt]} is a {what} {low}-{high}, got {quality}")
    return int(quality)


# -- reading ------------------------------------------------------------------------------------
def read_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Decoded:
    """Read and decode one image from a path, raw bytes, or ``"-"`` (all of ``sys.stdin.buffer``).

    Checks, in order, each raising :class:`ImageError` ``"<name>: <problem>"``: the file can be
    read (exists, is not a directory); it is not empty; its content is a PNG, JPEG, WebP, TIFF or
    BMP; the size in its header is at most ``max_pixels`` (``None``: no limit) - checked before
    anything is decoded; the data is complete and decodes. The source is never modified.
    """
    data, name = _load(source, name)
    if not data:
        raise _error(name, "empty file")
    fmt = _sniff(data)
    if fmt is None:
        raise _error(name, f"not a recognised image ({_unknown_hint(data)})")
    corrupt = _error(name, f"truncated or corrupt {_LABELS[fmt]} data")
    try:
        (width, height), mode, icc, exif = _header(data, fmt)
    except Exception:  # any failure of a header parser means the header is unusable
        raise corrupt from None
    _check_size(name, width, height, max_pixels)
    if not _complete(data, fmt):
        raise corrupt
    image = _decode(data, name, mode, corrupt)
    if image.shape[:2] not in ((height, width), (width, height)):
        raise corrupt
    exif = _clean_exif(exif) if fmt != "tiff" else None  # OpenCV orients TIFF pixels itself
    if exif:
        image = _orient(image, _exif_orientation(exif)[0])
    return Decoded(image, name, fmt, icc if _icc_fits(icc, image) else None, _reset_orientation(exif))


def _error(name: str, problem: str) -> ImageError:
    """An ImageError on one line: a name with control characters is shown escaped."""
    shown = name if name.isprintable() else repr(name)[1:-1]
    return ImageError(f"{shown}: {problem}")


def _load(source: str | os.PathLike | bytes, name: str | None) -> tuple[bytes, str]:
    """Return the raw bytes of ``source`` and the name to report."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    path = os.fsdecode(source)
    if path == "-":
        return sys.stdin.buffer.read(), name or "<stdin>"
    name = name or path
    if os.path.isdir(path):
        raise _error(name, "is a directory, not an image file")
    try:
        with open(path, "rb") as f:
            return f.read(), name
    except FileNotFoundError:
        raise _error(name, "file not found") from None
    except OSError as exc:
        raise _error(name, f"cannot read: {exc.strerror or exc}") from None


def _sniff(data: bytes) -> str | None:
    """Canonical format from the first bytes of ``data``, or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "tiff"
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    return None


def _unknown_hint(data: bytes) -> str:
    """What unrecognised data looks like, for the error message."""
    expected = "expected PNG, JPEG, WebP, TIFF or BMP"
    known = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"%PDF": "PDF", b"\xff\x0a": "JPEG XL"}
    for magic, label in known.items():
        if data.startswith(magic):
            return f"{label} is not supported; {expected}"
    if data[4:8] == b"ftyp":
        return f"HEIF/AVIF is not supported; {expected}"
    head = data[:1024]
    if b"\0" not in head:
        with suppress(UnicodeDecodeError):
            head.decode("utf-8")
            return f"looks like text; {expected}"
    return expected


def _header(data: bytes, fmt: str) -> tuple[tuple[int, int], str | None, bytes | None, bytes | None]:
    """``((width, height), mode, icc, exif)`` read from the header without decoding pixels."""
    if fmt == "webp":  # Pillow's WebP reader allocates the whole canvas when it opens a file
        return _webp_header(data)
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

    kind = {
        "png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile,
        "tiff": TiffImagePlugin.TiffImageFile, "bmp": BmpImagePlugin.BmpImageFile,
    }[fmt]
    # The class, not Image.open: this parses the header only and skips Pillow's bomb check.
    with kind(BytesIO(data)) as im:
        return im.size, im.mode, im.info.get("icc_profile"), im.info.get("exif")


def _webp_header(data: bytes) -> tuple[tuple[int, int], None, bytes | None, bytes | None]:
    """Canvas size, ICC and EXIF of a WebP file, from its RIFF chunks."""
    view, pos, size, icc, exif = memoryview(data), 12, None, None, None
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
        elif kind in (b"ICCP", b"EXIF"):
            icc, exif = (bytes(body), exif) if kind == b"ICCP" else (icc, bytes(body))
        pos += 8 + n + (n & 1)
    if size is None or min(size) < 1:
        raise ValueError("no WebP image chunk")
    return size, None, icc, exif


def _check_size(name: str, width: int, height: int, max_pixels: int | None) -> None:
    """Refuse images above ``max_pixels`` or OpenCV's own decoding limit, before decoding."""
    pixels = width * height
    where = f"image is {width}x{height} = {pixels} pixels, above"
    if max_pixels is not None and pixels > max_pixels:
        raise _error(name, f"{where} the limit of {max_pixels} (raise it with --max-pixels)")
    limit = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    if pixels > limit:
        hint = "set OPENCV_IO_MAX_IMAGE_PIXELS"
        raise _error(name, f"{where} OpenCV's decoding limit of {limit} ({hint})")


def _complete(data: bytes, fmt: str) -> bool:
    """Whether the file's structure is whole (older OpenCV decodes truncated files partially)."""
    if fmt == "png":
        return _png_complete(data)
    if fmt == "jpeg":
        return _jpeg_complete(data)
    if fmt == "webp":
        return len(data) >= 8 + int.from_bytes(data[4:8], "little")
    return True  # OpenCV refuses truncated TIFF and BMP itself


def _png_complete(data: bytes) -> bool:
    """True if the PNG's chunks run, length by length, up to a whole IEND chunk."""
    pos = 8
    while pos + 12 <= len(data):
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return False


def _jpeg_complete(data: bytes) -> bool:
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


def _decode(data: bytes, name: str, mode: str | None, corrupt: ImageError) -> np.ndarray:
    """Decode with OpenCV and bring the result to the contract's layouts."""
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise corrupt
    if image.dtype not in (np.uint8, np.uint16):
        raise _error(name, f"{image.dtype} samples are not supported (only 8- and 16-bit images)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        gray, alpha = image[:, :, 0], image[:, :, 1]
        image = np.dstack([gray, gray, gray, alpha])
    elif image.ndim == 3 and image.shape[2] == 4 and mode == "CMYK":  # TIFF: RGBA from CMYK
        image = np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise _error(name, f"{image.shape[2]}-channel images are not supported")
    return image


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
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


# -- metadata helpers -------------------------------------------------------------------------
def _clean_exif(exif: bytes | None) -> bytes | None:
    """EXIF as a TIFF-structured block (``Exif\\0\\0`` prefix removed), or ``None`` if unusable."""
    if exif and exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    return exif if exif and exif[:4] in (b"II*\0", b"MM\0*") else None


def _exif_orientation(exif: bytes) -> tuple[int, int | None]:
    """``(orientation, offset of its value)`` from IFD0 of a clean EXIF block; ``(1, None)`` if absent."""
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind, n, value = struct.unpack_from(order + "HHIH", exif, entry)
            if tag == _ORIENTATION_TAG and kind == 3 and n == 1:
                return (value if 1 <= value <= 8 else 1), entry + 8
    except struct.error:
        pass
    return 1, None


def _reset_orientation(exif: bytes | None) -> bytes | None:
    """The EXIF block with its orientation value patched to 1 in place (nothing else changes)."""
    if exif is None:
        return None
    _, offset = _exif_orientation(exif)
    if offset is None:
        return exif
    return exif[:offset] + (b"\0\1" if exif[:2] == b"MM" else b"\1\0") + exif[offset + 2:]


def _icc_space(icc: bytes) -> str:
    """The colour space signature of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"`` ...)."""
    return icc[16:20].decode("latin-1").strip()


def _icc_fits(icc: bytes | None, image: np.ndarray) -> bool:
    """Whether an ICC profile describes pixels of ``image``'s layout."""
    if not icc or len(icc) < 128:
        return False
    return _icc_space(icc) == ("GRAY" if image.ndim == 2 else "RGB")


# -- encoding -----------------------------------------------------------------------------------
def encode_image(
    image: np.ndarray,
    format: str,
    *,
    quality: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    icc: bytes | None = None,
    exif: bytes | None = None,
    warn: Warn | None = None,
) -> bytes:
    """Encode an upright contract array as ``format`` (a :data:`FORMATS` key; ``jpg``/``tif`` too).

    ``quality``: see :func:`check_quality`. JPEG and BMP have no alpha: a BGRA image that is not
    fully opaque is composited over ``background`` (RGB, 8-bit) with one ``warn``; a fully opaque
    alpha is dropped silently. JPEG, WebP and BMP are 8-bit: 16-bit samples are divided by 257
    with rounding (the exact inverse of 8->16 expansion) with a ``warn``. ``icc`` and ``exif``
    are written into JPEG (APP2/APP1) and PNG (iCCP/eXIf) without re-encoding; the EXIF
    orientation is written as 1; WebP, TIFF and BMP get no metadata. Raises ``ValueError`` for
    bad arguments and :class:`ImageError` when the format cannot hold the image.
    """
    fmt = _canonical(format)
    params = _params(fmt, check_quality(fmt, quality))
    check_image(image)
    say = warn or (lambda message: None)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if fmt in _NO_ALPHA and image.ndim == 3 and image.shape[2] == 4:
        image = _composite(image, background, _LABELS[fmt], say)
    if fmt in _EIGHT_BIT_ONLY and image.dtype == np.uint16:
        say(f"16-bit image reduced to 8 bits for {_LABELS[fmt]}")
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    side = _MAX_SIDE.get(fmt)
    if side and max(image.shape[:2]) > side:
        too_large = f"cannot encode {image_info(image)} as {_LABELS[fmt]}: at most {side} pixels a side"
        raise ImageError(too_large)
    try:
        ok, buf = cv2.imencode(FORMATS[fmt], image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"cannot encode {image_info(image)} as {_LABELS[fmt]}")
    return _add_metadata(buf.tobytes(), fmt, image, icc, exif, say)


def _canonical(format: str) -> str:
    """Canonical format name; ``ValueError`` listing the choices if unknown."""
    fmt = _ALIASES.get(format.lower(), format.lower())
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {format!r} (choose from {', '.join(FORMATS)})")
    return fmt


def _params(fmt: str, quality: int | None) -> list[int]:
    """``cv2.imencode`` parameters for a checked quality."""
    flag = {
        "jpeg": cv2.IMWRITE_JPEG_QUALITY,
        "webp": cv2.IMWRITE_WEBP_QUALITY,
        "png": cv2.IMWRITE_PNG_COMPRESSION,
    }
    return [flag[fmt], quality] if quality is not None else []


def _composite(image: np.ndarray, background: tuple[int, int, int], label: str, say: Warn) -> np.ndarray:
    """BGRA -> BGR over an RGB ``background``; warns unless the alpha is fully opaque."""
    if len(background) != 3 or not all(0 <= int(v) <= 255 for v in background):
        raise ValueError(f"background must be three values 0-255 (R, G, B), got {background!r}")
    maxval = np.iinfo(image.dtype).max
    color, alpha = image[:, :, :3], image[:, :, 3:]
    if alpha.min() == maxval:
        return np.ascontiguousarray(color)
    say(f"alpha composited on {_colour_name(background)} background for {label}")
    weight = alpha.astype(np.float32) / maxval
    under = np.array(background[::-1], np.float32) * (maxval / 255)
    return np.rint(color * weight + under * (1 - weight)).astype(image.dtype)


def _colour_name(rgb: tuple[int, int, int]) -> str:
    """``"white"``, ``"black"`` or ``"#rrggbb"``."""
    names = {(255, 255, 255): "white", (0, 0, 0): "black"}
    return names.get(tuple(int(v) for v in rgb), "#" + "".join(f"{int(v):02x}" for v in rgb))


def _add_metadata(
    data: bytes, fmt: str, image: np.ndarray, icc: bytes | None, exif: bytes | None, say: Warn
) -> bytes:
    """Put ICC and EXIF into encoded JPEG/PNG bytes; other formats are returned unchanged."""
    if fmt not in ("jpeg", "png") or not (icc or exif):
        return data
    if icc and not _icc_fits(icc, image):
        space = _icc_space(icc) or "unreadable"
        say(f"ICC profile ({space}) does not fit a {image_info(image)} image; not written")
        icc = None
    clean = _reset_orientation(_clean_exif(exif))
    if exif and clean is None:
        say("EXIF block not understood (expected TIFF structure); not written")
    if fmt == "png":
        return _png_insert(data, icc, clean)
    return _jpeg_insert(data, icc, clean, say)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC."""
    crc = zlib.crc32(kind + payload)
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


def _png_insert(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP and eXIf chunks right after IHDR (both must come before PLTE/IDAT)."""
    if data[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    chunks = b""
    if icc:
        chunks += _png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc))
    if exif:
        chunks += _png_chunk(b"eXIf", exif)
    return data[:33] + chunks + data[33:]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment (payload at most 65533 bytes)."""
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _jpeg_insert(data: bytes, icc: bytes | None, exif: bytes | None, say: Warn) -> bytes:
    """Insert APP1 (EXIF) and APP2 (ICC) segments after SOI and its JFIF APP0, as libjpeg does."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG stream")
    segments = b""
    if exif and len(exif) + 6 > _JPEG_SEGMENT_MAX:
        say(f"EXIF block of {len(exif)} bytes is too large for JPEG; not written")
    elif exif:
        segments += _jpeg_segment(0xE1, b"Exif\0\0" + exif)
    parts = [icc[i:i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)] if icc else []
    if len(parts) > 255:
        say(f"ICC profile of {len(icc)} bytes is too large for JPEG; not written")
        parts = []
    for seq, part in enumerate(parts, 1):
        segments += _jpeg_segment(0xE2, b"ICC_PROFILE\0" + bytes((seq, len(parts))) + part)
    pos = 2
    if data[2:4] == b"\xff\xe0":
        pos += 2 + int.from_bytes(data[4:6], "big")
    return data[:pos] + segments + data[pos:]


# -- writing ------------------------------------------------------------------------------------
def write_image(dest: str | os.PathLike, data: bytes) -> None:
    """Write encoded bytes to ``dest``, or to ``sys.stdout.buffer`` (flushed) if it is ``"-"``.

    The write is atomic: a temporary ``.<name>.*.part`` file in the target folder is written,
    fsynced and renamed over ``dest``, and removed on any failure, ``KeyboardInterrupt``
    included. Missing parent folders are created. A replaced file keeps its permissions; a new
    one gets the usual ``0o666 & ~umask``. Failures raise :class:`ImageError`
    ``"<dest>: cannot write: <reason>"``.
    """
    if os.fsdecode(dest) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path, temp = Path(dest), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, _file_mode(path))
        os.replace(temp, path)
        temp = None
        _sync_dir(path.parent)
    except OSError as exc:
        blocker = _file_in_the_way(path.parent)
        reason = f"{blocker} is a file, not a folder" if blocker else exc.strerror or str(exc)
        raise _error(os.fsdecode(dest), f"cannot write: {reason}") from None
    finally:
        if temp is not None:
            with suppress(OSError):
                os.unlink(temp)


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) if it is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _file_mode(path: Path) -> int:
    """Permissions for the written file: those of the file it replaces, else ``0o666 & ~umask``."""
    with suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~_umask()


@cache
def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race other threads)."""
    with suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _sync_dir(folder: Path) -> None:
    """fsync a folder so that a rename in it survives a crash (POSIX; best effort)."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
