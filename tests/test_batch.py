"""The batch runner: output rules, layout, collisions, resume, bad files, pipes, interrupts."""

from __future__ import annotations

import json
import os
import struct
import zlib
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import gantools
from clitools import cli, files, read, snapshot, write
from imagegen import gradient
from gantools.batch import BatchError, BatchOptions, BatchUsageError, run_batch
from gantools.plugin import Descriptor, Plugin


def run(inputs, output, capsys=None, **options):
    """``gantools.run("resize", ...)`` with plain progress lines; returns (summary, stderr lines)."""
    options.setdefault("progress", "lines")
    summary = gantools.run("resize", inputs, output, **options)
    lines = capsys.readouterr().err.splitlines() if capsys else []
    return summary, lines


def errors(lines):
    return [line for line in lines if line.startswith("error: ")]


def no_partials(root):
    return [f for f in files(root) if f.endswith(".part")] == []


# -- output rules --------------------------------------------------------------------------
def test_folder_input_non_recursive_takes_top_level_images_only(tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "a.png")
    write(src / "B.JPG")
    write(src / "sub" / "c.png")
    (src / "notes.txt").write_text("not an image")
    summary, lines = run([src], tmp_path / "out", capsys)
    assert files(tmp_path / "out") == ["B.JPG", "a.png"]
    assert read(tmp_path / "out" / "a.png").shape == (24, 32, 3)
    assert (tmp_path / "out" / "B.JPG").read_bytes()[:3] == b"\xff\xd8\xff"  # format kept
    assert (summary.done, summary.skipped, summary.failed, summary.exit_code) == (2, 0, 0, 0)
    assert lines[-1].startswith("resize: 2 done, 0 skipped, 0 failed in ")
    assert "images/s" in lines[-1]


def test_recursive_keeps_relative_layout_and_skips_hidden(tmp_path, capsys):
    src = tmp_path / "in"
    for rel in ("a.png", "x/b.png", "x/y/c.webp", ".cache/d.png", "x/.e.png"):
        write(src / rel)
    summary, _ = run([src], tmp_path / "out", capsys, recursive=True)
    assert files(tmp_path / "out") == ["a.png", "x/b.png", "x/y/c.webp"]
    assert summary.done == 3


def test_single_file_with_an_image_name_writes_that_file(tmp_path, capsys):
    src = write(tmp_path / "a.png")
    summary, _ = run([src], tmp_path / "res" / "big.jpg", capsys)
    out = tmp_path / "res" / "big.jpg"
    assert summary.done == 1 and out.read_bytes()[:3] == b"\xff\xd8\xff"
    assert read(out).shape == (24, 32, 3)


def test_single_file_into_a_folder(tmp_path, capsys):
    src = write(tmp_path / "a.png")
    run([src], tmp_path / "out", capsys)
    assert files(tmp_path / "out") == ["a.png"]


def test_format_contradicting_the_output_name_is_a_usage_error(tmp_path):
    src = write(tmp_path / "a.png")
    with pytest.raises(BatchUsageError, match="--format"):
        run([src], tmp_path / "a2.png", format="jpeg")


def test_format_and_quality_choose_the_encoding(tmp_path, capsys):
    src = write(tmp_path / "in" / "a.png")
    run([src], tmp_path / "q90", capsys, format="jpg", quality=90)
    run([src], tmp_path / "q10", capsys, format="jpeg", quality=10)
    big, small = (tmp_path / "q90" / "a.jpg").stat().st_size, (tmp_path / "q10" / "a.jpg").stat().st_size
    assert small < big
    with pytest.raises(BatchUsageError, match="--quality"):
        run([src], tmp_path / "bad", format="jpeg", quality=0)
    with pytest.raises(BatchUsageError, match="--format"):
        run([src], tmp_path / "bad", format="gif")


def test_name_template(tmp_path, capsys):
    src = write(tmp_path / "in" / "a.png")
    run([src], tmp_path / "out", capsys, name="{stem}_{plugin}_x{scale}.{ext}", scale=1.5)
    run([src], tmp_path / "out", capsys, name="{stem}.jpg")  # extension picks the format
    assert files(tmp_path / "out") == ["a.jpg", "a_resize_x1.5.png"]
    assert (tmp_path / "out" / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    for bad in ("{size}.png", "../{stem}.png", "{stem"):
        with pytest.raises(BatchUsageError, match="--name"):
            run([src], tmp_path / "out", name=bad)


def test_same_output_name_is_an_error_for_the_second_input(tmp_path, capsys):
    first, second = write(tmp_path / "one" / "a.png"), write(tmp_path / "two" / "a.png", gradient(5, 5))
    (tmp_path / "three").mkdir()
    third = write(tmp_path / "three" / "a.jpg")
    summary, lines = run([first, second, third], tmp_path / "out", capsys, format="png")
    assert (summary.done, summary.failed, summary.exit_code) == (1, 2, 1)
    assert read(tmp_path / "out" / "a.png").shape == (24, 32, 3)  # the first one, not overwritten
    errs = errors(lines)
    assert len(errs) == 2 and str(second) in errs[0] and "already the output of" in errs[0]


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, capsys):
    src = write(tmp_path / "in" / "a.png")
    write(tmp_path / "in" / "b.png")
    run([tmp_path / "in"], tmp_path / "out", capsys)
    stale = write(tmp_path / "out" / "a.png", gradient(5, 5)).read_bytes()  # a complete image: done
    summary, lines = run([tmp_path / "in"], tmp_path / "out", capsys)
    assert (summary.done, summary.skipped, summary.exit_code) == (0, 2, 0)
    assert (tmp_path / "out" / "a.png").read_bytes() == stale
    assert any("skipped" in line for line in lines)
    summary, _ = run([src], tmp_path / "out", capsys, overwrite=True)
    assert summary.done == 1 and read(tmp_path / "out" / "a.png").shape == (24, 32, 3)


def test_output_inside_the_input_tree_is_never_scanned(tmp_path, capsys):
    src = tmp_path / "photos"
    write(src / "a.png")
    write(src / "sub" / "b.png")
    out = src / "sub" / "upscaled"
    first, _ = run([src], out, capsys, recursive=True)
    second, _ = run([src], out, capsys, recursive=True)
    assert (first.done, second.done, second.skipped) == (2, 0, 2)
    assert files(out) == ["a.png", "sub/b.png"]


def test_never_writes_over_an_input(tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "a.png")
    before = snapshot(src)
    summary, lines = run([src], src, capsys, overwrite=True)
    assert (summary.failed, summary.exit_code) == (1, 1)
    assert "input file" in errors(lines)[0]
    assert snapshot(src) == before


def test_glob_inputs_go_to_the_top(tmp_path, capsys):
    write(tmp_path / "in" / "a.png")
    write(tmp_path / "in" / "deep" / "b.png")
    summary, _ = run([str(tmp_path / "in" / "**" / "*.png")], tmp_path / "out", capsys, recursive=True)
    assert files(tmp_path / "out") == ["a.png", "b.png"] and summary.done == 2


def test_from_list_lines_and_null(tmp_path, capsys):
    a, b = write(tmp_path / "in" / "a.png"), write(tmp_path / "in" / "odd\nname.png")
    (tmp_path / "nl.txt").write_text(f"{a}\n\n{tmp_path / 'in'}\n")
    summary, lines = run([], tmp_path / "out1", capsys, from_list=str(tmp_path / "nl.txt"))
    assert files(tmp_path / "out1") == ["a.png"] and summary.done == 1
    assert any(line.startswith("warning: ") and "is a folder" in line for line in lines)
    (tmp_path / "nul.bin").write_bytes(os.fsencode(a) + b"\0" + os.fsencode(b) + b"\0")
    summary, _ = run([], tmp_path / "out2", capsys, from_list=str(tmp_path / "nul.bin"), null=True)
    assert files(tmp_path / "out2") == ["a.png", "odd\nname.png"] and summary.done == 2


def test_stdin_twice_is_a_usage_error(tmp_path):
    with pytest.raises(BatchUsageError, match="stdin"):
        run(["-"], tmp_path / "out", from_list="-")
    with pytest.raises(BatchUsageError, match="no inputs"):
        run([], tmp_path / "out")


def test_stdout_takes_exactly_one_image(tmp_path):
    write(tmp_path / "in" / "a.png")
    write(tmp_path / "in" / "b.png")
    with pytest.raises(BatchUsageError, match="one image"):
        run([tmp_path / "in"], "-")
    with pytest.raises(BatchUsageError, match="--json"):
        run([tmp_path / "in" / "a.png"], "-", json="-")


# -- bad input ------------------------------------------------------------------------------
def png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_bad_files_fail_one_line_each_and_the_rest_is_processed(tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "good.png")
    good_png, good_jpg = (src / "good.png").read_bytes(), cv2.imencode(".jpg", gradient(32, 32))[1].tobytes()
    (src / "empty.png").write_bytes(b"")
    (src / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    (src / "cut.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (src / "text.jpg").write_text("hello, I am not a JPEG\n")
    (src / "huge.png").write_bytes(png_header_claiming(40000, 40000))
    before = snapshot(src)
    summary, lines = run([src, tmp_path / "missing.png"], tmp_path / "out", capsys, json=str(tmp_path / "s.json"))
    assert (summary.done, summary.failed, summary.exit_code) == (1, 6, 1)
    errs = errors(lines)
    assert len(errs) == 6
    for name in ("empty.png", "cut.png", "cut.jpg", "text.jpg", "huge.png", "missing.png"):
        assert sum(name in line for line in errs) == 1, name
    assert "40000x40000" in next(line for line in errs if "huge.png" in line)
    assert files(tmp_path / "out") == ["good.png"]  # no partial or empty outputs
    assert snapshot(src) == before  # inputs untouched
    report = json.loads((tmp_path / "s.json").read_text())
    assert (report["done"], report["failed"], report["exit_code"]) == (1, 6, 1)
    assert {f["status"] for f in report["files"]} == {"done", "failed"}


def test_max_pixels_option(tmp_path, capsys):
    src = write(tmp_path / "a.png", gradient(20, 20))
    summary, lines = run([src], tmp_path / "out", capsys, max_pixels=399)
    assert summary.failed == 1 and "limit of 399" in errors(lines)[0]
    summary, _ = run([src], tmp_path / "out", capsys, max_pixels=None)
    assert summary.done == 1


def pil_file(path: Path, img: Image.Image, fmt: str, **save) -> Path:
    buf = BytesIO()
    img.save(buf, fmt, **save)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def test_special_images_come_out_in_the_contract_layouts(tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "deep16.png", gradient(8, 8, 3, np.uint16))
    pil_file(src / "gray_alpha.png", Image.new("LA", (8, 6), (100, 128)), "PNG")
    pal = Image.new("P", (8, 6), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pil_file(src / "palette.png", pal, "PNG", transparency=0)
    pil_file(src / "cmyk.jpg", Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    pil_file(src / "rotated.jpg", Image.new("RGB", (8, 6), (0, 0, 255)), "JPEG", exif=exif.tobytes())
    summary, _ = run([src], tmp_path / "out", capsys)
    assert summary.done == 5 and summary.failed == 0
    out = tmp_path / "out"
    assert read(out / "deep16.png").dtype == np.uint16
    assert read(out / "gray_alpha.png").shape == (12, 16, 4)
    assert read(out / "palette.png").shape == (12, 16, 4)
    assert read(out / "cmyk.jpg").shape == (12, 16, 3)
    assert read(out / "rotated.jpg").shape == (16, 12, 3)  # upright: width and height swapped


def test_alpha_and_sixteen_bit_to_jpeg_warn_once_per_file(tmp_path, capsys):
    rgba = gradient(6, 6, 4)
    rgba[:, :, 3] = 10
    write(tmp_path / "in" / "alpha.png", rgba)
    write(tmp_path / "in" / "deep.png", gradient(6, 6, 3, np.uint16))
    summary, lines = run([tmp_path / "in"], tmp_path / "out", capsys, format="jpeg", background=(0, 0, 0))
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert summary.done == 2 and len(warnings) == 2
    assert "alpha.png" in warnings[0] and "alpha" in warnings[0] and "black" in warnings[0]
    assert "deep.png" in warnings[1] and "16-bit" in warnings[1]
    assert read(tmp_path / "out" / "alpha.jpg").max() < 60  # composited on black


def test_unwritable_output_folder(tmp_path, capsys):
    src = write(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BatchError) as info:
        run([src], tmp_path / "file" / "out")
    assert info.value.exit_code == 1 and "file" in str(info.value) and "\n" not in str(info.value)
    proc = cli("run", "resize", str(src), "-o", str(tmp_path / "file" / "out") + "/")  # one file: a folder ends in /
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().count("\n") == 0 and proc.stderr.startswith(b"error: ")


def test_unicode_paths_with_spaces(tmp_path, capsys):
    src = write(tmp_path / "mes photos" / "été 写真 1.png")
    summary, _ = run([src.parent], tmp_path / "sortie à plat", capsys)
    assert summary.done == 1
    assert files(tmp_path / "sortie à plat") == ["été 写真 1.png"]


# -- interrupts and the pipeline ----------------------------------------------------------------
class StopsAtSecond(Plugin):
    """Doubles images; raises KeyboardInterrupt on the second one (like Ctrl+C mid-run)."""

    descriptor = Descriptor("stopper", "test", "interrupts itself")

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def process(self, image):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return cv2.resize(image, None, fx=2, fy=2)


def test_ctrl_c_stops_cleanly(tmp_path, capsys):
    for i in range(6):
        write(tmp_path / "in" / f"{i}.png")
    summary = run_batch(StopsAtSecond(), [tmp_path / "in"], tmp_path / "out",
                        options=BatchOptions(workers=2, progress="lines", json=str(tmp_path / "s.json")))
    assert summary.interrupted and summary.exit_code == 130
    assert files(tmp_path / "out") == ["0.png"] and summary.done == 1
    assert no_partials(tmp_path)
    assert json.loads((tmp_path / "s.json").read_text())["interrupted"] is True
    assert "interrupted" in capsys.readouterr().err


class Failing(Plugin):
    descriptor = Descriptor("failing", "test", "fails on odd sizes")

    def process(self, image):
        if image.shape[0] % 2:
            raise RuntimeError("odd height\nnot supported")
        return image


def test_plugin_errors_are_per_file(tmp_path, capsys):
    write(tmp_path / "in" / "even.png", gradient(4, 4))
    write(tmp_path / "in" / "odd.png", gradient(5, 4))
    summary = run_batch(Failing(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    err = capsys.readouterr().err
    assert (summary.done, summary.failed) == (1, 1)
    assert err == f"error: {tmp_path / 'in' / 'odd.png'}: odd height not supported\n"  # off: errors only
    assert summary.errors == [(str(tmp_path / "in" / "odd.png"), f"{tmp_path / 'in' / 'odd.png'}: odd height not supported")]


class NoModel(Plugin):
    descriptor = Descriptor("nomodel", "test", "weights missing")
    setups = 0

    def setup(self):
        type(self).setups += 1
        raise FileNotFoundError("weights/x.safetensors is missing")

    def process(self, image):
        return image


def test_setup_failure_is_one_error_and_skipped_runs_do_not_set_up(tmp_path, capsys):
    write(tmp_path / "in" / "a.png")
    with pytest.raises(BatchError, match="nomodel: cannot set up the plugin: weights/x.safetensors is missing") as info:
        run_batch(NoModel(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    assert info.value.exit_code == 1
    assert not (tmp_path / "out").exists() or files(tmp_path / "out") == []
    write(tmp_path / "out" / "a.png")
    NoModel.setups = 0
    summary = run_batch(NoModel(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    assert summary.skipped == 1 and NoModel.setups == 0


def test_many_files_with_few_workers_keep_order_and_count(tmp_path, capsys):
    for i in range(12):
        write(tmp_path / "in" / f"{i:02d}.png", gradient(4 + i, 6))
    summary, lines = run([tmp_path / "in"], tmp_path / "out", capsys, workers=1)
    assert summary.done == 12 and [f.input for f in summary.files] == sorted(f.input for f in summary.files)
    for i in range(12):
        assert read(tmp_path / "out" / f"{i:02d}.png").shape[:2] == (2 * (4 + i), 12)


# -- through the command line ---------------------------------------------------------------
def test_stdin_to_stdout_pipe(tmp_path):
    data = cv2.imencode(".jpg", gradient(10, 12))[1].tobytes()
    proc = cli("run", "resize", "-", "-o", "-", "--scale", "2", "--format", "png", input=data)
    assert proc.returncode == 0, proc.stderr
    out = cv2.imdecode(np.frombuffer(proc.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    assert proc.stdout[:8] == b"\x89PNG\r\n\x1a\n" and out.shape == (20, 24, 3)


def test_stdin_into_a_folder_and_json_on_stdout(tmp_path):
    data = (write(tmp_path / "a.png")).read_bytes()
    proc = cli("run", "resize", "-", "-o", str(tmp_path / "out"), "--json", "-", "--format", "webp", input=data)
    assert proc.returncode == 0, proc.stderr
    assert files(tmp_path / "out") == ["stdin.webp"]
    report = json.loads(proc.stdout)
    assert report["done"] == 1 and report["files"][0]["input"] == "<stdin>"


def test_from_list_null_on_stdin(tmp_path):
    paths = [write(tmp_path / "in" / n) for n in ("a b.png", "ü.png")]
    listing = b"".join(os.fsencode(p) + b"\0" for p in paths)
    proc = cli("run", "resize", "--from-list", "-", "--null", "-o", str(tmp_path / "out"), input=listing)
    assert proc.returncode == 0, proc.stderr
    assert files(tmp_path / "out") == ["a b.png", "ü.png"]


def test_cli_exit_codes_for_failures_and_usage(tmp_path):
    write(tmp_path / "in" / "ok.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"")
    proc = cli("run", "resize", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert [line for line in proc.stderr.decode().splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path / 'in' / 'bad.png'}: empty file"
    ]
    proc = cli("run", "resize", str(tmp_path / "in"), "-o", "-", "--json", "-")
    assert proc.returncode == 2 and proc.stderr.decode().count("\n") == 1


# -- hardening: data loss and odd inputs ------------------------------------------------------------
def test_json_path_is_never_an_input_an_output_or_a_non_json_file(tmp_path, capsys):
    src = tmp_path / "in"
    a, b = write(src / "a.jpg"), write(src / "b.jpg")
    (tmp_path / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    # the shell expanded `--json in/*.jpg`: the first photo became the JSON path
    proc = cli("run", "resize", "--json", str(a), str(b), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("error: ") and "--json" in err
    for bad in (a, src / "b.jpg", tmp_path / "out" / "a.jpg", tmp_path / "out", tmp_path / "notes.txt", src):
        with pytest.raises(BatchUsageError, match="--json"):
            run([src], tmp_path / "out", json=str(bad))
    with pytest.raises(BatchUsageError, match="--json"):  # the one output file
        run([a], tmp_path / "a2.png", json=str(tmp_path / "a2.png"))
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()  # refused before any work
    (tmp_path / "s.json").write_text('{"old": 1}')
    summary, _ = run([src], tmp_path / "out", capsys, json=str(tmp_path / "s.json"))
    assert summary.done == 2 and json.loads((tmp_path / "s.json").read_text())["done"] == 2
    assert files(tmp_path) == sorted(["in/a.jpg", "in/b.jpg", "notes.txt", "out/a.jpg", "out/b.jpg", "s.json"])


def test_json_summary_goes_through_the_atomic_writer(tmp_path, capsys, monkeypatch):
    import gantools.batch

    written = []
    monkeypatch.setattr(gantools.batch, "write_atomic", lambda dest, data: written.append((dest, data)))
    run([write(tmp_path / "a.png")], tmp_path / "out", capsys, json=str(tmp_path / "s.json"))
    assert [d for d, _ in written] == [str(tmp_path / "s.json")] and json.loads(written[0][1])["done"] == 1


def test_output_folder_equal_to_input_folder_with_a_template_resumes(tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "a.png")
    write(src / "sub" / "b.png")
    for _ in range(2):
        run([src], src, capsys, name="{stem}_x{scale}.{ext}", recursive=True)
    summary, _ = run([src], src, capsys, name="{stem}_x{scale}.{ext}", recursive=True)
    assert (summary.done, summary.skipped, summary.failed) == (0, 2, 0)
    assert files(src) == ["a.png", "a_x2.png", "sub/b.png", "sub/b_x2.png"]
    (src / "a.png").unlink()  # a result stays a result even without its source
    summary, _ = run([str(src / "*.png")], src, capsys, name="{stem}_x{scale}.{ext}")
    assert (summary.done, summary.skipped, summary.failed) == (0, 0, 0)
    assert files(src) == ["a_x2.png", "sub/b.png", "sub/b_x2.png"]


def test_fifos_are_skipped_in_folders_and_an_error_when_named(tmp_path):
    src = tmp_path / "in"
    write(src / "a.png")
    os.mkfifo(src / "pipe.png")
    proc = cli("run", "resize", str(src), "-o", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.decode().splitlines() if "pipe.png" in line]
    assert len(notes) == 1 and notes[0].startswith("warning: ") and "FIFO" in notes[0]
    assert files(tmp_path / "out") == ["a.png"]
    proc = cli("run", "resize", str(src / "pipe.png"), str(src / "a.png"), "-o", str(tmp_path / "o2"), timeout=60)
    assert proc.returncode == 1
    errs = [line for line in proc.stderr.decode().splitlines() if line.startswith("error: ")]
    assert errs == [f"error: {src / 'pipe.png'}: is a FIFO, not a regular file"]
    assert files(tmp_path / "o2") == ["a.png"]


def test_output_with_a_trailing_slash_is_a_folder(tmp_path, capsys):
    src = write(tmp_path / "a.jpg")
    summary, _ = run([src], str(tmp_path / "newdir.png") + "/", capsys)
    assert summary.done == 1 and (tmp_path / "newdir.png").is_dir()
    assert files(tmp_path / "newdir.png") == ["a.jpg"]


def test_only_complete_outputs_count_as_done(tmp_path, capsys):
    src = tmp_path / "in"
    for name in ("a.png", "b.jpg", "c.webp", "d.png"):
        write(src / name)
    run([src], tmp_path / "out", capsys)
    out = tmp_path / "out"
    (out / "a.png").write_bytes(b"")
    (out / "b.jpg").write_bytes((out / "b.jpg").read_bytes()[:-40])
    (out / "c.webp").write_bytes((out / "c.webp").read_bytes()[:-10])
    summary, _ = run([src], out, capsys)
    assert (summary.done, summary.skipped) == (3, 1)
    for name in ("a.png", "b.jpg", "c.webp"):
        assert read(out / name).shape == (24, 32, 3), name
    (out / "d.png").unlink()
    os.mkfifo(out / "d.png")  # never opened, never replaced
    summary, lines = run([src], out, capsys)
    assert (summary.skipped, summary.failed) == (3, 1) and "not a regular file" in errors(lines)[0]
