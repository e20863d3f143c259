"""Reading, encoding and writing images as OpenCV-style arrays (the plugin contract's layouts).

Pixels are decoded and encoded by OpenCV (``cv2.imdecode``/``cv2.imencode``: file I/O is done
here, so any path Python can open works, unicode included). Everything format-specific (magic
bytes, header parsing, completeness checks, metadata insertion, quality ranges, alpha and
bit-depth support) comes from the registered formats (:mod:`gantools.image.formats`): this
module only loops over them. Pillow is used only where OpenCV cannot help - reading the header
(size, ICC profile, EXIF) before any decoding - and nothing global is changed: Pillow's
decompression-bomb check is bypassed by instantiating the format's image class directly, and
:func:`read_image` applies its own ``max_pixels`` limit instead.

Decisions, stated once:

* The format is detected from the content (magic bytes), never from the file name.
* Every format is decoded with ``cv2.IMREAD_UNCHANGED``: 16-bit stays ``uint16``, gray stays
  ``HxW``; gray+alpha becomes BGRA (gray copied to B, G, R) because the plugin contract has no
  two-channel layout; a palette with transparency becomes BGRA, without it BGR; CMYK becomes BGR.
  Float or 32-bit samples (some TIFFs) are refused.
* EXIF orientation (1-8) is applied so that returned pixels are upright (OpenCV itself already
  does this for TIFF). :attr:`Decoded.exif` then has its orientation reset to 1.
* EXIF and ICC rules: see :mod:`gantools.image.metadata`. TIFF files carry their metadata as
  TIFF tags, so their ``exif`` is ``None``. A CMYK profile is dropped once CMYK pixels are
  converted to BGR.
* Writing goes through the project's one atomic writer, :mod:`gantools.image.atomic`.
* What libpng and libjpeg print to stderr while OpenCV decodes or encodes is dropped
  (:mod:`gantools.image.quiet`): a bad file is reported in gantools' one line.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from gantools.image import formats, metadata
from gantools.image.atomic import read_at_most, write_atomic
from gantools.image.quiet import quiet_libraries
from gantools.image.registry import ImageFormat, Unsupported, Warn
from gantools.plugin import check_image

DEFAULT_MAX_PIXELS = formats.DEFAULT_MAX_PIXELS

# Library noise stays out of the one-line output: Pillow's header parsers warn about odd metadata
# (the codec judges the file itself), OpenCV logs "[ WARN ]" lines of its own, and libpng/libjpeg
# print to fd 2 while OpenCV decodes or encodes (dropped by quiet_libraries).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")
warnings.filterwarnings("ignore", category=UserWarning, module=r"gantools\.image(\.|$)")


def _opencv_errors_only() -> None:
    """OpenCV logs errors only (``cv2.utils.logging`` in OpenCV 5, ``cv2.setLogLevel`` in 4.x)."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if hasattr(log, "setLogLevel"):
        log.setLogLevel(log.LOG_LEVEL_ERROR)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(2)


_opencv_errors_only()


class ImageError(ValueError):
    """One-line, user-facing message that names the file and the problem."""


@dataclass
class Decoded:
    """An image read by :func:`read_image`.

    ``image`` is ``HxW``, ``HxWx3`` BGR or ``HxWx4`` BGRA, ``uint8`` or ``uint16``, upright
    (EXIF orientation applied). ``name`` is the path as given, ``"<stdin>"``, ``"<bytes>"`` or
    the caller's name. ``format`` is a key of :data:`~gantools.image.formats.FORMATS`, detected
    from the content. ``icc`` is the ICC profile (only if it matches the pixels); ``exif`` the
    TIFF-structured EXIF block with orientation reset to 1, or ``None``. ``frames`` is the
    number of frames or pages in the file (only the first is decoded).
    """

    image: np.ndarray
    name: str
    format: str
    icc: bytes | None
    exif: bytes | None
    frames: int = 1


def image_info(image: np.ndarray) -> str:
    """Short description for messages, e.g. ``"640x480 BGR uint8"``."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    layout = {1: "gray", 3: "BGR", 4: "BGRA"}.get(channels, f"{channels}-channel")
    return f"{image.shape[1]}x{image.shape[0]} {layout} {image.dtype}"


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
    data, name = _load(source, name, max_pixels)
    if not data:
        raise _error(name, "empty file")
    fmt = formats.sniff(data)
    if fmt is None:
        raise _error(name, f"not a recognised image ({_unknown_hint(data)})")
    corrupt = _error(name, f"truncated or corrupt {fmt.label} data")
    try:
        (width, height), mode, icc, exif, frames = fmt.header(data)
    except Unsupported as exc:
        raise _error(name, str(exc)) from None
    except Exception:  # any failure of a header parser means the header is unusable
        raise corrupt from None
    _check_size(name, width, height, max_pixels)
    if not fmt.complete(data):  # older OpenCV decodes truncated files partially
        raise corrupt
    image = _decode(data, name, mode, corrupt)
    if image.shape[:2] not in ((height, width), (width, height)):
        raise corrupt
    exif = None if fmt.oriented_by_decoder else metadata.clean_exif(exif)
    if exif:
        image = metadata.orient(image, metadata.exif_orientation(exif)[0])
    icc = icc if metadata.icc_fits(icc, image) else None
    return Decoded(image, name, fmt.name, icc, metadata.reset_orientation(exif), frames)


def _error(name: str, problem: str) -> ImageError:
    """An ImageError on one line: a name with control characters is shown escaped."""
    shown = name if name.isprintable() else repr(name)[1:-1]
    return ImageError(f"{shown}: {problem}")


def byte_limit(max_pixels: int | None) -> int:
    """The most bytes read for one image: what ``max_pixels`` (else OpenCV's limit) of 16-bit
    BGRA could take uncompressed, plus 64 MB for metadata and container overhead."""
    pixels = max_pixels if max_pixels is not None else int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    return pixels * 8 + (64 << 20)


def _read_stream(stream: BinaryIO, name: str, max_pixels: int | None) -> bytes:
    """The bytes of one image from ``stream``: reading stops after the first KB when that is not
    an image, and past :func:`byte_limit` (an :class:`ImageError`), so ``/dev/zero`` cannot
    exhaust memory."""
    head = stream.read(1024)
    if len(head) < 1024 or formats.sniff(head) is None:
        return head
    return head + read_limited(stream, name, max_pixels, already=len(head))


def read_limited(stream: BinaryIO, name: str, max_pixels: int | None, already: int = 0) -> bytes:
    """The rest of ``stream``, at most :func:`byte_limit` minus ``already`` bytes read before;
    :class:`ImageError` past that (so ``/dev/zero`` cannot exhaust memory)."""
    limit = byte_limit(max_pixels)
    rest = read_at_most(stream, limit - already)
    if rest is None:
        raise _error(name, f"more than {limit >> 20} MB, larger than an image within the pixel limit "
                           "(raise it with --max-pixels)")
    return rest


def _load(source: str | os.PathLike | bytes, name: str | None, max_pixels: int | None) -> tuple[bytes, str]:
    """Return the raw bytes of ``source`` and the name to report."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    path = os.fsdecode(source)
    if path == "-":
        name = name or "<stdin>"
        return _read_stream(sys.stdin.buffer, name, max_pixels), name
    name = name or path
    if os.path.isdir(path):
        raise _error(name, "is a directory, not an image file")
    try:
        with open(path, "rb") as f:
            return _read_stream(f, name, max_pixels), name
    except FileNotFoundError:
        raise _error(name, "file not found") from None
    except OSError as exc:
        raise _error(name, f"cannot read: {exc.strerror or exc}") from None


#: ``ftyp`` major brands of HEIF/AVIF still images (any other brand is taken as video: mp4, mov, 3gp)
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"})


def _unknown_hint(data: bytes) -> str:
    """What unrecognised data looks like, for the error message."""
    expected = f"expected {formats.labels()}"
    known = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"%PDF": "PDF", b"\xff\x0a": "JPEG XL"}
    for magic, label in known.items():
        if data.startswith(magic):
            return f"{label} is not supported; {expected}"
    if data[4:8] == b"ftyp":  # an ISO media file: HEIF/AVIF stills, or MP4/MOV video
        if data[8:12] in HEIF_BRANDS:
            return f"HEIF/AVIF is not supported; {expected}"
        return "a video with an image file name; give it its video extension (.mp4, .mkv, ...) to run it as a video"
    if data.startswith(b"\x1a\x45\xdf\xa3") or (data.startswith(b"RIFF") and data[8:12] == b"AVI "):
        return "a video with an image file name; give it its video extension (.mp4, .mkv, ...) to run it as a video"  # Matroska/WebM, AVI
    head = data[:1024]
    if b"\0" not in head:
        with suppress(UnicodeDecodeError):
            head.decode("utf-8")
            return f"looks like text; {expected}"
    return expected


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


def _decode(data: bytes, name: str, mode: str | None, corrupt: ImageError) -> np.ndarray:
    """Decode with OpenCV and bring the result to the contract's layouts."""
    try:
        with quiet_libraries():
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
    """Encode an upright contract array as ``format`` (a ``FORMATS`` key; ``jpg``/``tif`` too).

    ``quality``: see :func:`~gantools.image.formats.check_quality`. JPEG and BMP have no alpha:
    a BGRA image that is not fully opaque is composited over ``background`` (RGB, 8-bit) with
    one ``warn``; a fully opaque alpha is dropped silently. JPEG, WebP and BMP are 8-bit: 16-bit
    samples are divided by 257 with rounding (the exact inverse of 8->16 expansion) with a
    ``warn``. ``icc`` and ``exif`` are written into JPEG (APP2/APP1) and PNG (iCCP/eXIf) without
    re-encoding; the EXIF orientation is written as 1; WebP, TIFF and BMP get no metadata.
    Raises ``ValueError`` for bad arguments and :class:`ImageError` when the format cannot hold
    the image.
    """
    fmt = formats.get(format)
    params = _params(fmt, formats.check_quality(fmt.name, quality))
    check_image(image)
    say = warn or (lambda message: None)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not fmt.alpha and image.ndim == 3 and image.shape[2] == 4:
        image = _composite(image, background, fmt.label, say)
    if 16 not in fmt.bits and image.dtype == np.uint16:
        say(f"16-bit image reduced to 8 bits for {fmt.label}")
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if fmt.max_side and max(image.shape[:2]) > fmt.max_side:
        too_large = f"at most {fmt.max_side} pixels a side"
        raise ImageError(f"cannot encode {image_info(image)} as {fmt.label}: {too_large}")
    try:
        with quiet_libraries():
            ok, buf = cv2.imencode(fmt.extension, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"cannot encode {image_info(image)} as {fmt.label}")
    return _add_metadata(buf.tobytes(), fmt, image, icc, exif, say)


def _params(fmt: ImageFormat, quality: int | None) -> list[int]:
    """``cv2.imencode`` parameters for a checked quality."""
    if fmt.quality is None or quality is None:
        return []
    return [getattr(cv2, fmt.quality.param), quality]


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
    data: bytes, fmt: ImageFormat, image: np.ndarray, icc: bytes | None, exif: bytes | None, say: Warn
) -> bytes:
    """Put ICC and EXIF into encoded bytes of a format that holds them; others are unchanged."""
    if fmt.insert_metadata is None or not (icc or exif):
        return data
    if icc and not metadata.icc_fits(icc, image):
        space = metadata.icc_space(icc) or "unreadable"
        say(f"ICC profile ({space}) does not fit a {image_info(image)} image; not written")
        icc = None
    clean = metadata.reset_orientation(metadata.clean_exif(exif))
    if exif and clean is None:
        say("EXIF block not understood (expected TIFF structure); not written")
    return fmt.insert_metadata(data, icc, clean, say)


# -- writing ------------------------------------------------------------------------------------
def write_image(dest: str | os.PathLike, data: bytes) -> None:
    """Write encoded bytes to ``dest``, or to ``sys.stdout.buffer`` (flushed) if it is ``"-"``.

    The write is atomic (:func:`gantools.image.atomic.write_atomic`: temporary ``.<name>.*.part``
    file renamed into place, removed on any failure; missing parents created; a replaced file
    keeps its permissions, a new one gets ``0o666 & ~umask``). Failures raise
    :class:`ImageError` ``"<dest>: cannot write: <reason>"``.
    """
    if os.fsdecode(dest) == "-":
        _write_stdout(data)
        return
    try:
        write_atomic(dest, data)
    except OSError as exc:
        blocker = _file_in_the_way(Path(dest).parent)
        reason = f"{blocker} is a file, not a folder" if blocker else exc.strerror or str(exc)
        raise _error(os.fsdecode(dest), f"cannot write: {reason}") from None


def _write_stdout(data: bytes) -> None:
    """All of ``data`` to stdout, flushed; :class:`ImageError` if stdout is closed or its reader
    went away (then stdout is pointed at the null device, so that exit stays quiet)."""
    if sys.stdout is None:
        raise ImageError("cannot write to stdout: it is closed")
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        with suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        raise ImageError("cannot write to stdout: broken pipe (the reader closed early)") from None
    except OSError as exc:
        raise ImageError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) if it is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None
