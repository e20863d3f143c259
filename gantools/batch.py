"""The batch runner behind ``gantools run``: many files through one plugin.

Contract of :func:`run_batch`:

* Inputs and outputs follow the rules in :mod:`gantools.batch_plan`. Bad arguments raise
  :class:`BatchUsageError` (exit code 2) before any file is read; an unusable output folder
  raises :class:`BatchError` (exit code 1).
* Decoding runs in worker threads ahead of the model, the model runs in the calling thread, and
  encoding + writing run in worker threads behind it. At most ``workers`` decoded images wait for
  the model and at most ``workers`` results wait to be written, so memory stays bounded.
* Each bad file is reported as one line ``error: <file>: <problem>`` and the run goes on.
  Outputs are written atomically (:func:`gantools.image.write_image`): no partial files, ever.
* ``KeyboardInterrupt`` stops the run: no new file is started, writes in flight finish, and the
  summary comes back with ``interrupted=True`` (exit code 130).
* The summary line goes to stderr; ``json`` (a path, or ``"-"`` for stdout) gets it as JSON,
  written atomically (:func:`gantools.image.atomic.write_atomic`). A ``json`` path that is an
  input or output of the run, a folder, or an existing non-JSON file is refused up front
  (:func:`gantools.batch_plan.check_summary_path`).
* Non-regular files found by folder scans or globs (FIFOs, sockets, devices) are skipped with a
  one-line warning each and never opened.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from gantools import image as gio
from gantools.batch_plan import (
    DEFAULT_TEMPLATE, STDIN, BatchError, BatchUsageError, Job, check_output_folder, check_summary_path,
    collect_inputs, plan_jobs, single_file_output,
)
from gantools.image.atomic import write_atomic
from gantools.plugin import OptionError, Plugin
from gantools.progress import Reporter, make_reporter

__all__ = ["BatchError", "BatchOptions", "BatchSummary", "BatchUsageError", "FileResult", "run_batch"]


@dataclass
class BatchOptions:
    """Everything about a batch that is not the plugin (CLI flag in brackets).

    ``background`` is the RGB colour alpha is composited on for JPEG/BMP. ``max_pixels`` limits
    decoded images (``None``: no limit). ``workers`` is the number of decode and of encode threads
    (default: up to 4). ``progress`` is ``auto``, ``bar``, ``lines`` or ``off`` (``--quiet``).
    """

    recursive: bool = False
    from_list: str | None = None
    null: bool = False
    format: str | None = None
    quality: int | None = None
    name: str = DEFAULT_TEMPLATE
    overwrite: bool = False
    json: str | None = None
    background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int | None = gio.DEFAULT_MAX_PIXELS
    workers: int | None = None
    progress: str = "auto"


@dataclass
class FileResult:
    """What happened to one input: ``status`` is ``done``, ``skipped`` or ``failed``."""

    input: str
    output: str | None
    status: str
    error: str | None = None


@dataclass
class BatchSummary:
    """Counts and per-file results of a run. ``exit_code``: 0 ok, 1 failures, 130 interrupted."""

    plugin: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    files: list[FileResult] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> list[tuple[str, str]]:
        """``(input, message)`` of every failed file."""
        return [(f.input, f.error or "") for f in self.files if f.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)

    def line(self) -> str:
        """The one-line human summary."""
        text = (
            f"{self.plugin}: {self.done} done, {self.skipped} skipped, {self.failed} failed "
            f"in {self.seconds:.1f} s ({self.images_per_second:.2f} images/s)"
        )
        return text + (" - interrupted" if self.interrupted else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["images_per_second"] = round(self.images_per_second, 3)
        data["exit_code"] = self.exit_code
        return data


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Runner:
    """Runs planned jobs through the plugin with decode/encode threads around it."""

    def __init__(self, plugin: Plugin, options: BatchOptions, reporter: Reporter, summary: BatchSummary) -> None:
        self.plugin = plugin
        self.options = options
        self.reporter = reporter
        self.summary = summary
        self.window = max(1, options.workers or min(4, os.cpu_count() or 1))

    # -- bookkeeping (main thread only) ----------------------------------------------------
    def record(self, job: Job, status: str, error: str | None = None) -> None:
        s = self.summary
        s.files.append(FileResult(job.source.shown, job.dest, status, error))
        if status == "done":
            s.done += 1
        elif status == "skipped":
            s.skipped += 1
        else:
            s.failed += 1
            self.reporter.error(error or "failed")
        self.reporter.file(job.source.shown, job.dest, status)

    def fail(self, job: Job, exc: BaseException, named: bool = False) -> None:
        """Record a failure; ``named``: the message already starts with the file name."""
        text = _one_line(str(exc) or type(exc).__name__)
        self.record(job, "failed", text if named else f"{job.source.shown}: {text}")

    # -- worker-thread steps -----------------------------------------------------------------
    def read(self, job: Job) -> gio.Decoded:
        return gio.read_image(job.source.path, name=job.source.shown, max_pixels=self.options.max_pixels)

    def write(self, job: Job, image: np.ndarray, decoded: gio.Decoded) -> list[str]:
        warnings: list[str] = []
        data = gio.encode_image(
            image, job.format, quality=self.options.quality, background=self.options.background,
            icc=decoded.icc, exif=decoded.exif, warn=warnings.append,
        )
        gio.write_image(job.dest, data)
        return warnings

    def finish_write(self, job: Job, future: Future) -> None:
        try:
            warnings = future.result()
        except gio.ImageError as exc:
            named = str(exc).startswith(f"{job.dest}:")
            self.fail(job, exc, named=named)
            return
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            self.fail(job, exc)
            return
        for text in warnings:
            self.reporter.warning(f"{job.source.shown}: {_one_line(text)}")
        self.record(job, "done")

    # -- the pipeline --------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> None:
        """Process ``jobs``; raises :class:`BatchError` if the plugin cannot be set up (its ``OptionError``,
        e.g. an unusable ``--weights`` file, passes through unchanged: a usage error)."""
        if not jobs:
            return
        try:
            self.plugin.ensure_setup()  # load weights once, before any thread starts
        except KeyboardInterrupt:
            self.summary.interrupted = True
            return
        except OptionError:  # e.g. an unusable --weights file: a usage error naming the file (exit 2)
            raise
        except Exception as exc:  # noqa: BLE001 - a model that cannot load ends the batch, one line
            name = self.plugin.descriptor.name
            raise BatchError(f"{name}: cannot set up the plugin: {_one_line(str(exc) or type(exc).__name__)}") from exc
        reads: deque[tuple[Job, Future]] = deque()
        writes: deque[tuple[Job, Future]] = deque()
        pending = iter(jobs)
        decode = ThreadPoolExecutor(self.window, thread_name_prefix="gantools-decode")
        encode = ThreadPoolExecutor(self.window, thread_name_prefix="gantools-encode")

        def read_ahead() -> None:
            while len(reads) < self.window and (job := next(pending, None)) is not None:
                reads.append((job, decode.submit(self.read, job)))

        try:
            read_ahead()
            while reads:
                job, future = reads.popleft()
                read_ahead()
                try:
                    decoded = future.result()
                except gio.ImageError as exc:
                    self.fail(job, exc, named=True)
                    continue
                except Exception as exc:  # noqa: BLE001
                    self.fail(job, exc)
                    continue
                try:
                    result = self.plugin.process(decoded.image)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - even a plugin's sys.exit() fails one file only
                    self.fail(job, exc if isinstance(exc, Exception) else RuntimeError(f"the plugin raised {exc!r}"))
                    continue
                decoded.image = None  # type: ignore[assignment]  # free the input early
                while len(writes) >= self.window:
                    self.finish_write(*writes.popleft())
                writes.append((job, encode.submit(self.write, job, result, decoded)))
            while writes:
                self.finish_write(*writes.popleft())
        except KeyboardInterrupt:
            self.summary.interrupted = True
            for _, future in reads:
                future.cancel()
            for job, future in writes:  # finish what is in flight: whole files only
                try:
                    self.finish_write(job, future)
                except KeyboardInterrupt:
                    break
        finally:
            decode.shutdown(wait=True, cancel_futures=True)
            encode.shutdown(wait=True, cancel_futures=True)


def _write_json(summary: BatchSummary, dest: str, reporter: Reporter) -> None:
    """The summary as JSON to stdout (``"-"``) or atomically to the file ``dest``."""
    data = (json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n").encode()
    if dest == STDIN:
        gio.write_image(STDIN, data)
        return
    try:
        write_atomic(dest, data)
    except OSError as exc:
        reporter.error(_one_line(f"{dest}: cannot write: {exc.strerror or exc}"))
        summary.failed += 1


def run_batch(
    plugin: Plugin, inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
    *, options: BatchOptions | None = None, reporter: Reporter | None = None,
) -> BatchSummary:
    """Run ``plugin`` over ``inputs`` into ``output`` (see the module docstring for the contract)."""
    opts = options or BatchOptions()
    args = [os.fspath(a) for a in inputs]
    out = os.fspath(output)
    if not args and opts.from_list is None:
        raise BatchUsageError("no inputs: give files, folders, globs, '-' or --from-list")
    if opts.json == STDIN and out == STDIN:
        raise BatchUsageError("--json - and -o - would both write to stdout; give --json a file")
    single = single_file_output(args, out, opts.from_list)
    folder = out if out != STDIN and not single else None
    found = collect_inputs(
        args, recursive=opts.recursive, from_list=opts.from_list, null=opts.null, exclude=folder
    )
    jobs = plan_jobs(
        found.sources, out, single_file=single, plugin=plugin.descriptor.name, scale=plugin.scale,
        template=opts.name, format=opts.format, quality=opts.quality, overwrite=opts.overwrite,
    )
    if opts.json and opts.json != STDIN:
        check_summary_path(opts.json, jobs, out, opts.from_list)
    if folder is not None and any(j.state == "todo" for j in jobs):
        check_output_folder(folder)
    elif single and jobs[0].state == "todo":
        check_output_folder(os.path.dirname(out) or ".")

    reporter = reporter or make_reporter(opts.progress)
    summary = BatchSummary(plugin.descriptor.name)
    runner = _Runner(plugin, opts, reporter, summary)
    start = time.perf_counter()
    reporter.start(len(jobs) + len(found.missing), plugin.descriptor.name)
    try:
        for entry in found.ignored:
            reporter.warning(f"{entry}: is a folder; lists name files, so it was ignored")
        for path, kind in found.special:
            reporter.warning(f"{path}: is {kind}, not a regular file; skipped")
        for arg in found.missing:
            summary.files.append(FileResult(arg, None, "failed", f"{arg}: no such file or folder"))
            summary.failed += 1
            reporter.error(f"{arg}: no such file or folder")
            reporter.file(arg, "", "failed")
        for job in jobs:
            if job.state == "error":
                runner.record(job, "failed", f"{job.source.shown}: {job.error}")
            elif job.state == "skip":
                runner.record(job, "skipped")
        runner.run([j for j in jobs if j.state == "todo"])
    finally:
        summary.seconds = time.perf_counter() - start
        reporter.finish(summary.line())
    if opts.json:
        _write_json(summary, opts.json, reporter)
    return summary
