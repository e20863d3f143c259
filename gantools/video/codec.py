"""Reading and writing videos with PyAV (FFmpeg's libraries: ``pip install 'gantools[video]'``).

Decisions, stated once:

* Frames are decoded in display order and handed over as ``uint8`` BGR arrays (the plugin
  contract's layout): YUV is converted with the stream's colour matrix and range (an unspecified
  matrix is taken as BT.709 from 720 lines up, else BT.601, as players do). Sources of more than
  8 bits are reduced to 8.
* Every frame keeps its timestamp: the output video stream has the input's time base and each
  encoded frame the input frame's ``pts``, so variable frame rate survives (a frame without a
  timestamp gets the previous one plus one frame at the average rate; a frame whose timestamp
  does not increase is dropped with a warning). The stream's nominal rate, sample aspect ratio
  and colour tags are copied; YUV output gets the input's matrix and range (an unspecified input
  gets BT.709 from 720 output lines up, else BT.601, written explicitly).
* Rotation: the display matrix of the input (read from the frames' side data, else the stream's
  ``rotate`` tag) is written to the output stream; the pixels stay as stored.
* Encoding: ``--codec`` (default ``libx264``, ``libvpx-vp9`` for ``.webm``), ``--crf`` (default 18
  for libx264, the codec's own otherwise), ``--pix-fmt`` (default ``yuv420p`` where the codec takes
  it). A pixel format with subsampled chroma needs even sides: an odd result is padded by one
  row or column, a copy of the last one (one warning per file), never cropped.
* Audio and subtitle streams are copied packet by packet, unchanged (no re-encoding); one that
  the output container cannot hold (SRT into MP4) or a data/attachment stream is left out with
  one warning. Empty MP4 subtitle samples are not copied: the MP4 muxer writes them itself for
  the gaps between subtitles (copying them would double them).
* Bad input raises :class:`VideoError` naming the file: no video stream, a codec FFmpeg cannot
  decode, data FFmpeg reports as corrupt or truncated (demuxer errors, frames flagged corrupt,
  fewer frames than the header announces, or, where it announces no count, frames ending more
  than two frames (at least 0.1 s) before the duration it announces for the video), no frames at all. FFmpeg's own log lines are captured,
  never printed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    import av

#: encoder used when ``--codec`` is not given, per output container
DEFAULT_CODEC = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9"}
#: ``--crf`` used when not given (others: the codec's default)
DEFAULT_CRF = {"libx264": 18}
#: encoders that take ``crf`` (the value range is the codec's: 0-51 for x264/x265, 0-63 for VP9/AV1)
CRF_CODECS = frozenset({"libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1", "libaom-av1"})
#: encoders listed in messages when they are available
COMMON_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libvpx", "libsvtav1", "libaom-av1", "mpeg4", "ffv1",
                   "prores_ks", "png", "utvideo")
DEFAULT_PIX_FMT = "yuv420p"
#: AVColorSpace values: BT.709, unspecified, BT.470BG (601), SMPTE 170M (601)
BT709, UNSPECIFIED, BT601 = 1, 2, 6
#: AVColorRange values
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2


class VideoError(ValueError):
    """A one-line, user-facing problem with one video (the message names the file)."""


def load_av() -> Any:
    """The ``av`` module; ``ImportError`` with the install hint when PyAV is missing."""
    try:
        import av
    except ImportError:
        raise ImportError("videos need PyAV: pip install 'gantools[video]'") from None
    return av


@dataclass(frozen=True)
class EncodeSettings:
    """``--codec``, ``--crf`` and ``--pix-fmt`` (``None``: the defaults above)."""

    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None

    def codec_for(self, container: str) -> str:
        return self.codec or DEFAULT_CODEC.get(container, "libx264")


def check_settings(settings: EncodeSettings, containers: set[str]) -> None:
    """``ValueError`` naming the option when ``--codec``/``--crf``/``--pix-fmt`` cannot work with
    the bundled FFmpeg for outputs in ``containers`` (checked once, before any work)."""
    av = load_av()
    for container in sorted(containers):
        name = settings.codec_for(container)
        codec = _encoder(av, name)
        if settings.crf is not None and name not in CRF_CODECS:
            raise ValueError(f"option --crf: {name} has no crf setting (it has: {', '.join(sorted(CRF_CODECS))})")
        if settings.pix_fmt is not None:
            try:
                av.VideoFormat(settings.pix_fmt)
            except (ValueError, TypeError):
                raise ValueError(f"option --pix-fmt: {settings.pix_fmt!r} is not a pixel format FFmpeg knows") from None
            formats = [f.name for f in (codec.video_formats or ())]
            if formats and settings.pix_fmt not in formats:
                raise ValueError(f"option --pix-fmt: {name} does not take {settings.pix_fmt} "
                                 f"(it takes {', '.join(formats[:12])}{', ...' if len(formats) > 12 else ''})")


def _encoder(av: Any, name: str) -> Any:
    """The video encoder ``name``; ``ValueError`` naming ``--codec`` and what is available."""
    try:
        codec = av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - UnknownCodecError, ValueError
        codec = None
    if codec is None or codec.type != "video":
        have = ", ".join(n for n in COMMON_ENCODERS if _has_encoder(av, n))
        raise ValueError(f"option --codec: {name!r} is not a video encoder in the bundled FFmpeg "
                         f"(PyAV {av.__version__}); available include {have}")
    return codec


def _has_encoder(av: Any, name: str) -> bool:
    try:
        return av.codec.Codec(name, "w").type == "video"
    except Exception:  # noqa: BLE001
        return False


# -- reading ------------------------------------------------------------------------------------
@contextmanager
def _ffmpeg_log(av: Any) -> Iterator[list[tuple[int, str, str]]]:
    """Capture FFmpeg's error messages (``(level, source, text)``) instead of printing them."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def _open(av: Any, path: str, name: str) -> Any:
    """The open input container; :class:`VideoError` when FFmpeg cannot read it."""
    try:
        return av.open(path, "r")
    except FileNotFoundError:
        raise VideoError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise VideoError(f"{name}: is a directory, not a video file") from None
    except PermissionError as exc:
        raise VideoError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except av.error.FFmpegError as exc:
        raise VideoError(f"{name}: not a video FFmpeg can read (truncated or corrupt?): {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """FFmpeg's words for ``exc``, without the file name PyAV appends."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def _video_stream(container: Any, name: str) -> Any:
    """The first video stream that can be decoded; :class:`VideoError` otherwise."""
    streams = [s for s in container.streams if s.type == "video"]
    if not streams:
        kinds = ", ".join(f"{s.type} ({_codec_name(s)})" for s in container.streams) or "no streams at all"
        raise VideoError(f"{name}: has no video stream ({kinds})")
    for stream in streams:
        if stream.codec_context is not None:
            stream.thread_type = "AUTO"
            return stream
    raise VideoError(f"{name}: the video codec is not supported: the bundled FFmpeg cannot decode "
                     f"stream #{streams[0].index}")


def _codec_name(stream: Any) -> str:
    context = getattr(stream, "codec_context", None)
    return getattr(context, "name", None) or "unknown codec"


@dataclass
class _Check:
    """What the decoder reported while reading one video (see :meth:`Reader.frames`)."""

    name: str
    demuxer: str
    decoded: int = 0
    #: where the last decoded frame ends, in seconds from the stream's start
    end: Fraction = Fraction(0)

    def fail_on(self, logs: list[tuple[int, str, str]]) -> None:
        """:class:`VideoError` for a demuxer error (truncation, broken container structure)."""
        for _, source, text in logs:
            if source == self.demuxer:
                raise VideoError(f"{self.name}: truncated or corrupt video: {' '.join(text.split())}")


@contextmanager
def open_video(path: str, name: str) -> Iterator[Reader]:
    """The video at ``path`` opened for reading (``name`` is shown in messages); FFmpeg's log
    lines are captured while the block runs. :class:`VideoError` if it has no decodable video."""
    av = load_av()
    with _ffmpeg_log(av) as logs:
        container = _open(av, path, name)
        try:
            yield Reader(av, container, _video_stream(container, name), name, logs)
        finally:
            container.close()


class Reader:
    """An open input: ``container`` (PyAV), its ``video`` stream, and :meth:`frames`."""

    def __init__(self, av: Any, container: Any, video: Any, name: str, logs: list) -> None:
        self.av, self.container, self.video, self.name, self.logs = av, container, video, name, logs

    def copied_streams(self) -> list[Any]:
        """The input streams copied to the output: audio and subtitles."""
        return [s for s in self.container.streams if s.type in ("audio", "subtitle")]

    def frames(self, copy: Callable[[Any], None] | None = None) -> Iterator[Any]:
        """Decoded frames (PyAV ``VideoFrame``) in display order; once per reader.

        ``copy`` receives every packet of the audio and subtitle streams, in file order. Raises
        :class:`VideoError` (see the module docstring), also after the last frame when the data
        turned out corrupt or truncated or there was no frame at all, so a caller that writes as
        it goes keeps nothing before the iterator is exhausted.
        """
        check = _Check(self.name, self.container.format.name)
        streams = [self.video, *self.copied_streams()] if copy is not None else [self.video]
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.index != self.video.index:
                    if packet.size:
                        copy(packet)  # type: ignore[misc]
                    continue
                check.fail_on(self.logs)
                for frame in packet.decode():
                    yield self._checked(frame, check)
        except self.av.error.FFmpegError as exc:
            raise VideoError(f"{self.name}: truncated or corrupt video: {_reason(exc)}") from None
        check.fail_on(self.logs)
        announced = self.video.frames or 0
        if announced and check.decoded < announced:
            raise VideoError(f"{self.name}: truncated or corrupt video: {check.decoded} of {announced} frames decode")
        expected = None if announced else self.duration()  # Matroska/WebM announce no frame count
        if expected is not None and check.end < expected - self.tolerance():
            raise VideoError(f"{self.name}: truncated or corrupt video: frames up to {float(check.end):.2f} s of "
                             f"{float(expected):.2f} s decode")
        if not check.decoded:
            raise VideoError(f"{self.name}: the video has no frames")

    def duration(self) -> Fraction | None:
        """The video stream's duration in seconds as the file announces it (Matroska's
        ``DURATION`` tag, else the stream's own), ``None`` where it says none."""
        video = self.video
        tag = (video.metadata or {}).get("DURATION")
        try:
            hours, minutes, seconds = tag.split(":")
            return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except (AttributeError, ValueError):
            pass
        if video.duration and video.time_base:
            return video.duration * video.time_base
        return None

    def tolerance(self) -> Fraction:
        """How much shorter than announced the decoded frames may end: two frames, at least 0.1 s."""
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        return max(Fraction(1, 10), 2 / Fraction(rate))

    def _checked(self, frame: Any, check: _Check) -> Any:
        """``frame`` counted; :class:`VideoError` when the decoder flagged it corrupt."""
        check.decoded += 1
        if frame.pts is not None and frame.time_base:
            start = self.video.start_time or 0
            length = frame.duration or 0
            check.end = max(check.end, (frame.pts - start + length) * frame.time_base)
        if frame.is_corrupt:
            said = next((" ".join(t.split()) for _, s, t in reversed(self.logs) if s != check.demuxer), "no detail")
            raise VideoError(f"{self.name}: corrupt video data in frame {check.decoded} ({said})")
        return frame

    def count(self) -> int:
        """The number of video frames: the header's count, else the video packets (demuxed
        again from a second opening; nothing is decoded)."""
        if self.video.frames:
            return int(self.video.frames)
        try:
            with self.av.open(self.container.name, "r") as again:
                video = again.streams[self.video.index]
                return sum(1 for p in again.demux(video) if p.size)
        except self.av.error.FFmpegError:
            return 0  # reading the frames reports the problem


def to_array(frame: Any) -> np.ndarray:
    """A decoded frame as ``uint8`` BGR with the stream's colour matrix and range."""
    return frame.to_ndarray(format="bgr24", src_colorspace=_matrix(frame.colorspace, frame.height),
                            src_color_range=_range(frame))


def _matrix(colorspace: int, height: int) -> int:
    """``colorspace`` where specified, else what players assume for that many lines."""
    value = int(colorspace)
    if value in (0, UNSPECIFIED) or value > 10:
        return BT709 if height >= 720 else BT601
    return value


def _range(frame: Any) -> int:
    """The frame's colour range (full for the ``yuvj`` formats and tagged full range)."""
    if int(frame.color_range) == RANGE_FULL or frame.format.name.startswith("yuvj"):
        return RANGE_FULL
    return RANGE_LIMITED


def rotation_matrix(frame: Any, stream: Any = None) -> list[int] | None:
    """The display matrix (9 ints, FFmpeg's layout) of ``frame``'s side data, else from the
    stream's legacy ``rotate`` tag; ``None`` when there is none."""
    side = frame.side_data
    for entry in side:  # PyAV 18.1.0 iterates the entries, >= 18.1.1 their types (a real Mapping)
        item = entry if hasattr(entry, "type") else side[entry]
        if getattr(getattr(item, "type", None), "name", "") == "DISPLAYMATRIX":
            raw = bytes(item)
            if len(raw) == 36:
                return list(np.frombuffer(raw, "<i4").astype(int))
    tag = (getattr(stream, "metadata", None) or {}).get("rotate") if stream is not None else None
    if tag:
        try:
            return _rotation(float(tag))
        except ValueError:
            return None
    return None


def _rotation(degrees: float) -> list[int]:
    """FFmpeg's display matrix for a clockwise rotation tag of ``degrees`` (16.16 / 2.30 fixed point)."""
    t = np.deg2rad(-degrees)
    c, s = np.cos(t), np.sin(t)
    fixed = 1 << 16
    return [round(c * fixed), round(-s * fixed), 0, round(s * fixed), round(c * fixed), 0, 0, 0, 1 << 30]


# -- writing ------------------------------------------------------------------------------------
class VideoWriter:
    """An output container being filled: the processed video plus the copied streams.

    Streams are added when the first processed frame arrives (its size decides the encoder's),
    in the input's stream order; copied packets that come before are held until then.
    """

    def __init__(self, path: str, container: str, source: Any, settings: EncodeSettings,
                 warn: Callable[[str], None]) -> None:
        self.av = load_av()
        self.out = self.av.open(path, "w", format=container)
        self.container, self.settings, self.warn = container, settings, warn
        self.source = source  # the input container
        self.video_in: Any = None
        self.video: Any = None
        self.streams: dict[int, Any] = {}  # input stream index -> output stream (copies)
        self.held: list[Any] = []
        self.pad = (0, 0)
        self.last_pts: int | None = None
        self.dropped = 0

    # -- set-up ----------------------------------------------------------------------------
    def start(self, video_in: Any, first: Any, result: np.ndarray) -> None:
        """Add the output streams for input video stream ``video_in`` whose first decoded frame
        is ``first`` and processed result ``result``; then write the held packets."""
        self.video_in = video_in
        for stream in self.source.streams:
            if stream.index == video_in.index:
                self.video = self._video_stream(video_in, first, result)
            elif stream.type in ("audio", "subtitle"):
                self._copy_stream(stream)
            elif stream.type in ("data", "attachment"):
                self.warn(f"{stream.type} stream #{stream.index} is not copied")
        for packet in self.held:
            self.copy(packet)
        self.held = []

    def _video_stream(self, video_in: Any, first: Any, result: np.ndarray) -> Any:
        settings = self.settings
        name = settings.codec_for(self.container)
        if name not in self.out.supported_codecs:
            raise VideoError(f"{self.container} cannot hold {name} video; choose another --codec or output name")
        rate = video_in.average_rate or video_in.guessed_rate or video_in.base_rate or Fraction(25)
        stream = self.out.add_stream(name, rate=rate)
        pix_fmt = settings.pix_fmt or self._default_pix_fmt(name)
        h, w = result.shape[:2]
        self.pad = _padding(self.av, pix_fmt, h, w)
        if any(self.pad):
            self.warn(f"the result is {w}x{h}; {pix_fmt} needs even sides, so it is padded to "
                      f"{w + self.pad[1]}x{h + self.pad[0]} (last row/column repeated)")
        stream.width, stream.height, stream.pix_fmt = w + self.pad[1], h + self.pad[0], pix_fmt
        stream.time_base = video_in.time_base
        stream.codec_context.time_base = video_in.time_base
        if video_in.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = video_in.sample_aspect_ratio
        self.yuv = not self.av.VideoFormat(pix_fmt).is_rgb
        if self.yuv:
            self.matrix = _output_matrix(first.colorspace, h)
            self.range = RANGE_FULL if _range(first) == RANGE_FULL else RANGE_LIMITED
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_range = self.matrix, self.range
            primaries, trc = int(first.color_primaries), int(first.color_trc)
            default = BT709 if self.matrix == BT709 else BT601
            ctx.color_primaries = primaries if primaries not in (0, UNSPECIFIED) else default
            ctx.color_trc = trc if trc not in (0, UNSPECIFIED) else default
        crf = settings.crf if settings.crf is not None else DEFAULT_CRF.get(name)
        if crf is not None:
            stream.options = {"crf": str(crf), **({"b": "0"} if name.startswith("libvpx") else {})}
        matrix = rotation_matrix(first, video_in)
        if matrix is not None:
            stream.set_display_matrix(matrix)
        return stream

    def _default_pix_fmt(self, codec: str) -> str:
        formats = [f.name for f in (self.av.codec.Codec(codec, "w").video_formats or ())]
        return DEFAULT_PIX_FMT if not formats or DEFAULT_PIX_FMT in formats else formats[0]

    def _copy_stream(self, stream: Any) -> None:
        codec = _codec_name(stream)
        if codec not in self.out.supported_codecs:
            self.warn(f"{stream.type} stream #{stream.index} ({codec}) cannot be stored in {self.container}; "
                      "not copied (write .mkv to keep it)")
            return
        try:
            self.streams[stream.index] = self.out.add_stream_from_template(stream)
        except Exception as exc:  # noqa: BLE001 - PyAV raises several types for streams it cannot copy
            self.warn(f"{stream.type} stream #{stream.index} ({codec}) is not copied: {_reason(exc)}")

    # -- data ------------------------------------------------------------------------------
    def copy(self, packet: Any) -> None:
        """Write one packet of a copied stream unchanged (held until the streams exist)."""
        if self.video is None:
            self.held.append(packet)
            return
        stream = self.streams.get(packet.stream.index)
        if stream is None or not packet.size:
            return
        if packet.size == 2 and _codec_name(packet.stream) == "mov_text" and bytes(packet) == b"\0\0":
            return  # an empty MP4 subtitle: the MP4 muxer writes its own for every gap
        packet.stream = stream
        self.out.mux(packet)

    def frame(self, result: np.ndarray, source: Any) -> None:
        """Encode one processed frame with the timestamp of the decoded ``source`` frame."""
        pts = source.pts
        if pts is None:
            step = 1 / (self.video_in.average_rate or Fraction(25)) / self.video_in.time_base
            pts = 0 if self.last_pts is None else self.last_pts + max(1, round(step))
        if self.last_pts is not None and pts <= self.last_pts:
            self.dropped += 1
            return
        self.last_pts = pts
        if any(self.pad):
            import cv2

            result = cv2.copyMakeBorder(result, 0, self.pad[0], 0, self.pad[1], cv2.BORDER_REPLICATE)
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(result), format="bgr24")
        if self.yuv:
            frame = frame.reformat(format=self.video.pix_fmt, dst_colorspace=self.matrix,
                                   dst_color_range=self.range)
        else:
            frame = frame.reformat(format=self.video.pix_fmt)
        frame.pts, frame.time_base = pts, self.video_in.time_base
        self.out.mux(self.video.encode(frame))

    def close(self) -> None:
        """Flush the encoder and finish the file (the header is written even without frames)."""
        if self.video is not None:
            self.out.mux(self.video.encode(None))
        if self.dropped:
            self.warn(f"{self.dropped} frame(s) without increasing timestamps dropped")
        self.out.close()

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass


def _padding(av: Any, pix_fmt: str, h: int, w: int) -> tuple[int, int]:
    """Rows and columns to add so that ``pix_fmt``'s chroma planes cover the frame exactly."""
    fmt = av.VideoFormat(pix_fmt, 7, 7)
    chroma = fmt.components[1] if len(fmt.components) > 1 and not fmt.is_rgb else None
    if chroma is None:
        return 0, 0
    sub_h, sub_w = (2 if chroma.height < 7 else 1), (2 if chroma.width < 7 else 1)
    return (-h) % sub_h, (-w) % sub_w


def _output_matrix(colorspace: int, out_height: int) -> int:
    """The output's YUV matrix: the input's where specified, else by the output's height."""
    value = int(colorspace)
    if value in (0, UNSPECIFIED) or value > 10:
        return BT709 if out_height >= 720 else BT601
    return value


def ffmpeg_version() -> str:
    """``PyAV x.y (libavcodec a.b.c)`` for reports."""
    av = load_av()
    codec = av.library_versions.get("libavcodec", ())
    return f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, codec))})"


def is_complete(path: str | os.PathLike) -> bool:
    """Whether a video file opens and has a video stream (a cheap "this output was written" check);
    without PyAV, whether it is not empty."""
    try:
        av = load_av()
    except ImportError:
        return os.path.getsize(path) > 0
    try:
        with _ffmpeg_log(av), av.open(os.fspath(path), "r") as container:
            return any(s.type == "video" for s in container.streams)
    except Exception:  # noqa: BLE001 - anything unreadable is not complete
        return False


__all__ = [
    "EncodeSettings", "Reader", "VideoError", "VideoWriter", "check_settings", "ffmpeg_version", "is_complete",
    "load_av", "open_video", "rotation_matrix", "to_array",
]
