"""Hardening of ``gantools run``: bounded reads, signals, concurrent runs, pipes, odd inputs, messages.

Fixtures are made here; subprocesses write to files (no pipes left undrained); no timing asserts.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import gantools
from clitools import ROOT, cli, files, write
from gantools.batch import BatchError, BatchOptions, BatchUsageError, run_batch
from gantools.image.atomic import Claim
from gantools.plugin import Descriptor, OptionError, Plugin


def lines_of(text: bytes | str) -> list[str]:
    return (text.decode() if isinstance(text, bytes) else text).splitlines()


def run_to_files(tmp_path: Path, args: list[str], **kw) -> tuple[int, str]:
    """``python -m gantools ARGS`` with stdout and stderr in files; ``(exit code, stderr)``."""
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as fe:
        proc = subprocess.run([sys.executable, "-m", "gantools", *args], stderr=fe, timeout=120,
                              env={**os.environ, "COLUMNS": "200"}, check=False, **kw)
    return proc.returncode, err.read_text()


# -- 5: bounded reads ------------------------------------------------------------------------
def test_dev_zero_as_list_or_stdin_is_refused_without_reading_it_all(tmp_path):
    code, err = run_to_files(tmp_path, ["run", "resize", "--from-list", "/dev/zero", "-o", f"{tmp_path / 'o'}/"])
    assert code == 1 and "list is longer than 16 MB" in err
    with open("/dev/zero", "rb") as zero:
        code, err = run_to_files(tmp_path, ["run", "resize", "-", "-o", f"{tmp_path / 'o'}/"], stdin=zero)
    assert code == 1 and "<stdin>: not a recognised image" in err


def test_image_bytes_are_bounded_by_the_pixel_limit(tmp_path, monkeypatch):
    from gantools.image import codec

    big = write(tmp_path / "in" / "a.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    monkeypatch.setattr(codec, "byte_limit", lambda max_pixels: 2048)
    with pytest.raises(codec.ImageError, match="more than 0 MB"):
        codec.read_image(big)


# -- 12: SIGTERM and stale temporary files ------------------------------------------------------
SIGTERM_SCRIPT = """
import os, signal, sys
import cv2
from gantools.batch import BatchOptions, run_batch
from gantools.plugin import Descriptor, Plugin

class TermAtSecond(Plugin):
    descriptor = Descriptor("term", "test", "SIGTERMs its own process on the second image")
    calls = 0
    def process(self, image):
        type(self).calls += 1
        if self.calls == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return cv2.resize(image, None, fx=2, fy=2)

summary = run_batch(TermAtSecond(), [sys.argv[1]], sys.argv[2], options=BatchOptions(workers=1, progress="lines"))
sys.exit(summary.exit_code)
"""


def test_sigterm_is_handled_like_ctrl_c_and_stale_temps_are_removed(tmp_path):
    for i in range(5):
        write(tmp_path / "in" / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".3.png.k2j4_x9q.part"  # left by a run killed with kill -9
    stale.write_bytes(b"half an image")
    keep = [out / ".3.png.mine.part", out / "notes.part"]  # not gantools' pattern
    for path in keep:
        path.write_bytes(b"user data")
    script = tmp_path / "term.py"
    script.write_text(SIGTERM_SCRIPT)
    err = tmp_path / "err.txt"
    with open(err, "wb") as fe:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path / "in"), str(out)], stderr=fe,
                              stdout=subprocess.DEVNULL, cwd=ROOT, timeout=120, check=False,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    text = err.read_text()
    assert proc.returncode == 130, text
    assert "interrupted" in lines_of(text)[-1] and "done" in lines_of(text)[-1]  # the summary
    done = [f for f in files(out) if f.endswith(".png")]
    assert len(done) in (1, 2) and not any(f.endswith(".lock") for f in files(out))
    assert all(p.exists() for p in keep)
    summary = run_batch(_Double(), [tmp_path / "in"], out, options=BatchOptions(progress="off"))
    assert summary.done == 5 - len(done) and not stale.exists() and all(p.exists() for p in keep)


class _Double(Plugin):
    descriptor = Descriptor("double", "test", "2x nearest")

    def process(self, image):
        return cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


# -- 13: concurrent runs claim their outputs -----------------------------------------------------
def test_an_output_claimed_by_another_run_is_skipped_not_computed(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        write(tmp_path / "in" / name)
    out = tmp_path / "out"
    other = Claim(out / "a.png")  # another run is writing a.png
    assert other.acquire()
    calls = []

    class Counting(_Double):
        def process(self, image):
            calls.append(image.shape)
            return super().process(image)

    summary = run_batch(Counting(), [tmp_path / "in"], out, options=BatchOptions(progress="lines"))
    err = capsys.readouterr().err
    assert (summary.done, summary.skipped, len(calls)) == (1, 1, 1)
    assert files(out) == [".a.png.lock", "b.png"] and "a.png is being written by another run" in err
    other.release()
    assert files(out) == ["b.png"]
    summary = run_batch(Counting(), [tmp_path / "in"], out, options=BatchOptions(progress="off"))
    assert (summary.done, summary.skipped, len(calls)) == (1, 1, 2) and files(out) == ["a.png", "b.png"]


def test_a_claim_is_exclusive_and_survives_a_removed_lock_file(tmp_path):
    first, second = Claim(tmp_path / "x.png"), Claim(tmp_path / "x.png")
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire() and not Claim(tmp_path / "x.png").acquire()
    second.release()
    assert list(tmp_path.iterdir()) == []


# -- 14: broken pipe, closed stdout ------------------------------------------------------------
def test_a_reader_that_closes_early_fails_the_run_with_one_line(tmp_path):
    write(tmp_path / "a.png")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        code, err = run_to_files(tmp_path, ["run", "resize", str(tmp_path / "a.png"), "-o", "-"], stdout=write_end)
    finally:
        os.close(write_end)
    assert code == 1
    assert [l for l in lines_of(err) if l.startswith("error:")] == [
        f"error: {tmp_path / 'a.png'}: cannot write to stdout: broken pipe (the reader closed early)"]
    assert "Traceback" not in err and "Exception ignored" not in err


def test_closed_stdout_is_one_error_before_work(tmp_path):
    write(tmp_path / "a.png")
    code, err = run_to_files(tmp_path, ["run", "resize", str(tmp_path / "a.png"), "-o", "-"],
                             preexec_fn=lambda: os.close(1))
    assert code == 1 and lines_of(err) == ["error: standard output is closed; -o - and --json - need it"]


# -- 18: multi-frame inputs ------------------------------------------------------------------
def test_multi_frame_inputs_warn_once_each(tmp_path, capsys):
    """APNG and animated WebP stay animations (tests/test_video.py); multi-page TIFF warns."""
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "blue", "green")]
    src = tmp_path / "in"
    src.mkdir()
    for name, fmt in (("anim.png", "PNG"), ("pages.tif", "TIFF"), ("anim.webp", "WEBP")):
        frames[0].save(src / name, fmt, save_all=True, append_images=frames[1:])
    Image.new("RGB", (8, 6)).save(src / "still.png")
    summary = gantools.run("resize", [src], tmp_path / "out", progress="lines")
    warnings = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert summary.done == 4
    assert warnings == [f"warning: {src / 'pages.tif'}: has 3 frames; only the first is processed"]
    assert [Image.open(tmp_path / "out" / n).n_frames for n in ("anim.png", "anim.webp")] == [3, 3]


# -- 22: one device check for every plugin ---------------------------------------------------------
def test_device_is_checked_for_every_plugin_before_work(tmp_path):
    import torch

    with pytest.raises(OptionError, match="--device: 'bogus' is not one of"):
        gantools.load("resize", device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="CUDA is not available"):
            gantools.load("resize", device="cuda")
    write(tmp_path / "a.png")
    proc = cli("run", "resize", str(tmp_path / "a.png"), "-o", f"{tmp_path / 'out'}/", "--device", "bogus")
    assert proc.returncode == 2 and len(lines_of(proc.stderr)) == 1 and not (tmp_path / "out").exists()


# -- 23: messages ------------------------------------------------------------------------------
def test_float_tiff_says_float_samples(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "f.tif"), np.zeros((6, 8, 3), np.float32))  # Pillow cannot parse it
    summary = gantools.run("resize", [tmp_path / "in"], tmp_path / "out", progress="lines")
    assert summary.errors == [(str(tmp_path / "in" / "f.tif"),
                               f"{tmp_path / 'in' / 'f.tif'}: float32 samples are not supported "
                               "(only 8- and 16-bit images)")]


def test_option_messages_are_usage_errors_before_work(tmp_path):
    write(tmp_path / "a.png")
    proc = cli("run", "resize", str(tmp_path / "a.png"), "-o", f"{tmp_path / 'o'}/", "--scale", "nan")
    assert proc.returncode == 2 and "nan is not a number" in proc.stderr.decode()
    with pytest.raises(OptionError, match="nan is not a number"):
        gantools.load("resize", scale=float("nan"))
    proc = cli("run", "upscale", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "-o", f"{tmp_path / 'o'}/",
               "--tile", "1", "--model", "fidelity")
    assert proc.returncode == 2 and lines_of(proc.stderr) == [
        "error: option --tile: 1 must be 0 (off) or larger than the overlap 16"]
    assert not (tmp_path / "o").exists()


def test_stdin_twice_does_not_mention_from_list(tmp_path):
    with pytest.raises(BatchUsageError, match="'-' is given 2 times") as info:
        gantools.run("resize", ["-", "-"], tmp_path / "o")
    assert "--from-list" not in str(info.value)


def test_no_images_found_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(BatchError, match="no images found in") as info:
        gantools.run("resize", [tmp_path / "empty"], tmp_path / "o")
    assert info.value.exit_code == 1
    proc = cli("run", "resize", str(tmp_path / "empty"), "-o", f"{tmp_path / 'o'}/")
    assert proc.returncode == 1 and lines_of(proc.stderr)[0].startswith("error: no images found in ")


class Float64(Plugin):
    descriptor = Descriptor("float64", "test", "returns float64 (a plugin bug)")

    def process(self, image):
        return image.astype(np.float64)


def test_a_plugin_returning_float64_is_blamed(tmp_path, capsys):
    write(tmp_path / "in" / "a.png")
    summary = run_batch(Float64(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    assert summary.failed == 1 and "plugin 'float64' returned an invalid image: unsupported dtype float64" in (
        summary.errors[0][1])


def test_corrupt_config_json_on_resume_is_named(tmp_path):
    from gantools.train.rundir import CheckpointError, RunDir

    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: cannot resume"):
        RunDir(tmp_path).read_config()


# -- 24: library noise -----------------------------------------------------------------------------
def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_pillow_warnings_do_not_reach_the_user(tmp_path):
    data = cv2.imencode(".png", np.zeros((6, 8, 3), np.uint8))[1].tobytes()
    bad_apng = data[:33] + _chunk(b"acTL", struct.pack(">II", 0x90000000, 0)) + data[33:]  # Pillow: "Invalid APNG"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(bad_apng)
    proc = cli("run", "resize", str(tmp_path / "in"), "-o", f"{tmp_path / 'out'}/")
    assert proc.returncode == 0, proc.stderr
    assert [l for l in lines_of(proc.stderr) if not l.startswith(("[1/1]", "resize: 1 done"))] == []


# -- 25: limits checked before the work ----------------------------------------------------------------
def test_webp_size_limit_fails_the_file_before_its_compute(tmp_path, capsys):
    calls = []

    class Huge(_Double):
        scale = 2048

        def process(self, image):
            calls.append(1)
            raise AssertionError("must not run")

    write(tmp_path / "in" / "a.webp", np.zeros((8, 12, 3), np.uint8))
    summary = run_batch(Huge(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    assert calls == [] and summary.failed == 1
    assert "the result would be 24576x16384, above the WebP limit of 16383 pixels a side" in summary.errors[0][1]


def test_json_folder_name_is_refused_before_work(tmp_path):
    write(tmp_path / "in" / "a.png")
    with pytest.raises(BatchUsageError, match="--json: .*names a folder"):
        gantools.run("resize", [tmp_path / "in"], tmp_path / "out", json=str(tmp_path / "report") + "/")
    (tmp_path / "blocker").write_text("a file")
    with pytest.raises(BatchUsageError, match="--json: .*blocker is not a folder"):
        gantools.run("resize", [tmp_path / "in"], tmp_path / "out", json=str(tmp_path / "blocker" / "s.json"))
    assert not (tmp_path / "out").exists()


# -- 26: a bad name from one stem fails that file only ----------------------------------------------------
def test_a_stem_that_makes_a_bad_path_fails_only_that_file(tmp_path, capsys):
    odd, ok = write(tmp_path / "in" / "...png"), write(tmp_path / "in" / "b.png")
    summary = gantools.run("resize", [odd, ok], tmp_path / "out", name="{stem}/x.{ext}", progress="off")
    assert (summary.done, summary.failed) == (1, 1) and files(tmp_path / "out") == ["b/x.png"]
    assert "gives '../x.png', not a file name inside -o" in summary.errors[0][1]
