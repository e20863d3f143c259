"""Video and animation jobs of a batch: the hooks :mod:`gantools.batch` calls.

A planned :class:`~gantools.batch_plan.Job` whose ``media`` is set (:mod:`gantools.video.names`)
runs here, one file at a time in the calling thread, through the batch's runner (``claim``,
``record``, ``fail``, ``check_result``, its reporter and options), so resume, claims, one error
line per bad file, the summary and ``--json`` are the image batch's:

* ``video``: decode with PyAV, every frame through ``plugin.process``, encode, copy audio and
  subtitles (:mod:`gantools.video.codec`), written to a temporary file renamed at the end
  (:func:`gantools.image.atomic.atomic_path`): Ctrl+C, SIGTERM or an error leave no partial video.
* ``frames`` (``--frames``): the processed frames as numbered images, each written atomically;
  the video is decoded once first, so a corrupt or empty video writes nothing. A frame whose
  file is already complete is not computed again (resume); the job is ``skipped`` when all were.
* ``animation`` (GIF by name; APNG and animated WebP found by the image reader, see
  :func:`takes_animation`): every frame through the plugin, written as an animation in the
  output format where it holds one (:mod:`gantools.image.animation`), else the first frame with
  a warning.

Frames go through the plugin ``--batch-frames`` at a time: a network plugin runs them as one
(N, C, H, W) pass where they fit its runner's memory budget untiled (:mod:`gantools.video.batching`),
with the same results; progress still counts frames. Instance-norm plugins (``stylize``) process a
clip with statistics pooled over sample frames spread over it (:mod:`gantools.video.clipstats`): no
flicker. Video needs an image plugin of scale >= 1 and ``--batch-frames`` a number or ``auto``
(:func:`check_jobs`, usage errors before any work).
"""

from __future__ import annotations

import os
import re
import time
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from gantools.batch_plan import BatchUsageError, Job, output_status
from gantools.video import names

#: an animation's frames together may hold at most this many times ``--max-pixels`` pixels
ANIMATION_BUDGET = 4


class Runner(Protocol):
    """What the hooks use of :class:`gantools.batch._Runner`."""

    plugin: Any
    options: Any
    reporter: Any
    summary: Any
    claims: dict[int, Any]

    def claim(self, job: Job) -> bool: ...
    def record(self, job: Job, status: str, error: str | None = None, reason: str | None = None) -> None: ...
    def fail(self, job: Job, exc: BaseException, named: bool = False) -> None: ...
    def check_result(self, result: Any) -> None: ...


def is_media(job: Job) -> bool:
    """Whether ``job`` runs here rather than in the image pipeline."""
    return getattr(job, "media", None) is not None


def check_jobs(plugin: Any, jobs: Sequence[Job], options: Any) -> None:
    """:class:`BatchUsageError` before any work: a ``--batch-frames`` that is not a number or
    ``auto``, a video job with a plugin that cannot take video (not an image plugin, or scale
    below 1), or ``--codec``/``--crf``/``--pix-fmt`` that the bundled FFmpeg cannot use. Without
    PyAV the codec settings are not checked (each video fails alone)."""
    from gantools.video.batching import batch_frames

    try:
        batch_frames(getattr(options, "batch_frames", "auto"))
    except ValueError as exc:
        raise BatchUsageError(str(exc)) from None
    videos = [j for j in jobs if j.state == "todo" and j.media in (names.VIDEO, names.FRAMES)]
    if not videos:
        return
    d = plugin.descriptor
    if d.kind != "image" or plugin.scale < 1 or 3 not in d.channels:
        raise BatchUsageError(f"plugin {d.name!r} cannot process video (x{plugin.scale:g}, {d.kind} plugin): "
                              "videos take image plugins of scale 1 or more")
    from gantools.video.codec import check_settings

    try:
        check_settings(_settings(options), {names.container(j.dest) for j in videos if j.media == names.VIDEO})
    except ImportError:
        return
    except ValueError as exc:
        raise BatchUsageError(str(exc)) from None


def _settings(options: Any) -> Any:
    from gantools.video.codec import EncodeSettings

    return EncodeSettings(getattr(options, "codec", None), getattr(options, "crf", None),
                          getattr(options, "pix_fmt", None))


def run_jobs(runner: Runner, jobs: Sequence[Job]) -> None:
    """Run the media ``jobs`` one by one, recording each; Ctrl+C stops (``summary.interrupted``)."""
    try:
        for job in jobs:
            if not runner.claim(job):
                continue
            run_claimed(runner, job)
            if runner.summary.interrupted:
                break
    except KeyboardInterrupt:
        runner.summary.interrupted = True
    finally:
        for job in jobs:
            claim = runner.claims.pop(id(job), None)
            if claim is not None:
                claim.release()


def run_claimed(runner: Runner, job: Job) -> None:
    """Run one claimed media job and record it (failures as one line); a ``KeyboardInterrupt``
    sets ``summary.interrupted`` and records nothing."""
    from gantools.image.codec import ImageError
    from gantools.video.codec import VideoError

    plugin = runner.plugin
    progress = plugin.progress
    plugin.progress = None  # the bar moves per frame, not per tile
    try:
        status = {names.VIDEO: _video, names.FRAMES: _frames, names.ANIMATION: _animation}[job.media](runner, job)
    except KeyboardInterrupt:
        runner.summary.interrupted = True
        return
    except (VideoError, ImageError) as exc:
        runner.fail(job, exc, named=str(exc).startswith((job.source.shown, job.dest)))
        return
    except BaseException as exc:  # noqa: BLE001 - even a plugin's sys.exit() fails one file only
        runner.fail(job, exc if isinstance(exc, Exception) else RuntimeError(f"the plugin raised {exc!r}"))
        return
    finally:
        plugin.progress = progress
    runner.record(job, status)


def takes_animation(job: Job, decoded: Any) -> bool:
    """Whether an image job whose first frame was decoded is an animation to process whole:
    an APNG or animated WebP file written as PNG or WebP."""
    from gantools.image.animation import is_animated_format

    return (decoded.frames > 1 and job.source.path != "-" and decoded.format in ("png", "webp")
            and is_animated_format(job.format))


def run_animation(runner: Runner, job: Job) -> None:
    """Process an image job that :func:`takes_animation` (already claimed) as an animation;
    ``KeyboardInterrupt`` passes on to the image pipeline."""
    job.media = names.ANIMATION
    run_claimed(runner, job)
    if runner.summary.interrupted:
        raise KeyboardInterrupt


# -- progress ---------------------------------------------------------------------------------
class FrameMeter:
    """Frames done, frames per second and ETA of one file, reported as they change."""

    def __init__(self, reporter: Any, shown: str, total: int) -> None:
        self.reporter, self.shown, self.total = reporter, shown, max(0, total)
        self.done = 0
        self.start = time.perf_counter()

    def advance(self) -> None:
        self.done += 1
        total = max(self.total, self.done)
        fps = self.done / max(time.perf_counter() - self.start, 1e-9)
        frames = getattr(self.reporter, "frames", None)
        if frames is not None:
            frames(self.shown, self.done, total, fps)
        else:
            self.reporter.step(self.done, total)


# -- frames ---------------------------------------------------------------------------------------
def _processed(runner: Runner, items: Iterable[tuple[Any, np.ndarray | None]]) -> Iterator[tuple[Any, Any]]:
    """``(key, result)`` for each ``(key, image)`` of ``items``, in order: the images through the
    plugin in batches of ``--batch-frames`` (:mod:`gantools.video.batching`; sized on the first
    image), each result checked; an image ``None`` (nothing to compute) gives ``None``."""
    from gantools.video.batching import frames_per_batch, process_frames

    size = 0
    pending: list[tuple[Any, np.ndarray | None]] = []

    def flush() -> Iterator[tuple[Any, Any]]:
        results = iter(process_frames(runner.plugin, [image for _, image in pending if image is not None]))
        for key, image in pending:
            result = None if image is None else next(results)
            if image is not None:
                runner.check_result(result)
            yield key, result
        pending.clear()

    for key, image in items:
        if image is not None and not size:
            size = frames_per_batch(runner.plugin, getattr(runner.options, "batch_frames", "auto"), image.shape)
        pending.append((key, image))
        waiting = sum(image is not None for _, image in pending)
        if not waiting or waiting >= size:  # frames with nothing to compute pass at once while none wait
            yield from flush()
    yield from flush()


def _video_frame(runner: Runner, result: np.ndarray, index: int, shape: list) -> np.ndarray:
    """The plugin's result for video frame ``index``: it must stay ``uint8`` BGR of one size."""
    from gantools.video.codec import VideoError

    if result.dtype != np.uint8 or result.ndim != 3 or result.shape[2] != 3:
        raise VideoError(f"plugin {runner.plugin.descriptor.name!r} returned a {result.dtype} array of shape "
                         f"{result.shape} for a BGR video frame")
    if not shape:
        shape.append(result.shape)
    elif result.shape != shape[0]:
        raise VideoError(f"frame {index} gives a {result.shape[1]}x{result.shape[0]} result, not "
                         f"{shape[0][1]}x{shape[0][0]}: frame sizes that change are not supported")
    return result


# -- videos -------------------------------------------------------------------------------------
def _samples(path: str, shown: str, total: int) -> list[np.ndarray]:
    """The frames :mod:`gantools.video.clipstats` pools statistics over (decoding the whole
    video once, so a corrupt or empty one fails here, before anything is written)."""
    from gantools.video.clipstats import sample_indices
    from gantools.video.codec import open_video, to_array

    wanted = set(sample_indices(total))
    picked: list[np.ndarray] = []
    with open_video(path, shown) as reader:
        for index, frame in enumerate(reader.frames()):
            if index in wanted:
                picked.append(to_array(frame))
    return picked


def _prepare(runner: Runner, job: Job) -> tuple[int, list[np.ndarray]]:
    """The frame count of ``job``'s video and, for an instance-norm plugin, its sample frames."""
    from gantools.video.codec import open_video

    with open_video(job.source.path, job.source.shown) as reader:
        total = reader.count()
    samples = _samples(job.source.path, job.source.shown, total) if _freezable(runner.plugin) else []
    return total, samples


def _freezable(plugin: Any) -> bool:
    """:func:`gantools.video.clipstats.freezable` (imported only for plugins that hold a runner:
    it loads torch)."""
    if getattr(plugin, "runner", None) is None:
        return False
    from gantools.video.clipstats import freezable

    return freezable(plugin)


def _frozen(plugin: Any, samples: list[np.ndarray]) -> Any:
    """:func:`gantools.video.clipstats.clip_statistics` over ``samples`` (nothing without them)."""
    if not samples:
        return nullcontext(False)
    from gantools.video.clipstats import clip_statistics

    return clip_statistics(plugin, samples)


def _video(runner: Runner, job: Job) -> str:
    """A video through the plugin into ``job.dest`` (see the module docstring)."""
    from gantools.image.atomic import atomic_path
    from gantools.video.codec import VideoWriter, open_video, to_array

    src, shown = job.source.path, job.source.shown
    total, samples = _prepare(runner, job)
    warnings: list[str] = []
    shape: list = []
    with _frozen(runner.plugin, samples), open_video(src, shown) as reader:
        with atomic_path(job.dest, suffix=".part") as temp:
            writer = VideoWriter(str(temp), names.container(job.dest), reader.container, _settings(runner.options),
                                 warnings.append)
            meter = FrameMeter(runner.reporter, shown, total)
            decoded = (((index, frame), to_array(frame))
                       for index, frame in enumerate(reader.frames(copy=writer.copy), 1))
            try:
                for (index, frame), result in _processed(runner, decoded):
                    result = _video_frame(runner, result, index, shape)
                    if writer.video is None:
                        writer.start(reader.video, frame, result)
                    writer.frame(result, frame)
                    meter.advance()
                writer.close()
            except BaseException:
                writer.abort()
                raise
    for text in warnings:
        runner.reporter.warning(f"{shown}: {text}")
    return "done"


def _frames(runner: Runner, job: Job) -> str:
    """A video through the plugin into numbered images ``job.dest`` (a ``%06d`` pattern)."""
    from gantools import image as gio
    from gantools.video.codec import open_video, to_array

    src, shown, opts = job.source.path, job.source.shown, runner.options
    total, samples = _prepare(runner, job)
    if not samples:  # decode once before writing anything: a bad video leaves no frames behind
        with open_video(src, shown) as reader:
            for _ in reader.frames():
                pass
    _remove_stale_frame_temps(job.dest)
    computed = 0
    shape: list = []
    with _frozen(runner.plugin, samples), open_video(src, shown) as reader:
        meter = FrameMeter(runner.reporter, shown, total)
        wanted = ((index, to_array(frame) if _wanted(names.frame_path(job.dest, index), opts) else None)
                  for index, frame in enumerate(reader.frames(), 1))
        for index, result in _processed(runner, wanted):
            if result is not None:
                result = _video_frame(runner, result, index, shape)
                gio.write_image(names.frame_path(job.dest, index),
                                gio.encode_image(result, job.format, quality=opts.quality, background=opts.background))
                computed += 1
            meter.advance()
    return "done" if computed else "skipped"


def _wanted(dest: str, opts: Any) -> bool:
    """Whether frame file ``dest`` is to be computed (``--overwrite``, or not complete yet)."""
    return bool(opts.overwrite) or output_status(dest) != "complete"


def _remove_stale_frame_temps(pattern: str) -> None:
    """Remove the temporary files a killed run left for frames of ``pattern`` (``.NAME_000001.png.xxxxxxxx.part``)."""
    path = Path(pattern)
    head, _, tail = path.name.rpartition(names.FRAME_TOKEN)
    temp = re.compile(r"\." + re.escape(head) + r"\d{6,}" + re.escape(tail) + r"\.[A-Za-z0-9_]{8}\.part")
    with suppress(OSError):
        for entry in os.scandir(path.parent):
            if temp.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(OSError):
                    os.unlink(entry.path)


# -- animations ---------------------------------------------------------------------------------
def _animation(runner: Runner, job: Job) -> str:
    """An animation through the plugin into ``job.dest`` (animated where the format allows)."""
    from gantools import image as gio
    from gantools.image import formats as image_formats
    from gantools.image.animation import encode_animation, first_frame_note, is_animated_format, read_animation

    opts, plugin, shown = runner.options, runner.plugin, job.source.shown
    anim = read_animation(job.source.path, name=shown, max_pixels=opts.max_pixels)
    h, w = anim.frames[0].shape[:2]
    out_h, out_w = plugin.output_size(h, w)
    animated = is_animated_format(job.format) and len(anim.frames) > 1
    label = image_formats.get(job.format).label if job.format in image_formats.FORMATS else job.format.upper()
    if not animated and len(anim.frames) > 1:
        runner.reporter.warning(f"{shown}: {first_frame_note(len(anim.frames), label)}")
    frames = anim.frames if animated else anim.frames[:1]
    _check_animation_size(len(frames), out_h, out_w, job.format, opts.max_pixels)
    meter = FrameMeter(runner.reporter, shown, len(frames))
    results = []
    for _, result in _processed(runner, enumerate(frames)):
        results.append(result)
        meter.advance()
    if animated:
        data = encode_animation(results, anim.durations, anim.plays, job.format, quality=opts.quality)
    else:
        data = gio.encode_image(results[0], job.format, quality=opts.quality, background=opts.background)
    gio.write_image(job.dest, data)
    return "done"


def _check_animation_size(count: int, h: int, w: int, fmt: str, max_pixels: int | None) -> None:
    """``ValueError`` when the result could not be written or held: above the format's side
    limit, or all frames together above :data:`ANIMATION_BUDGET` x ``--max-pixels``."""
    from gantools.image import formats as image_formats

    side = image_formats.get(fmt).max_side if fmt in image_formats.FORMATS else 65_535
    if side and max(h, w) > side:
        raise ValueError(f"the result would be {w}x{h}, above the limit of {side} pixels a side; choose another --format")
    if max_pixels is not None and count * h * w > ANIMATION_BUDGET * max_pixels:
        raise ValueError(f"the result would be {count} frames of {w}x{h}, more than {ANIMATION_BUDGET} x --max-pixels "
                         f"({max_pixels}) pixels in all; raise --max-pixels")


__all__ = ["ANIMATION_BUDGET", "FrameMeter", "check_jobs", "is_media", "run_animation", "run_claimed", "run_jobs",
           "takes_animation"]
