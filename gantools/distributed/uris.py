"""Inputs given as URIs (``s3://bucket/photos/``, ``gs://...``, ``file:///data/a.png``): whatever
``pyarrow.fs`` understands, listed with it and read by Ray's binary-file reader.

A URI naming a file is an input as it is; a URI naming a folder contributes its image files (the
top level, or the whole tree with ``recursive``; hidden names skipped), each keeping its path
relative to that folder under ``-o`` as a local folder input does. Names and formats then follow
:mod:`gantools.batch_plan` like any other input.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from gantools.batch_plan import Inputs, Source
from gantools.image import format_from_name

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(arg: str) -> bool:
    """Whether an input argument is a URI (``scheme://...``) rather than a local path."""
    return bool(_SCHEME.match(arg))


def _image_name(name: str) -> bool:
    return not name.startswith(".") and format_from_name(name) is not None


def add_uri_sources(found: Inputs, args: list[str], *, recursive: bool) -> None:
    """Append the sources of URI ``args`` to ``found`` (a URI matching nothing is ``missing``)."""
    if not args:
        return
    from pyarrow import fs

    for uri in args:
        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.File:
            found.sources.append(Source(uri, uri))
        elif info.type == fs.FileType.Directory:
            base = uri.rstrip("/")
            entries = filesystem.get_file_info(fs.FileSelector(path, recursive=recursive))
            for entry in sorted(entries, key=lambda e: e.path):
                rel = PurePosixPath(os.path.relpath(entry.path, path.rstrip("/") or "/"))
                if entry.type == fs.FileType.File and _image_name(rel.name) and not any(
                        part.startswith(".") for part in rel.parts[:-1]):
                    found.sources.append(Source(f"{base}/{rel}", f"{base}/{rel}", Path(rel), picked=True))
        else:
            found.missing.append(uri)


def ray_path(path: str) -> tuple[str, str]:
    """``(what read_binary_files is given, the path it reports back)`` for an input path or URI."""
    if not is_uri(path):
        absolute = os.path.abspath(path)
        return absolute, absolute
    from pyarrow import fs

    return path, fs.FileSystem.from_uri(path)[1]
