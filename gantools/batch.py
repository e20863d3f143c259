"""The batch runner behind ``gantools run``: many files through one plugin.

Contract of :func:`run_batch`:

* Inputs and outputs follow the rules in :mod:`gantools.batch_plan`. Bad arguments raise
  :class:`BatchUsageError` (exit code 2) before any file is read; an unusable output folder
  raises :class:`BatchError` (exit code 1).
* Decoding runs in worker threads ahead of the model, the model runs in the calling thread, and
  encoding + writing run in worker threads behind it. At most ``workers`` decoded images wait for
  the model and at most ``workers`` results wait to be written, so memory stays bounded.
* ``jobs`` (``--jobs``): with more than one, up to that many images go through the model at the
  same time in compute threads, each with ``cores / jobs`` torch threads (torch and OpenCV release
  the GIL); only plugins whose class sets ``parallel_safe`` are run this way. ``auto`` follows
  :func:`gantools.threads.plan_threads`. An image whose result is above :data:`BIG_OUTPUT_PIXELS` runs alone, in
  the calling thread. Results are taken in input order, so outputs, messages, the summary and
  its JSON are the same as with one job; only the per-tile progress inside a file is not shown.
* Each bad file is reported as one line ``error: <file>: <problem>`` and the run goes on.
  Outputs are written atomically (:func:`gantools.image.write_image`): no partial files, ever.
* ``KeyboardInterrupt`` stops the run: no new file is started, writes in flight finish, and the
  summary comes back with ``interrupted=True`` (exit code 130). SIGTERM does the same while
  :func:`run_batch` runs in the main thread.
* Each output is claimed (:class:`gantools.image.atomic.Claim`) before its input is read, so
  concurrent runs into one folder never compute or replace the same output: a claimed output is
  skipped, and a claimed output found complete is skipped unless ``overwrite``. Stale temporary
  files of a claimed output (left by ``kill -9``) are removed.
* Checked per file before the plugin runs: the output size fits the format (WebP: 16383 pixels
  a side). An APNG or animated WebP written as PNG or WebP is processed whole, as an animation;
  another multi-frame input (multi-page TIFF, an animation written as JPEG) warns once: only its
  first frame is processed. A result that breaks the array contract fails the file, naming the plugin.
* Videos (``--frames``: as numbered images) and GIFs (``Job.media``) run after the images, one
  at a time, through :mod:`gantools.video.jobs` (same claims, records and summary); a plugin or
  ``--codec``/``--crf``/``--pix-fmt`` that cannot process them is a usage error before any work.
* ``-o -``: a reader that closes early (``| head``) fails the file with one line (exit code 1).
* No image found at all (an empty folder, a list without entries) is a :class:`BatchError`.
* One input file and an ``output`` string without an extension that is not a folder yet is a
  :class:`BatchUsageError` (:func:`gantools.batch_plan.check_file_output`: ``name/`` is a folder,
  ``name.png`` a file); an ``os.PathLike`` output cannot end in ``/`` and stays a folder.
* The summary line goes to stderr; ``json`` (a path, or ``"-"`` for stdout) gets it as JSON,
  written atomically (:func:`gantools.image.atomic.write_atomic`). A ``json`` path that is an
  input or output of the run, a folder, or an existing non-JSON file is refused up front
  (:func:`gantools.batch_plan.check_summary_path`).
* Non-regular files found by folder scans or globs (FIFOs, sockets, devices) are skipped with a
  one-line warning each and never opened.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager, suppress
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from gantools import image as gio
from gantools.image import formats as image_formats
from gantools.batch_plan import (
    DEFAULT_TEMPLATE, STDIN, BatchError, BatchUsageError, Inputs, Job, check_file_output, check_local_output, check_output_folder,
    check_summary_path, collect_inputs, output_status, plan_jobs, single_file_output,
)
from gantools.image.atomic import Claim, stale_temps, write_atomic
from gantools.image.quiet import quiet_libraries
from gantools.threads import (
    ThreadPlan, cpu_cores, intra_op, intra_op_threads, jobs_option, load_average, plan_threads, set_intra_op,
)
from gantools.plugin import OptionError, Plugin, check_image
from gantools.progress import Reporter, make_reporter
from gantools.video.jobs import check_jobs as check_media_jobs, is_media, run_animation, takes_animation
from gantools.video.jobs import run_jobs as run_media_jobs

__all__ = ["BatchError", "BatchOptions", "BatchSummary", "BatchUsageError", "FileResult", "run_batch"]


@dataclass
class BatchOptions:
    """Everything about a batch that is not the plugin (CLI flag in brackets).

    ``background`` is the RGB colour alpha is composited on for JPEG/BMP. ``max_pixels`` limits
    decoded images (``None``: no limit). ``workers`` is the number of decode and of encode threads
    (default: up to 4). ``jobs`` is ``"auto"`` or the number of images computed at once (see
    :func:`gantools.threads.plan_threads`). ``progress`` is ``auto``, ``bar``, ``lines`` or ``off`` (``--quiet``).
    ``frames``, ``codec``, ``crf`` and ``pix_fmt`` are for videos, ``batch_frames`` (frames per
    network pass, ``"auto"`` or a number) for videos and animations (:mod:`gantools.video`).
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
    jobs: int | str = "auto"
    progress: str = "auto"
    frames: bool = False
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    batch_frames: int | str = "auto"


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


def _result(future: Future) -> Any:
    """``future.result()``, waking up every 0.2 s: a SIGTERM or Ctrl+C that the system delivers to
    a worker thread is then handled here (only the main thread runs Python's signal handlers, and
    a plain wait would not end before the future does)."""
    while not future.done():
        wait([future], timeout=0.2)
    return future.result()


class _Runner:
    """Runs planned jobs through the plugin with decode/encode threads around it."""

    def __init__(self, plugin: Plugin, options: BatchOptions, reporter: Reporter, summary: BatchSummary) -> None:
        self.plugin = plugin
        self.options = options
        self.reporter = reporter
        self.summary = summary
        self.window = max(1, options.workers or min(4, os.cpu_count() or 1))
        self.claims: dict[int, Claim] = {}
        self.stop = threading.Event()  # set on Ctrl+C: compute threads abandon their images

    # -- bookkeeping (main thread only) ----------------------------------------------------
    def record(self, job: Job, status: str, error: str | None = None, reason: str | None = None) -> None:
        """Count a finished job and report it; its claim (if any) is released."""
        claim = self.claims.pop(id(job), None)
        if claim is not None:
            claim.release()
        s = self.summary
        s.files.append(FileResult(job.source.shown, job.dest, status, error))
        if status == "done":
            s.done += 1
        elif status == "skipped":
            s.skipped += 1
        else:
            s.failed += 1
            self.reporter.error(error or "failed")
        self.reporter.file(job.source.shown, job.dest, status, reason)

    def claim(self, job: Job) -> bool:
        """Claim ``job``'s output for this run (see the module docstring); ``False``: the job
        is already recorded as skipped or failed."""
        if job.dest == STDIN:
            return True
        claim = Claim(job.dest)
        self.claims[id(job)] = claim  # registered first: Ctrl+C/SIGTERM during acquire() still releases it
        try:
            if not claim.acquire():
                del self.claims[id(job)]
                self.record(job, "skipped", reason=f"{job.dest} is being written by another run")
                return False
        except OSError as exc:
            del self.claims[id(job)]
            self.fail(job, RuntimeError(f"cannot claim output {job.dest}: {exc.strerror or exc}"))
            return False
        for temp in stale_temps(job.dest):
            with suppress(OSError):
                temp.unlink()
        if not self.options.overwrite and output_status(job.dest) == "complete":
            self.record(job, "skipped")  # finished by another run since planning
            return False
        return True

    def check_result(self, result: Any) -> None:
        check_result(self.plugin, result)

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
            warnings = _result(future)
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
        """Process ``jobs`` with the plugin (set up by :func:`_set_up`), ``plan.jobs`` images at a time.

        Each job is settled (recorded, its write queued) in input order whatever the number of
        compute threads, so the events of a run do not depend on timing."""
        if not jobs:
            return
        plan = self.thread_plan(len(jobs))
        reads: deque[tuple[Job, Future]] = deque()
        ahead: deque[_Admitted] = deque()
        writes: deque[tuple[Job, Future]] = deque()
        pending = iter(jobs)
        decode = ThreadPoolExecutor(self.window, thread_name_prefix="gantools-decode")
        encode = ThreadPoolExecutor(self.window, thread_name_prefix="gantools-encode")
        prefix = f"gantools-compute-{next(_RUNS)}"  # the name of this run's compute threads
        compute = None if plan.jobs == 1 else ThreadPoolExecutor(
            plan.jobs, thread_name_prefix=prefix, initializer=set_intra_op, initargs=(plan.threads,))
        self.stop.clear()

        def read_ahead() -> None:
            while len(reads) < self.window and (job := next(pending, None)) is not None:
                if self.claim(job):
                    reads.append((job, decode.submit(self.read, job)))

        base = intra_op()
        progress = self.plugin.progress
        try:
            with intra_op_threads(plan.threads if compute is not None else plan.solo_threads):
                if compute is not None:
                    self.plugin.progress = self.check_stop  # the bar moves per file; Ctrl+C ends tiled work early
                read_ahead()
                while reads or ahead:
                    while reads and len(ahead) < plan.jobs and not (ahead and ahead[-1].alone):
                        job, future = reads.popleft()
                        read_ahead()
                        ahead.append(self.admit(job, future, compute))
                    entry = ahead.popleft()
                    result = self.settle(entry, plan, base, progress)
                    if result is None:
                        continue
                    while len(writes) >= self.window:
                        self.finish_write(*writes.popleft())
                    writes.append((entry.job, encode.submit(self.write, entry.job, result, entry.decoded)))
                while writes:
                    self.finish_write(*writes.popleft())
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self.stop.set()
            for _, future in reads:
                future.cancel()
            for entry in ahead:
                if entry.future is not None:
                    entry.future.cancel()
            for job, future in writes:  # finish what is in flight: whole files only
                try:
                    self.finish_write(job, future)
                except KeyboardInterrupt:
                    break
        finally:
            if compute is not None:  # images still computing end at their next progress call
                compute.shutdown(wait=True, cancel_futures=True)
                for thread in threading.enumerate():  # one started as Ctrl+C hit submit() is not in the pool yet
                    if thread.name.startswith(prefix + "_"):
                        thread.join()
            self.plugin.progress = progress
            decode.shutdown(wait=True, cancel_futures=True)
            encode.shutdown(wait=True, cancel_futures=True)
            for claim in self.claims.values():
                claim.release()
            self.claims.clear()

    def thread_plan(self, todo: int) -> ThreadPlan:
        """:func:`gantools.threads.plan_threads` for this run's plugin and ``todo`` jobs; warns when ``--jobs N``
        cannot be honoured because the plugin does not declare ``parallel_safe``."""
        jobs = jobs_option(self.options.jobs)
        safe = bool(getattr(self.plugin, "parallel_safe", False))
        if jobs is not None and jobs > 1 and not safe:
            self.reporter.warning(f"--jobs {jobs}: plugin {self.plugin.descriptor.name!r} does not declare that it "
                                  "can process images in parallel; processing one at a time")
        return plan_threads(todo, cores=cpu_cores(), load=load_average(), jobs=jobs,
                            threads=self.plugin.runtime.threads, parallel_safe=safe, cpu=_on_cpu(self.plugin))

    def admit(self, job: Job, future: Future, compute: ThreadPoolExecutor | None) -> _Admitted:
        """Wait for ``job``'s decoded image, check it, and start the plugin on it in a compute
        thread (``future``) unless it runs alone in this thread (``future`` ``None``)."""
        entry = _Admitted(job)
        try:
            entry.decoded = _result(future)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded when the job is settled
            entry.error = exc
            return entry
        if takes_animation(job, entry.decoded):
            return entry  # processed whole when settled
        image = entry.decoded.image
        try:
            check_fits(self.plugin, image, job.format)
            out_h, out_w = self.plugin.output_size(*image.shape[:2])
        except Exception as exc:  # noqa: BLE001
            entry.error = exc
            return entry
        if compute is not None and out_h * out_w <= BIG_OUTPUT_PIXELS:
            entry.future = compute.submit(self.compute, image)
        return entry

    def settle(self, entry: _Admitted, plan: ThreadPlan, base: dict[str, int], progress: Any) -> np.ndarray | None:
        """Record what went wrong with ``entry``'s job, or return its result; a job without a
        compute thread runs here, alone, with ``plan.solo_threads`` (else ``base``) threads and
        the per-tile progress ``progress``."""
        job, decoded = entry.job, entry.decoded
        if decoded is None:
            self.fail(job, entry.error, named=isinstance(entry.error, gio.ImageError))  # type: ignore[arg-type]
            return None
        if takes_animation(job, decoded):
            with self.alone(plan, base, progress):
                run_animation(self, job)
            return None
        if decoded.frames > 1:
            self.reporter.warning(f"{job.source.shown}: has {decoded.frames} frames; only the first is processed")
        try:
            if entry.error is not None:
                raise entry.error
            if entry.future is not None:
                result = _result(entry.future)
            else:
                with self.alone(plan, base, progress):
                    result = self.compute(decoded.image)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - even a plugin's sys.exit() fails one file only
            self.fail(job, exc if isinstance(exc, Exception) else RuntimeError(f"the plugin raised {exc!r}"))
            return None
        decoded.image = None  # type: ignore[assignment]  # free the input early
        return result

    @contextmanager
    def alone(self, plan: ThreadPlan, base: dict[str, int], progress: Any) -> Iterator[None]:
        """Work in this thread while no compute thread runs: in a parallel run (a big image, an
        animation) with the threads of a sequential run (``plan.solo_threads``, else ``base``) and
        the per-tile ``progress``."""
        if plan.jobs == 1:
            yield
            return
        with intra_op_threads(plan.solo_threads or base), _attribute(self.plugin, "progress", progress):
            yield

    def compute(self, image: np.ndarray) -> np.ndarray:
        """The plugin on one image, its result checked (any thread)."""
        result = self.plugin.process(image)
        self.check_result(result)
        return result

    def check_stop(self, done: int, total: int) -> None:
        """The plugin's progress callback in a parallel run: ends its work early after Ctrl+C."""
        if self.stop.is_set():
            raise _Stopped("interrupted")


#: numbers the runs of this process (names of their compute threads)
_RUNS = itertools.count(1)


class _Stopped(Exception):
    """Raised inside a plugin's progress callback to abandon an image after Ctrl+C."""


@dataclass
class _Admitted:
    """A job whose input was read: ``decoded`` (``None`` with ``error`` when the read failed),
    an ``error`` of the checks before the plugin, and the ``future`` of its compute thread."""

    job: Job
    decoded: gio.Decoded | None = None
    error: BaseException | None = None
    future: Future | None = None

    @property
    def alone(self) -> bool:
        """Whether the plugin still has to run on this job in the calling thread."""
        return self.decoded is not None and self.error is None and self.future is None


# -- threads ------------------------------------------------------------------------------------
#: results above this many pixels (16 Mpx: a 1024x1024 photo at x4) run one at a time, with all
#: the threads: their working memory is large, and their bar moves per tile
BIG_OUTPUT_PIXELS = 16 << 20


def _on_cpu(plugin: Plugin) -> bool:
    """Whether ``plugin`` computes on the CPU (``auto`` without torch loaded: it does not use torch)."""
    device = str(plugin.runtime.device)
    if device != "auto":
        return device == "cpu"
    torch = sys.modules.get("torch")
    if torch is None:
        return True
    mps = getattr(torch.backends, "mps", None)
    return not (torch.cuda.is_available() or (mps is not None and mps.is_available()))


@contextmanager
def _attribute(obj: Any, name: str, value: Any) -> Iterator[None]:
    """``obj.name`` set to ``value`` inside the block."""
    before = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, before)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs in the main thread, SIGTERM raises ``KeyboardInterrupt`` like Ctrl+C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _set_up(plugin: Plugin) -> bool:
    """Load the plugin's weights once, before any thread starts and before the progress display
    (so a failure is one line and no summary); ``False`` if interrupted. Raises
    :class:`BatchError` if the plugin cannot be set up; its ``OptionError`` (an unusable
    ``--weights`` file, a ``--tile`` the network cannot use) passes through: a usage error."""
    try:
        plugin.ensure_setup()
    except KeyboardInterrupt:
        return False
    except OptionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model that cannot load ends the batch, one line
        name = plugin.descriptor.name
        raise BatchError(f"{name}: cannot set up the plugin: {_one_line(str(exc) or type(exc).__name__)}") from exc
    return True


def _write_json(summary: BatchSummary, dest: str, reporter: Reporter) -> None:
    """The summary as JSON to stdout (``"-"``) or atomically to the file ``dest``."""
    data = (json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n").encode()
    if dest == STDIN:
        try:
            gio.write_image(STDIN, data)
        except gio.ImageError as exc:
            reporter.error(f"summary: {_one_line(str(exc))}")
            summary.failed += 1
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
    jobs_option(opts.jobs)  # a bad --jobs is a usage error before any work
    if STDIN in (out, opts.json) and sys.stdout is None:
        raise BatchError("standard output is closed; -o - and --json - need it")
    single = single_file_output(args, out, opts.from_list, opts.frames)
    folder = out if out != STDIN and not single else None
    found = collect_inputs(
        args, recursive=opts.recursive, from_list=opts.from_list, null=opts.null, exclude=folder
    )
    if not found.sources and not found.missing:
        raise BatchError(f"no images found in {_describe(args, opts.from_list)}")
    jobs = plan_jobs(
        found.sources, out, single_file=single, plugin=plugin.descriptor.name, scale=plugin.scale,
        template=opts.name, format=opts.format, quality=opts.quality, overwrite=opts.overwrite, frames=opts.frames,
    )
    if opts.json and opts.json != STDIN:
        check_summary_path(opts.json, jobs, out, opts.from_list)
    if isinstance(output, str):  # "-o name": a file or a folder? (a Path cannot end in "/": a folder)
        check_local_output(output)
        check_file_output(args, out, opts.from_list, opts.frames)
    if folder is not None and any(j.state == "todo" for j in jobs):
        check_output_folder(folder)
    elif single and jobs[0].state == "todo":
        check_output_folder(os.path.dirname(out) or ".")

    # one window for the whole run: every stderr line goes through the one filter, in order
    with _sigterm_as_interrupt(), quiet_libraries():
        ready = not any(j.state == "todo" for j in jobs) or _set_up(plugin)
        return run_planned(plugin, jobs, found, opts, reporter or make_reporter(opts.progress), ready)


def check_fits(plugin: Plugin, image: np.ndarray, fmt: str) -> None:
    """``ValueError`` if ``plugin``'s result for ``image`` could not be written in format ``fmt``."""
    spec = image_formats.get(fmt)
    out_h, out_w = plugin.output_size(*image.shape[:2])
    if spec.max_side and max(out_h, out_w) > spec.max_side:
        raise ValueError(f"the result would be {out_w}x{out_h}, above the {spec.label} limit of "
                         f"{spec.max_side} pixels a side; choose another --format")


def check_result(plugin: Plugin, result: Any) -> None:
    """``ValueError`` blaming ``plugin`` when its ``result`` breaks the array contract."""
    try:
        check_image(result)
    except ValueError as exc:
        raise ValueError(f"plugin {plugin.descriptor.name!r} returned an invalid image: {exc}") from None


def _describe(args: list[str], from_list: str | None) -> str:
    """The inputs as shown in the "no images found" message."""
    shown = [*args, *([f"--from-list {from_list}"] if from_list is not None else [])]
    return ", ".join(shown) + " (known extensions: " + ", ".join(sorted(image_formats.FORMATS.values())) + ")"


def run_planned(
    plugin: Plugin, jobs: list[Job], found: Inputs, opts: BatchOptions, reporter: Reporter, ready: bool,
    execute: Callable[[_Runner, list[Job]], None] | None = None,
) -> BatchSummary:
    """Report what planning found, run the jobs to do (``ready``: the plugin is set up, else the
    run was interrupted while setting up), and write the summary.

    ``execute(runner, todo)`` runs the jobs to do and records each through ``runner.record``;
    the default is this process's pipeline (:meth:`_Runner.run`), another engine passes its own.
    """
    if ready:
        check_media_jobs(plugin, jobs, opts)  # a plugin or --codec that cannot do video: before any work
    summary = BatchSummary(plugin.descriptor.name, interrupted=not ready)
    runner = _Runner(plugin, opts, reporter, summary)
    start = time.perf_counter()
    reporter.start(len(jobs) + len(found.missing), plugin.descriptor.name)
    plugin.progress = reporter.step  # tiles / steps inside one file move the bar
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
        if ready:
            todo = [j for j in jobs if j.state == "todo"]
            images = [j for j in todo if not is_media(j)]
            if images or len(images) == len(todo):
                (execute or _Runner.run)(runner, images)
            if len(images) < len(todo) and not summary.interrupted:
                run_media_jobs(runner, [j for j in todo if is_media(j)])  # videos, frames, GIFs: this process
    finally:
        summary.seconds = time.perf_counter() - start
        reporter.finish(summary.line())
    if opts.json:
        _write_json(summary, opts.json, reporter)
    return summary
