"""How a batch talks to the user: a Rich progress bar on a terminal, plain lines otherwise.

Everything goes to stderr (stdout may carry an image or the JSON summary). Errors and warnings
are one line each and are shown in every mode, ``off`` included; ``off`` drops the per-file lines
and the summary. Reporters are called from one thread only (the batch's main thread).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

MODES = ("auto", "bar", "lines", "off")


class Reporter:
    """Plain-text reporter: one line per file (unless ``verbose`` is false), then a summary."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.total = 0
        self.count = 0

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, total: int, title: str) -> None:
        """Called once, before the first file, with the number of files."""
        self.total = total

    def file(self, shown: str, dest: str, status: str, reason: str | None = None) -> None:
        """A file finished with ``status`` ``"done"``, ``"skipped"`` or ``"failed"``; ``reason``
        says why a file was skipped (default: its output exists)."""
        self.count += 1
        if not self.verbose or status == "failed":  # failures already printed by error()
            return
        where = "<stdout>" if dest == "-" else dest
        why = reason or f"{where} exists; --overwrite replaces it"
        what = f"-> {where}" if status == "done" else f"skipped ({why})"
        self._line(f"[{self.count}/{self.total}] {shown} {what}")

    def step(self, done: int, total: int) -> None:
        """Progress inside the current file (tile rows, optimisation steps); lines mode shows none."""

    def frames(self, shown: str, done: int, total: int, fps: float) -> None:
        """Frames of a video or animation done; lines mode prints a line at each quarter of a
        clip of 100 frames or more."""
        if self.verbose and total >= 100 and done < total and done * 4 // total > (done - 1) * 4 // total:
            self._line(f"  {shown}: frame {done}/{total}, {fps:.1f} fps, ETA {eta(total - done, fps)}")

    def error(self, message: str) -> None:
        self._line(f"error: {message}")

    def warning(self, message: str) -> None:
        self._line(f"warning: {message}")

    def finish(self, summary: str) -> None:
        """Called once at the end with the summary line."""
        if self.verbose:
            self._line(summary)


class RichReporter(Reporter):
    """A Rich progress bar on stderr; errors and warnings print above it."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
            console=self.console,
        )
        self.task: Any = None

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def start(self, total: int, title: str) -> None:
        super().start(total, title)
        self.task = self.progress.add_task(title, total=total, current="")
        self.progress.start()

    def file(self, shown: str, dest: str, status: str, reason: str | None = None) -> None:
        self.count += 1
        self.progress.update(self.task, completed=self.count, current=shown)

    def step(self, done: int, total: int) -> None:
        """Advance the bar by the fraction of the current file that is done."""
        if total > 0:
            self.progress.update(self.task, completed=self.count + min(done, total) / total,
                                 current=f"{done}/{total}")

    def frames(self, shown: str, done: int, total: int, fps: float) -> None:
        """Advance the bar by the fraction of the clip done; show frames, fps and ETA."""
        self.progress.update(self.task, completed=self.count + min(done, total) / max(total, 1),
                             current=f"frame {done}/{total} {fps:.1f} fps ETA {eta(total - done, fps)}")

    def finish(self, summary: str) -> None:
        self.progress.update(self.task, current="")
        self.progress.stop()
        self._line(summary)


def eta(frames: int, fps: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for ``frames`` more at ``fps``; ``?`` while the rate is unknown."""
    if fps <= 0:
        return "?"
    seconds = round(frames / fps)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def make_reporter(mode: str = "auto") -> Reporter:
    """``auto``: a bar if stderr is a terminal, else lines; ``bar``, ``lines`` or ``off``."""
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode == "bar":
        return RichReporter()
    return Reporter(verbose=mode == "lines")
