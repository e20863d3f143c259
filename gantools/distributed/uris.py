"""Inputs given as URIs (``s3://bucket/photos/``, ``gs://...``, ``file:///data/a.png``): whatever
``pyarrow.fs`` understands, listed with it and read by Ray's binary-file reader.

A URI naming a file is an input as it is; a URI naming a folder contributes its image files (the
top level, or the whole tree with ``recursive``; hidden names skipped), each keeping its path
relative to that folder under ``-o`` as a local folder input does (its URI is the folder's plus
the percent-encoded relative path); scans of other folders never enter the output folder. Names
and formats then follow :mod:`gantools.batch_plan` like any other input. A URI that ``pyarrow.fs``
cannot open (a scheme it does not know, a malformed URI, a file system it cannot set up or list)
is a usage error naming the URI, before Ray starts. :func:`location` names a path or URI for
comparisons (is this output an input? is it in the output folder?) without contacting anything.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from gantools.batch_plan import BatchUsageError, Inputs, Source, is_uri
from gantools.image import format_from_name


def _image_name(name: str) -> bool:
    return not name.startswith(".") and format_from_name(name) is not None


def location(path_or_uri: str) -> tuple[str, str]:
    """``(file system, path)`` that identifies a file for comparisons, without contacting it:
    ``("local", resolved path)`` for local paths and ``file://`` URIs, else ``(scheme, host/path)``."""
    if not is_uri(path_or_uri):
        return "local", os.path.normcase(os.path.realpath(path_or_uri))
    parts = urlsplit(path_or_uri)
    if parts.scheme.lower() == "file":
        return "local", os.path.normcase(os.path.realpath(unquote(parts.path) or "/"))
    return parts.scheme.lower(), (parts.netloc + unquote(parts.path)).rstrip("/")


def add_uri_sources(found: Inputs, args: list[str], *, recursive: bool, exclude: str | None = None) -> None:
    """Append the sources of URI ``args`` to ``found`` (a URI matching nothing is ``missing``);
    ``exclude`` is the output folder (a path or URI): scans of other folders never enter it."""
    skip = location(exclude) if exclude is not None else None
    for uri in args:
        try:
            _add_uri(found, uri, recursive=recursive, exclude=skip)
        except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise BatchUsageError(uri_problem(uri, exc)) from None


def uri_problem(uri: str, exc: BaseException) -> str:
    """One line for a URI that ``pyarrow.fs`` cannot open or list."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "Unrecognized filesystem type" in first:
        scheme = uri.split("://", 1)[0]
        return f"{uri}: unknown URI scheme '{scheme}://' (pyarrow.fs reads s3://, gs://, hdfs://, file://)"
    return f"{uri}: cannot open this URI: {first}"


def _add_uri(found: Inputs, uri: str, *, recursive: bool, exclude: tuple[str, str] | None) -> None:
    """Append the sources of one URI (pyarrow's errors propagate); ``exclude``: a :func:`location`."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.File:
        found.sources.append(Source(uri, uri))
    elif info.type == fs.FileType.Directory:
        base, skip = uri.rstrip("/"), exclude if exclude != location(uri) else None
        entries = filesystem.get_file_info(fs.FileSelector(path, recursive=recursive))
        for entry in sorted(entries, key=lambda e: e.path):
            rel = PurePosixPath(os.path.relpath(entry.path, path.rstrip("/") or "/"))
            if entry.type == fs.FileType.File and _image_name(rel.name) and not any(
                    part.startswith(".") for part in rel.parts[:-1]):
                found_uri = f"{base}/{quote(rel.as_posix())}"  # a URI again: "a b.png" -> "a%20b.png"
                if not _in_folder(found_uri, skip):
                    found.sources.append(Source(found_uri, found_uri, Path(rel), picked=True))
    else:
        found.missing.append(uri)


def _in_folder(uri: str, folder: tuple[str, str] | None) -> bool:
    """Whether ``uri`` lies below ``folder`` (a :func:`location`)."""
    if folder is None:
        return False
    kind, path = location(uri)
    return kind == folder[0] and path.startswith(folder[1].rstrip("/") + "/")


def ray_path(path: str) -> tuple[str, str]:
    """``(what read_binary_files is given, the path it reports back)`` for an input path or URI."""
    if not is_uri(path):
        absolute = os.path.abspath(path)
        return absolute, absolute
    from pyarrow import fs

    return path, fs.FileSystem.from_uri(path)[1]
