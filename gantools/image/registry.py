"""The image format registry: each ``gantools.image.formats`` module declares its facts here.

Pillow's pattern: a format module defines cheap ``accept(prefix)`` / ``complete(data)`` /
``header(data)`` functions and ends with one :func:`register_format` call stating everything
else the codec needs to know (extensions, quality range, alpha and bit-depth support, size
limit). The codec never names a format: it loops over :func:`registered`. Nothing here imports
OpenCV or Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any, Callable, NamedTuple

from gantools.registry import Registry

Warn = Callable[[str], None]


class Header(NamedTuple):
    """What a header parser returns: ``(width, height)``, Pillow mode (or ``None``), ICC, EXIF,
    and the number of frames or pages in the file."""

    size: tuple[int, int]
    mode: str | None
    icc: bytes | None
    exif: bytes | None
    frames: int = 1


class Unsupported(ValueError):
    """Raised by a header parser for a well-formed file the codec cannot take (the message says
    why, e.g. ``"float32 samples are not supported"``), as opposed to a corrupt one."""


class Quality(NamedTuple):
    """An encoder setting: accepted range, default, the ``cv2.IMWRITE_*`` name, and what it is."""

    low: int
    high: int
    default: int
    param: str
    word: str = "quality"


def always_complete(data: bytes) -> bool:
    """For formats whose truncation OpenCV detects itself (TIFF, BMP)."""
    return True


@dataclass(frozen=True)
class ImageFormat:
    """Facts about one format; see :func:`register_format` for the fields."""

    name: str
    label: str
    extensions: tuple[str, ...]
    accept: Callable[[bytes], bool]
    header: Callable[[bytes], Header]
    complete: Callable[[bytes], bool] = always_complete
    insert_metadata: Callable[[bytes, bytes | None, bytes | None, Warn], bytes] | None = None
    quality: Quality | None = None
    alpha: bool = True
    bits: tuple[int, ...] = (8, 16)
    max_side: int | None = None
    aliases: tuple[str, ...] = ()
    oriented_by_decoder: bool = False

    @property
    def extension(self) -> str:
        """The extension written (the first one listed)."""
        return self.extensions[0]


#: the image formats (the project's one :class:`~gantools.registry.Registry` class)
IMAGE_FORMATS: Registry[ImageFormat] = Registry("image format")


def register_format(name: str, **facts: Any) -> ImageFormat:
    """Declare a format; registration order is the order formats are listed in messages.

    ``name`` is the canonical lower-case name. ``facts``: ``label`` (for messages),
    ``extensions`` (lower-case, with dot; the first is written), ``accept(prefix)`` (the magic
    check; ``prefix`` holds at least the first 32 bytes), ``header(data)`` -> :class:`Header`
    without decoding pixels (may raise :class:`Unsupported`, or anything else: the data is then
    corrupt), ``complete(data)``
    (whether the structure is whole), ``insert_metadata(data, icc, exif, warn)`` (ICC/EXIF
    into encoded bytes without re-encoding; ``None``: not written), ``quality``
    (:class:`Quality` or ``None``), ``alpha``, ``bits`` (sample depths the format holds),
    ``max_side``, ``aliases`` (other accepted names) and ``oriented_by_decoder`` (OpenCV applies
    the orientation itself; no EXIF is returned). A second registration of a name is an error
    (:class:`~gantools.registry.RegistrationError`).
    """
    fmt = ImageFormat(name=name, **facts)
    return IMAGE_FORMATS.register(name, fmt, source=f"gantools.image.formats.{name}")


def registered() -> tuple[ImageFormat, ...]:
    """The registered formats, in registration order."""
    return tuple(IMAGE_FORMATS.in_order())


def pillow_header(image_class: Callable[[BytesIO], Any], data: bytes) -> Header:
    """Header read by a Pillow image class (not ``Image.open``: that runs the bomb check)."""
    with image_class(BytesIO(data)) as im:
        frames = getattr(im, "n_frames", 1)
        return Header(im.size, im.mode, im.info.get("icc_profile"), im.info.get("exif"), frames)
