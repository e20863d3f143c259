"""Which inputs are videos or animations and where their results go (names only: no PyAV, no Pillow).

Rules (``gantools run`` documents them for users):

* A video is found by its extension (:data:`VIDEO_EXTENSIONS`); a GIF too (``.gif``). PNG and
  WebP files are images until their header says they hold several frames (APNG, animated WebP):
  :mod:`gantools.video.jobs` then processes them as animations.
* ``-o out/`` with a video writes ``out/NAME.mp4`` (the ``--name`` template with ``{ext}`` =
  ``mp4``; a template ending in an image extension gets ``.mp4`` instead). ``-o clip_x4.mp4``
  (one video input, an extension of :data:`WRITABLE`) writes that file, in the container its
  extension names. With ``--frames`` a video becomes numbered images ``NAME_000001.png`` in the
  ``-o`` folder (the template's name with ``_%06d`` before the extension; ``--format`` picks the
  image format, PNG by default).
* A GIF keeps its format (``out/NAME.gif``) unless ``--format`` names another one: PNG and WebP
  hold animations (APNG, animated WebP); JPEG, TIFF and BMP get the first frame with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

#: extension -> FFmpeg demuxer family of the videos gantools reads (by extension, like images)
VIDEO_EXTENSIONS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
    ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".wmv": "asf",
    ".flv": "flv", ".3gp": "3gp", ".ogv": "ogg",
}
#: extension -> FFmpeg muxer of the video files gantools writes
WRITABLE = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
#: the extension of a video written into an output folder
FOLDER_EXTENSION = ".mp4"
#: extensions of animations found by name (APNG and animated WebP are found by their header)
ANIMATION_EXTENSIONS = {".gif": "gif"}
#: media kinds of a :class:`gantools.batch_plan.Job`
VIDEO, FRAMES, ANIMATION = "video", "frames", "animation"
#: the frame number inserted before the extension of ``--frames`` outputs, and its placeholder
FRAME_NUMBER, FRAME_TOKEN = "_%06d", "%06d"


def suffix(path: str | os.PathLike) -> str:
    """The lower-case extension of ``path`` (``""`` for none)."""
    return Path(path).suffix.lower()


def is_video_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension."""
    return suffix(path) in VIDEO_EXTENSIONS


def is_media_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a video or an animation by its extension (folder scans take these)."""
    return suffix(path) in VIDEO_EXTENSIONS or suffix(path) in ANIMATION_EXTENSIONS


def media_kind(path: str | os.PathLike, frames: bool = False) -> str | None:
    """``"video"`` (``"frames"`` with ``--frames``), ``"animation"`` or ``None`` for the input ``path``."""
    if is_video_name(path):
        return FRAMES if frames else VIDEO
    return ANIMATION if suffix(path) in ANIMATION_EXTENSIONS else None


def single_output(source: str, output: str, frames: bool = False) -> str | None:
    """The media kind when ``output`` can be the one result file of the input ``source``: a video
    into a writable video name, an animation into ``.gif`` or an image name; else ``None``."""
    from gantools.image.formats import format_from_name

    kind = media_kind(source, frames)
    if kind == VIDEO and suffix(output) in WRITABLE:
        return kind
    if kind == ANIMATION and (suffix(output) in ANIMATION_EXTENSIONS or format_from_name(output) is not None):
        return kind
    return None


def single_format(source: str, output: str, frames: bool = False) -> tuple[str | None, str | None, str | None]:
    """``(media kind, format, problem)`` of the one input ``source`` written to the file ``output``:
    ``(None, None, None)`` for an image; a ``problem`` when it cannot be written there."""
    from gantools.image.formats import format_from_name

    kind = media_kind(source, frames)
    if kind is None:
        return None, None, None
    if single_output(source, output, frames) is None:
        return kind, None, _wrong_output(kind)
    fmt = container(output) if kind == VIDEO else (format_from_name(output) or ANIMATION_EXTENSIONS[suffix(output)])
    return kind, fmt, None


def _wrong_output(kind: str) -> str:
    if kind == FRAMES:
        return "--frames writes numbered images into a folder: give -o a folder"
    return f"a video is written to a video file ({', '.join(WRITABLE)}), or with --frames into a folder"


def folder_format(source_name: str, forced: str | None, frames: bool = False) -> tuple[str, str, str] | None:
    """``(media kind, format, {ext})`` of a media input written into an output folder; ``None``
    for an image. ``forced`` (``--format``) picks the image format of frames and animations."""
    from gantools.image.formats import FORMATS

    kind = media_kind(source_name, frames)
    if kind == VIDEO:
        return kind, WRITABLE[FOLDER_EXTENSION], FOLDER_EXTENSION[1:]
    if kind == FRAMES:
        fmt = forced or "png"
        return kind, fmt, FORMATS[fmt][1:]
    if kind == ANIMATION:
        fmt = forced or "gif"
        return kind, fmt, "gif" if fmt == "gif" else FORMATS[fmt][1:]
    return None


def folder_name(kind: str | None, rendered: str, fmt: str) -> tuple[str, str]:
    """The output name and format of a media input once ``--name`` is rendered (``rendered``)."""
    if kind == VIDEO:
        name = video_name(rendered)
        return name, container(name)
    if kind == FRAMES:
        return frames_pattern(rendered), fmt
    return rendered, fmt


def is_complete(path: str | os.PathLike) -> bool:
    """For a video output name, whether the file opens as a video (PyAV; without it, any
    non-empty file); other names: ``True`` (the caller judges them)."""
    if not is_video_name(path):
        return True
    from gantools.video.codec import is_complete as video_complete

    return video_complete(path)


def output_problem(inputs: list[str], output: str, from_list: str | None, frames: bool = False) -> str | None:
    """Why ``-o output`` cannot be written for these inputs, or ``None`` when it can: a video or
    GIF name takes one video (one GIF) input; one video input takes no other file name (a name
    without an extension is a folder); ``--frames`` takes a folder."""
    single = from_list is None and len(inputs) == 1 and os.path.isfile(inputs[0])
    video_in = single and is_video_name(inputs[0])
    if frames and ((video_in and suffix(output)) or is_media_name(output)):
        return _wrong_output(FRAMES)
    if not is_media_name(output):
        return _wrong_output(VIDEO) if video_in and suffix(output) else None
    if video_in:
        return None if suffix(output) in WRITABLE else f"videos are written as {', '.join(WRITABLE)}"
    if suffix(output) in ANIMATION_EXTENSIONS:
        return None if single and media_kind(inputs[0]) == ANIMATION else "a GIF is written only from one GIF input"
    return "a video is written only from one video input"


def container(dest: str | os.PathLike) -> str:
    """The FFmpeg muxer for a video output path (``mp4`` for unknown extensions)."""
    return WRITABLE.get(suffix(dest), "mp4")


def video_name(rendered: str) -> str:
    """A rendered ``--name`` for a video result: its extension replaced by ``.mp4`` unless it is
    already a writable video extension."""
    path = Path(rendered)
    return rendered if path.suffix.lower() in WRITABLE else str(path.with_suffix(FOLDER_EXTENSION))


def frames_pattern(rendered: str) -> str:
    """``clip.png`` -> ``clip_%06d.png``: the ``--frames`` file name pattern (the last ``%06d``
    is the frame number; no other ``%`` is special)."""
    path = Path(rendered)
    return str(path.with_name(path.stem + FRAME_NUMBER + path.suffix))


def frame_path(pattern: str, index: int) -> str:
    """The file of frame ``index`` (1-based) of a :func:`frames_pattern`."""
    head, _, tail = pattern.rpartition(FRAME_TOKEN)
    return f"{head}{index:06d}{tail}"


__all__ = [
    "ANIMATION", "ANIMATION_EXTENSIONS", "FRAMES", "VIDEO", "VIDEO_EXTENSIONS", "WRITABLE", "container",
    "folder_format", "folder_name", "frame_path", "frames_pattern", "is_complete", "is_media_name",
    "is_video_name", "media_kind", "output_problem", "single_format", "single_output", "video_name",
]
