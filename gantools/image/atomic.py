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
from typing import BinaryIO, Iterator


def read_at_most(stream: BinaryIO, limit: int) -> bytes | None:
    """All of ``stream`` if it holds at most ``limit`` bytes, else ``None`` (reads ``limit + 1``
    bytes at most, so ``/dev/zero`` or an endless pipe cannot exhaust memory)."""
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


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


#: the temporary names :func:`atomic_path` makes: ``.<name>.<8 random chars><suffix>``
_TEMP_RANDOM = 8


def stale_temps(dest: str | os.PathLike, *, suffix: str = ".part") -> list[Path]:
    """Temporary files :func:`atomic_path` left beside ``dest`` (after ``kill -9`` or a power cut).

    Only names of this module's exact pattern (``.<name>.`` + 8 characters + ``suffix``) that are
    regular files count. Call it only while holding :func:`claim` on ``dest``: a concurrent
    writer of ``dest`` holds the claim, so its live temporary file is never taken for stale.
    """
    path = Path(dest)
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for name in names:
        middle = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
        if len(middle) == _TEMP_RANDOM and middle.replace("_", "a").isalnum():
            candidate = path.parent / name
            if candidate.is_file() and not candidate.is_symlink():
                found.append(candidate)
    return found


class Claim:
    """An exclusive claim on an output path between processes (``flock`` on ``.<name>.lock``).

    :meth:`acquire` returns ``False`` at once when another process holds the claim. The lock
    file is removed by :meth:`release`; a process killed with ``kill -9`` loses its lock with its
    file descriptors, so a stale lock file never blocks a later run. Where ``fcntl`` is missing
    (Windows) every claim succeeds.
    """

    def __init__(self, dest: str | os.PathLike) -> None:
        path = Path(dest)
        self.path = path.parent / f".{path.name}.lock"
        self._fd: int | None = None
        self._started = False  # acquire() may have created the lock file: release() removes it if unheld

    def acquire(self) -> bool:
        """Take the claim (creating the folder); ``False`` if another process holds it.
        ``OSError`` if the lock file cannot be made."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._started = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._started = False  # another process's file
                return False
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd  # held from here: release() after an interrupt removes it
            try:  # the holder before us may have removed the file after we opened it
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                return True
            self._fd = None
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file and drop the claim (idempotent). After an :meth:`acquire` that an
        interrupt (Ctrl+C, SIGTERM) cut short between creating the file and holding it, the file is
        removed when no process holds it."""
        started, self._started = self._started, False
        if self._fd is None:
            if started:
                self._remove_unheld()
            return
        with suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def _remove_unheld(self) -> None:
        """Remove the lock file if no process holds its lock (an acquirer that opened it before the
        removal sees that its file is gone and tries again, as in :meth:`acquire`)."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)
