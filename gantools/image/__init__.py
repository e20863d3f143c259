"""Images on the numpy side: OpenCV layout (``HxW[xC]``, BGR[A], ``uint8``/``uint16``).

Layout of the package:

* :mod:`~gantools.image.codec` - :func:`read_image`, :func:`encode_image`, :func:`write_image`
  (format-independent dispatch; imports OpenCV).
* :mod:`~gantools.image.formats` - one module per format (``png``, ``jpeg``, ``webp``, ``tiff``,
  ``bmp``), each registering its facts with :mod:`~gantools.image.registry`; lookups such as
  :data:`FORMATS`, :func:`format_from_name` and :func:`check_quality` (no OpenCV, no Pillow).
* :mod:`~gantools.image.metadata` - EXIF orientation and ICC fit.
* :mod:`~gantools.image.atomic` - the project's one atomic file writer (:func:`write_atomic`,
  :func:`atomic_path`), also used by run directories, exports and animations.

The names below are loaded on first use, so ``import gantools.image`` (and importing
:mod:`~gantools.image.atomic` or :mod:`~gantools.image.formats`) does not load OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "read_image": "gantools.image.codec",
    "encode_image": "gantools.image.codec",
    "write_image": "gantools.image.codec",
    "image_info": "gantools.image.codec",
    "Decoded": "gantools.image.codec",
    "ImageError": "gantools.image.codec",
    "DEFAULT_MAX_PIXELS": "gantools.image.codec",
    "FORMATS": "gantools.image.formats",
    "format_from_name": "gantools.image.formats",
    "check_quality": "gantools.image.formats",
    "write_atomic": "gantools.image.atomic",
    "atomic_path": "gantools.image.atomic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gantools.image' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
