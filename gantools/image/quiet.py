"""Keep the C image libraries' own stderr lines out of gantools' output.

OpenCV's bundled libpng and libjpeg print straight to file descriptor 2 (``libpng warning: iCCP:
too short``, ``libpng error: IDAT: CRC error``, ``Corrupt JPEG data: 1 extraneous bytes ...``),
around Python. gantools reports a bad file in its own one line, so these are noise.

:func:`quiet_libraries` points fd 2 at a pipe while a decode or encode runs. A forwarding thread
writes every line that does not come from those libraries to the real stderr at once, so other
threads keep printing progress and messages, and drops the libraries' lines
(:data:`LIBRARY_PREFIXES`). The windows of concurrent threads share one pipe: the first to enter sets
it up, the last to leave takes it down, so decoding stays parallel. With no usable fd 2 it does
nothing (and on Windows, where ``select`` takes no pipes).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from contextlib import contextmanager, suppress
from typing import Iterator

#: how the lines of libpng, libjpeg(-turbo) warnings and OpenCV's own log begin
LIBRARY_PREFIXES = (
    b"libpng warning", b"libpng error", b"Corrupt JPEG data", b"Premature end of JPEG file",
    b"Invalid SOS parameters", b"Inconsistent progression sequence", b"Unknown Adobe color transform",
    b"Application transferred too many", b"Warning: unknown JFIF", b"[ WARN:", b"[ERROR:", b"[ INFO:", b"[DEBUG:",
)


def is_library_line(line: bytes) -> bool:
    """Whether ``line`` was printed by one of the image libraries."""
    return line.startswith(LIBRARY_PREFIXES)


def _could_be_library(start: bytes) -> bool:
    """Whether ``start`` (a line without its newline yet) is or may become a library line."""
    return is_library_line(start) or any(p.startswith(start) for p in LIBRARY_PREFIXES)


class _Window:
    """fd 2 -> pipe while at least one thread is inside; see the module docstring."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: int | None = None
        self.wake: int | None = None
        self.thread: threading.Thread | None = None

    def enter(self) -> None:
        if os.name == "nt":  # select() does not take pipes there
            return
        with self.lock:
            if self.depth == 0:
                self._start()
            self.depth += 1

    def leave(self) -> None:
        if os.name == "nt":
            return
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self._stop()

    def _start(self) -> None:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            return
        _flush_python_stderr()
        read, write = os.pipe()
        wake_read, self.wake = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.saved = saved
        self.thread = threading.Thread(target=_forward, args=(read, wake_read, saved), daemon=True,
                                       name="gantools-stderr")
        self.thread.start()

    def _stop(self) -> None:
        if self.saved is None:
            return
        _flush_python_stderr()
        os.dup2(self.saved, 2)  # the pipe's one write end is gone: the forwarder reads to its end
        with suppress(OSError):  # ...and exits; the wake-up is for a child that inherited fd 2
            os.write(self.wake, b"x")
        self.thread.join()
        os.close(self.wake)
        os.close(self.saved)
        self.saved = self.wake = self.thread = None


def _flush_python_stderr() -> None:
    if sys.stderr is not None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _forward(read: int, wake: int, out: int) -> None:
    """Copy ``read`` to ``out`` without the library lines until ``wake`` is written (fd 2 is
    back), then drain what the pipe still holds and close both read ends."""
    lines = _LineFilter(out)
    try:
        while True:
            ready, _, _ = select.select([read, wake], [], [])
            if read in ready:
                chunk = os.read(read, 65536)
                if not chunk:
                    break
                lines.feed(chunk)
                continue
            while select.select([read], [], [], 0)[0]:
                chunk = os.read(read, 65536)
                if not chunk:
                    break
                lines.feed(chunk)
            break
        lines.close()
    finally:
        os.close(read)
        os.close(wake)


class _LineFilter:
    """The byte stream of fd 2 without the library lines, written to ``out`` as it comes.

    A partial line that cannot be a library line is written at once (progress bars), and the rest
    of that line follows whatever it starts with; a partial line that may still become a library
    line waits for its newline. The lone newline that libpng writes after its text is dropped with
    that text; any other empty line is kept.
    """

    def __init__(self, out: int) -> None:
        self.out = out
        self.pending = b""  # a line start that may still turn out to be a library line
        self.open_line = False  # a partial line was written: what follows up to the newline belongs to it
        self.dropped = False  # the last complete line was a library line

    def feed(self, chunk: bytes) -> None:
        *lines, rest = (self.pending + chunk).split(b"\n")
        kept = []
        for line in lines:
            if self.open_line or not (is_library_line(line) or (line == b"" and self.dropped)):
                kept.append(line + b"\n")
                self.dropped = False
            else:
                self.dropped = line != b""
            self.open_line = False
        self.pending = b""
        if rest and (self.open_line or not _could_be_library(rest)):
            kept.append(rest)
            self.open_line = True
        else:
            self.pending = rest
        if kept:
            _write(self.out, b"".join(kept))

    def close(self) -> None:
        if self.pending and not is_library_line(self.pending):
            _write(self.out, self.pending)
        self.pending = b""


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:  # the real stderr went away: nothing to report to
        pass


_WINDOW = _Window()


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Within the block, lines the image libraries print to fd 2 are dropped (thread-safe)."""
    _WINDOW.enter()
    try:
        yield
    finally:
        _WINDOW.leave()


__all__ = ["LIBRARY_PREFIXES", "is_library_line", "quiet_libraries"]
