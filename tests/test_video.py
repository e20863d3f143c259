"""Video and animation inputs of ``gantools run`` (:mod:`gantools.video`, :mod:`gantools.image.animation`).

Every clip is made here with PyAV (tiny: 32x24, 6-12 frames) and every animation with Pillow;
references are computed independently (OpenCV resizes of the frames PyAV or Pillow decode, the
packets PyAV demuxes from the input).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import gantools
from clitools import cli, files, write
from gantools.batch import BatchUsageError
from gantools.plugin import Descriptor, Plugin

av = pytest.importorskip("av")

MS = Fraction(1, 1000)
VFR_PTS = [0, 40, 80, 200, 240, 400, 440, 600]  # variable frame rate, in ms


# -- making clips -------------------------------------------------------------------------------
def pattern(i: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Smooth BGR frame ``i`` (gradients that survive H.264 well)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = np.stack([40 + 150 * x / w, 60 + 120 * y / h, 30 + 20 * i + 0 * x], axis=-1)
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_clip(path: Path, n: int = 6, *, pts: list[int] | None = None, h: int = 24, w: int = 32,
              audio: bool = False, subtitles: bool = False, rotate: float | None = None,
              video: bool = True, codec: str = "libx264", lossless: bool = False) -> Path:
    """A clip with ``n`` frames of :func:`pattern` (timestamps ``pts`` in ms, default 40 ms apart),
    optionally an AAC audio stream, a mov_text subtitle and a display rotation."""
    pts = pts or [40 * i for i in range(n)]
    out = av.open(str(path), "w")
    v = None
    if video:
        v = out.add_stream(codec, rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv444p" if lossless else "yuv420p"
        v.time_base = MS
        if lossless:
            v.options = {"crf": "0"}
        if rotate is not None:
            v.set_display_rotation(rotate)
    a = out.add_stream("aac", rate=8000) if audio else None
    s = out.add_mux_stream("mov_text") if subtitles else None
    if s is not None:
        s.time_base = MS
    for i, t in enumerate(pts[:n] if video else []):
        frame = av.VideoFrame.from_ndarray(pattern(i, h, w), format="bgr24")
        frame.pts, frame.time_base = t, MS
        out.mux(v.encode(frame))
    if v is not None:
        out.mux(v.encode())
    if a is not None:
        for k in range(6):
            samples = np.sin(np.arange(1024, dtype=np.float32) * (0.05 + 0.01 * k))[None] * 0.3
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, k * 1024
            out.mux(a.encode(frame))
        out.mux(a.encode())
    if s is not None:
        for k, text in enumerate(("hello", "world")):
            body = text.encode()
            packet = av.Packet(len(body).to_bytes(2, "big") + body)
            packet.stream, packet.pts, packet.dts, packet.duration, packet.time_base = s, 100 * k, 100 * k, 90, MS
            out.mux(packet)
    if not video and a is None:
        out.start_encoding()
    out.close()
    return path


def decode(path: Path) -> dict:
    """Frames (BGR), pts, time base, rotation and every stream's type of a video."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        return {
            "frames": [f.to_ndarray(format="bgr24") for f in frames],
            "pts": [f.pts for f in frames], "time_base": stream.time_base,
            "rotation": frames[0].rotation, "types": [s.type for s in c.streams],
        }


def packets(path: Path, kind: str) -> list[tuple[Fraction, bytes]]:
    """``(pts in seconds, payload)`` of every packet of the first ``kind`` stream."""
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [(p.pts * stream.time_base, bytes(p)) for p in c.demux(stream) if p.size]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return cv2.PSNR(a, b)


def run(inputs, output, capsys=None, plugin="resize", **options):
    """``gantools.run`` with plain progress lines; returns (summary, stderr lines)."""
    options.setdefault("progress", "lines")
    summary = gantools.run(plugin, inputs, output, **options)
    lines = capsys.readouterr().err.splitlines() if capsys else []
    return summary, lines


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("error: ")]


# -- a video through resize -------------------------------------------------------------------------
def test_resize_keeps_timestamps_audio_subtitles_and_rotation(tmp_path, capsys) -> None:
    src = make_clip(tmp_path / "clip.mp4", 8, pts=VFR_PTS, audio=True, subtitles=True, rotate=90)
    summary, lines = run(src, tmp_path / "clip_x2.mp4", capsys, scale=2)
    assert summary.exit_code == 0 and summary.done == 1, lines
    source, result = decode(src), decode(tmp_path / "clip_x2.mp4")
    assert len(result["frames"]) == 8 and result["frames"][0].shape == (48, 64, 3)
    assert result["time_base"] == source["time_base"] and result["pts"] == source["pts"]  # VFR kept
    assert [p * result["time_base"] for p in result["pts"]] == [Fraction(t, 1000) for t in VFR_PTS]
    assert result["rotation"] == source["rotation"] == 90
    assert result["types"] == ["video", "audio", "subtitle"]
    assert packets(tmp_path / "clip_x2.mp4", "audio") == packets(src, "audio")  # bit-exact copies
    assert packets(tmp_path / "clip_x2.mp4", "subtitle") == packets(src, "subtitle")
    for before, after in zip(source["frames"], result["frames"]):
        reference = cv2.resize(before, (64, 48), interpolation=cv2.INTER_LANCZOS4)
        assert psnr(after, reference) > 30
    assert files(tmp_path) == ["clip.mp4", "clip_x2.mp4"]  # no temporary or lock file left


def test_odd_result_is_padded_by_one_pixel(tmp_path, capsys) -> None:
    src = make_clip(tmp_path / "clip.mkv", 6)
    summary, lines = run(src, tmp_path / "out.mkv", capsys, scale=1.1)  # 35x26: odd width
    assert summary.done == 1
    result = decode(tmp_path / "out.mkv")
    assert result["frames"][0].shape == (26, 36, 3)
    assert np.abs(result["frames"][0][:, 35].astype(int) - result["frames"][0][:, 34]).mean() < 6  # a repeated column
    assert any("padded to 36x26" in line for line in lines if line.startswith("warning: "))


def test_folder_of_videos_and_images_resumes(tmp_path, capsys) -> None:
    src = tmp_path / "in"
    write(src / "a.png")
    make_clip(src / "clip.mp4", 6)
    (src / "sub").mkdir()
    make_clip(src / "sub" / "b.mkv", 6)
    (src / "junk.mov").write_bytes(os.urandom(2000))
    report = tmp_path / "summary.json"
    summary, lines = run(src, tmp_path / "out", capsys, scale=2, recursive=True, json=str(report))
    assert files(tmp_path / "out") == ["a.png", "clip.mp4", "sub/b.mp4"]
    assert (summary.done, summary.failed, summary.exit_code) == (3, 1, 1)
    assert errors(lines) == [f"error: {src / 'junk.mov'}: not a video FFmpeg can read (truncated or corrupt?): "
                             "Invalid data found when processing input"]
    assert json.loads(report.read_text())["done"] == 3
    assert len(decode(tmp_path / "out" / "sub" / "b.mp4")["frames"]) == 6
    again, _ = run(src, tmp_path / "out", capsys, scale=2, recursive=True)
    assert (again.done, again.skipped, again.failed) == (0, 3, 1)  # complete outputs are skipped


def test_frames_are_numbered_images_and_resume(tmp_path, capsys) -> None:
    src = make_clip(tmp_path / "clip.mp4", 6)
    summary, lines = run(src, f"{tmp_path}/frames/", capsys, scale=2, frames=True)
    names = [f"clip_{i:06d}.png" for i in range(1, 7)]
    assert summary.done == 1 and files(tmp_path / "frames") == names, lines
    for name, frame in zip(names, decode(src)["frames"]):
        reference = cv2.resize(frame, (64, 48), interpolation=cv2.INTER_LANCZOS4)
        assert np.array_equal(cv2.imread(str(tmp_path / "frames" / name)), reference)
    kept = (tmp_path / "frames" / names[0]).stat().st_ino
    (tmp_path / "frames" / names[3]).unlink()
    (tmp_path / "frames" / f".{names[3]}.a1b2c3d4.part").write_bytes(b"left by kill -9")
    again, _ = run(src, tmp_path / "frames", capsys, scale=2, frames=True)
    assert again.done == 1 and files(tmp_path / "frames") == names  # the stale temporary file is gone
    assert (tmp_path / "frames" / names[0]).stat().st_ino == kept  # only the missing frame was written
    third, _ = run(src, tmp_path / "frames", capsys, scale=2, frames=True)
    assert third.skipped == 1


# -- atomic writes ------------------------------------------------------------------------------------
class Breaks(Plugin):
    """Copies frames; raises ``error`` on the third one."""

    descriptor = Descriptor(name="breaks", task="test", description="raises mid-clip", scale=1)
    error: type[BaseException] = KeyboardInterrupt

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.calls = 0

    def process(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:
            raise self.error("stop")
        return image.copy()


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupt_or_error_mid_clip_leaves_nothing(tmp_path, capsys, error) -> None:
    src = make_clip(tmp_path / "clip.mp4", 8, audio=True)
    plugin = Breaks()
    plugin.error = error
    summary, lines = run(src, tmp_path / "out", capsys, plugin=plugin)
    assert summary.exit_code == (130 if error is KeyboardInterrupt else 1)
    assert plugin.calls == 3
    assert files(tmp_path) == ["clip.mp4"]  # no video, temporary or lock file
    if error is RuntimeError:
        assert errors(lines) == [f"error: {src}: stop"]


# -- bad input ----------------------------------------------------------------------------------------
def bad_videos(folder: Path) -> dict[str, str]:
    """Bad clips by name -> the problem their one error line states."""
    folder.mkdir(parents=True, exist_ok=True)
    make_clip(folder / "audio_only.mp4", audio=True, video=False)
    good = make_clip(folder / "good.mp4", 10).read_bytes()
    (folder / "good.mp4").unlink()
    (folder / "codec.mp4").write_bytes(good.replace(b"avc1", b"zzzz"))  # a codec FFmpeg does not know
    (folder / "cut.mp4").write_bytes(good[: len(good) // 2])  # no index: truncated
    mkv = make_clip(folder / "whole.mkv", 10).read_bytes()
    (folder / "whole.mkv").unlink()
    (folder / "short.mkv").write_bytes(mkv[: int(len(mkv) * 0.9)])  # frames missing at the end
    (folder / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 3000, np.uint8).tobytes())
    make_clip(folder / "empty.mkv", audio=True, n=0)  # a video stream without frames
    return {
        "audio_only.mp4": "has no video stream (audio (aac))",
        "codec.mp4": "the video codec is not supported",
        "cut.mp4": "not a video FFmpeg can read",
        "short.mkv": "truncated or corrupt video: frames up to 0.20 s of 0.40 s decode",
        "noise.mp4": "not a video FFmpeg can read",
        "empty.mkv": "the video has no frames",
    }


def test_bad_videos_fail_alone_with_one_line_each(tmp_path, capsys) -> None:
    expected = bad_videos(tmp_path / "in")
    summary, lines = run(tmp_path / "in", tmp_path / "out", capsys)
    assert (summary.done, summary.failed, summary.exit_code) == (0, len(expected), 1)
    found = errors(lines)
    assert len(found) == len(expected) and len(lines) == len(expected) + 1  # errors + the summary
    for name, problem in expected.items():
        assert sum(line.startswith(f"error: {tmp_path / 'in' / name}: {problem}") for line in found) == 1, (name, found)
    assert not (tmp_path / "out").exists() or files(tmp_path / "out") == []


def test_bad_options_and_outputs_are_usage_errors(tmp_path) -> None:
    src = make_clip(tmp_path / "clip.mp4", 6)
    with pytest.raises(BatchUsageError, match=r"option --codec: 'nosuch' is not a video encoder in the bundled FFmpeg"):
        gantools.run("resize", src, tmp_path / "out.mp4", codec="nosuch", progress="off")
    with pytest.raises(BatchUsageError, match=r"option --pix-fmt: libx264 does not take rgb48le"):
        gantools.run("resize", src, tmp_path / "out.mp4", pix_fmt="rgb48le", progress="off")
    with pytest.raises(BatchUsageError, match=r"cannot process video \(x0.5"):
        gantools.run("resize", src, tmp_path / "out.mp4", scale=0.5, progress="off")
    image = write(tmp_path / "a.png")
    proc = cli("run", "resize", str(image), "-o", str(tmp_path / "x.mp4"))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1
    assert "a video is written only from one video input" in err
    proc = cli("run", "resize", str(src), "-o", str(tmp_path / "x.png"), "--codec", "libx265")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "a video is written to a video file" in err
    assert sorted(os.listdir(tmp_path)) == ["a.png", "clip.mp4"]


def test_without_pyav_each_video_fails_with_the_install_hint(tmp_path, capsys, monkeypatch) -> None:
    src = make_clip(tmp_path / "clip.mp4", 6)
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    summary, lines = run(src, tmp_path / "out", capsys)
    assert summary.failed == 1
    assert errors(lines) == [f"error: {src}: videos need PyAV: pip install 'gantools[video]'"]


def test_help_and_batch_import_no_pyav() -> None:
    code = ("import sys; import gantools.batch, gantools.cli.run, gantools.video.jobs\n"
            "from gantools.cli import main\n"
            "try:\n    main(['run', 'resize', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('AV', 'av' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--codec" in proc.stdout and "--frames" in proc.stdout
    assert "AV False" in proc.stderr


# -- no flicker -----------------------------------------------------------------------------------------
def test_stylize_clip_statistics_remove_flicker(tmp_path) -> None:
    """A camera pans over a scene into which bright and dark blocks enter. Per-frame instance
    norm changes the tone of the content both frames share; statistics frozen over the clip do not."""
    import torch
    from test_stylize import TINY

    from gantools.nn import create_arch
    from gantools.nn.layers.norm import TileableInstanceNorm
    from gantools.train.export import export_generator

    torch.manual_seed(0)
    model = create_arch("stylenet", **TINY)
    for m in model.modules():  # a trained style's norms have gains well above 1
        if isinstance(m, TileableInstanceNorm) and m.weight is not None:
            m.weight.data.mul_(3)
    weights = tmp_path / "w.safetensors"
    export_generator(weights, model, "stylenet", TINY, {"task": "stylize", "style": "tiny", "source": "t.png",
                                                        "mode": "painting"})
    w, h, step, n, margin = 128, 48, 6, 12, 32
    rng = np.random.default_rng(3)
    wide = w + step * (n - 1)
    y, x = np.mgrid[0:h, 0:wide]
    scene = np.stack([80 + 60 * np.sin(x / 9.0), 70 + 100 * y / h, 110 + 40 * np.cos(x / 13.0 + y / 7.0)], -1)
    for k in range(5):
        x0, y0 = int(rng.integers(w, wide - 12)), int(rng.integers(0, h - 16))
        scene[y0:y0 + 16, x0:x0 + 12] = 250 if k % 2 else 5
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    clip = av.open(str(tmp_path / "pan.mkv"), "w")
    v = clip.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt, v.options = w, h, "yuv444p", {"crf": "0"}  # lossless
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(scene[:, i * step:i * step + w]), format="bgr24")
        frame.pts = i
        clip.mux(v.encode(frame))
    clip.mux(v.encode())
    clip.close()

    plugin = gantools.load("stylize", weights=str(weights), device="cpu", threads=1)
    summary = gantools.run(plugin, tmp_path / "pan.mkv", tmp_path / "frames", frames=True, progress="off")
    assert summary.done == 1
    ours = [cv2.imread(str(tmp_path / "frames" / f"pan_{i:06d}.png")) for i in range(1, n + 1)]
    per_frame = [plugin.process(f) for f in decode(tmp_path / "pan.mkv")["frames"]]

    def jitter(frames: list[np.ndarray]) -> float:
        """Mean change of the mean colour of the content two consecutive frames share."""
        return float(np.mean([np.abs(a[:, step + margin:w - margin].mean((0, 1))
                                     - b[:, margin:w - step - margin].mean((0, 1))).mean()
                              for a, b in zip(frames, frames[1:])]))

    assert jitter(ours) < 0.5 * jitter(per_frame)


def test_progress_lines_count_frames() -> None:
    from gantools.progress import Reporter, eta

    out = io.StringIO()
    reporter = Reporter(out)
    for done in range(1, 201):
        reporter.frames("clip.mp4", done, 200, 4.0)
    assert out.getvalue().splitlines() == [f"  clip.mp4: frame {d}/200, 4.0 fps, ETA {eta(200 - d, 4.0)}"
                                           for d in (50, 100, 150)]
    assert (eta(150, 4.0), eta(4 * 3700, 4.0), eta(5, 0.0)) == ("0:38", "1:01:40", "?")


def test_clip_statistics_pool_the_samples() -> None:
    from gantools.video.clipstats import sample_indices

    assert sample_indices(100) == [6, 18, 31, 43, 56, 68, 81, 93]
    assert sample_indices(3) == [0, 1, 2] and sample_indices(0) == []


# -- animations ---------------------------------------------------------------------------------------
def animation(path: Path, fmt: str, colours=((200, 40, 40), (40, 200, 40), (40, 40, 200))) -> list[np.ndarray]:
    """A three-frame animation of gradients (durations 100, 200, 300 ms, plays twice); returns
    the frames as BGR."""
    frames = []
    for i, c in enumerate(colours):
        f = pattern(i, 12, 16)
        f[2:6, 2 + 3 * i:6 + 3 * i] = c
        frames.append(f)
    pics = [Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])) for f in frames]
    loop = 1 if fmt == "GIF" else 2  # GIF: repeats after the first play
    pics[0].save(path, fmt, save_all=True, append_images=pics[1:], duration=[100, 200, 300], loop=loop,
                 **({"lossless": True} if fmt == "WEBP" else {}))
    return frames


def read_frames(path: Path) -> tuple[list[np.ndarray], list[int], int | None, str]:
    im = Image.open(path)
    frames, durations = [], []
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB"))[:, :, ::-1])
        durations.append(round(im.info.get("duration", 0)))
    return frames, durations, im.info.get("loop"), im.format


@pytest.mark.parametrize("name, fmt, tolerance", [("anim.gif", "GIF", 25), ("anim.png", "PNG", 0),
                                                  ("anim.webp", "WEBP", 0)])
def test_animations_stay_animations(tmp_path, capsys, name, fmt, tolerance) -> None:
    src = tmp_path / "in" / name
    src.parent.mkdir()
    animation(src, fmt)
    sources, _, loop, _ = read_frames(src)
    summary, lines = run(tmp_path / "in", tmp_path / "out", capsys, scale=2,
                         **({"quality": 100} if fmt == "WEBP" else {}))
    assert summary.done == 1 and not [l for l in lines if l.startswith(("warning", "error"))], lines
    frames, durations, out_loop, out_fmt = read_frames(tmp_path / "out" / name)
    assert out_fmt == fmt and durations == [100, 200, 300] and out_loop == loop
    assert len(frames) == 3
    for before, after in zip(sources, frames):
        reference = cv2.resize(before, (32, 24), interpolation=cv2.INTER_LANCZOS4)
        assert np.abs(after.astype(int) - reference).mean() <= max(tolerance / 5, 0.0)
        assert np.abs(after.astype(int) - reference).max() <= tolerance


def test_gif_into_apng_and_into_jpeg(tmp_path, capsys) -> None:
    src = tmp_path / "a.gif"
    animation(src, "GIF")
    summary, lines = run(src, tmp_path / "a.png", capsys, scale=2)
    assert summary.done == 1
    frames, durations, loop, fmt = read_frames(tmp_path / "a.png")
    assert (len(frames), durations, loop, fmt) == (3, [100, 200, 300], 2, "PNG")  # GIF loop 1 = two plays
    summary, lines = run(src, tmp_path / "a.jpg", capsys, scale=2)
    assert summary.done == 1 and read_frames(tmp_path / "a.jpg")[0][0].shape == (24, 32, 3)
    assert [l for l in lines if l.startswith("warning: ")] == [
        f"warning: {src}: has 3 frames; JPEG holds one image, so only the first is processed"]


def test_animation_modules() -> None:
    from gantools.image.animation import encode_animation

    frames = [np.full((4, 6, 4), (10 * i, 20, 30, 255 if i else 0), np.uint8) for i in range(3)]
    data = encode_animation(frames, [50, 60, 70], 0, "webp", quality=100)
    im = Image.open(io.BytesIO(data))
    assert im.n_frames == 3 and im.info["loop"] == 0
    im.seek(0)
    assert np.asarray(im.convert("RGBA"))[0, 0, 3] == 0  # alpha kept
    with pytest.raises(ValueError, match="cannot hold an animation"):
        encode_animation(frames, [1, 1, 1], 0, "jpeg")
