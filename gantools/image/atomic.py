"""The one atomic file writer of gantools (images, run directories, exports, animations).

A file is written to a temporary ``.<name>.<random><suffix>`` file in the destination's folder,
fsynced, given its final permissions and renamed over the destination, so that readers (and a
crash) see either the old file or the whole new one, never a partial file. The temporary file
is removed on any failure, ``KeyboardInterrupt`` included. Missing parent folders are created.
A replaced file keeps its permissions; a new one gets the usual ``0o666 & ~umask`` (0644 under
umask 022). Failures raise ``OSError``. Nothing here imports OpenCV or numpy.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Iterator


def write_atomic(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically (see the module docstring); ``OSError`` on failure."""
    with atomic_path(dest) as temp:
        with open(temp, "wb") as f:
            f.write(data)


@contextmanager
def atomic_path(dest: str | os.PathLike, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` for a library that writes files itself.

    The path exists (empty) when yielded; ``suffix`` lets a writer that picks its container from
    the name (``cv2.VideoWriter``) see the right one. When the block ends normally the file is
    fsynced, chmod-ed and renamed onto ``dest``; when it raises, the file is removed and the
    exception propagates. ``dest`` is untouched until the rename.
    """
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(temp)
        _fsync(temp)
        os.chmod(temp, _file_mode(path))
        os.replace(temp, path)
        temp = None
        _sync_dir(path.parent)
    finally:
        if temp is not None:
            with suppress(OSError):
                os.unlink(temp)


def _fsync(path: str) -> None:
    """Flush a written file to disk."""
    with open(path, "r+b") as f:
        os.fsync(f.fileno())


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
