"""What a new user hit on the command line: switches, help text, device default, completion,
JSON listings, output names, video inputs, ``{scale}``, seed lists, ``--compare``, plugin name
clashes, face projection size and progress inside one file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from clitools import cli, read, write
from imagegen import noise
from test_registry import fake_distribution

from gantools.cli import main

BOOL_FLAGS = {"run resize": ["--overwrite", "--recursive", "--null", "--quiet", "--compare"],
              "generate faces": ["--overwrite"], "train upscale": ["--quiet", "--resume"]}


def _help(*command: str) -> str:
    proc = cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


# -- item 7: switches, INPUTS..., defaults shown; item 6: --device auto ------------------------
@pytest.mark.parametrize("command", sorted(BOOL_FLAGS))
def test_switches_show_no_type_and_device_defaults_to_auto(command: str) -> None:
    text = _help(*command.split())
    assert "<bool>" not in text and "<list[str]>" not in text
    assert "[default: auto]" in text.split("--device", 1)[1].split("--precision", 1)[0]


def test_run_help_shows_inputs_and_defaults() -> None:
    text = _help("run", "upscale")
    assert "[INPUTS...]" in text and "INPUTS..." in text
    quality = text.split("--quality", 1)[1].split("--name", 1)[0]
    tile = text.split("--tile", 1)[1].split("--weights", 1)[0]
    assert "default: 95 for JPEG/WebP, 3 for PNG" in " ".join(quality.split())
    assert "default: automatic" in tile


@pytest.mark.parametrize("command", sorted(BOOL_FLAGS))
def test_a_switch_given_a_value_is_a_usage_error(command: str, tmp_path) -> None:
    for flag in BOOL_FLAGS[command]:
        proc = cli(*command.split(), flag, "true", "-o", str(tmp_path / "x"))
        err = proc.stderr.decode()
        assert proc.returncode == 2 and err.count("\n") == 1, err
        assert f"{flag} is a switch and takes no value" in err


# -- item 8: completion, JSON, plain text when piped -------------------------------------------
def test_shell_completion_is_typers() -> None:
    # without shell detection --show-completion takes the shell as its value (with it, shellingham reads
    # the process tree, and a suite started outside a shell has none to find)
    proc = cli("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert proc.returncode == 0 and b"_GANTOOLS_COMPLETE" in proc.stdout
    proc = cli(env={"_GANTOOLS_COMPLETE": "complete_bash", "COMP_WORDS": "gantools run res", "COMP_CWORD": "2"})
    assert proc.stdout.decode().split() == ["resize"]
    assert "--install-completion" in _help()


def test_list_and_info_json() -> None:
    rows = json.loads(cli("list", "--json").stdout)
    resize = next(r for r in rows if r["name"] == "resize")
    assert resize["status"] == "ok" and resize["scale"] == 2 and resize["options"][0]["flag"] == "--scale"
    info = json.loads(cli("info", "upscale", "--json").stdout)
    assert info["name"] == "upscale" and {o["name"] for o in info["options"]} >= {"model", "outscale"}


def test_tables_are_plain_text_when_piped() -> None:
    for args in (("list",), ("info", "resize")):
        out = cli(*args).stdout.decode()
        assert "│" not in out and "─" not in out and "\x1b[" not in out
    lines = cli("list").stdout.decode().splitlines()
    assert lines[0].split("\t") == ["name", "task", "scale", "weights", "status"]
    assert any(line.split("\t")[:3] == ["resize", "resize", "x2"] for line in lines)


# -- item 9: -o of a format run cannot write ---------------------------------------------------
@pytest.mark.parametrize("out", ["a.gif", "a.mp4", "a.v2"])
def test_output_that_is_no_image_format_is_a_usage_error(tmp_path, out: str) -> None:
    src = write(tmp_path / "a.png")
    proc = cli("run", "resize", str(src), "-o", str(tmp_path / out))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and err.startswith("error: -o ")
    assert "is not an image format gantools writes" in err
    assert not (tmp_path / out).exists()


def test_folder_outputs_still_work(tmp_path) -> None:
    write(tmp_path / "in/a.png")
    assert cli("run", "resize", str(tmp_path / "in"), "-o", str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out/a.png").is_file()
    assert cli("run", "resize", str(tmp_path / "in/a.png"), "-o", f"{tmp_path}/one/").returncode == 0


# -- item 10: a video is named as a video ------------------------------------------------------
def test_video_input_is_named_as_video(tmp_path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom" + bytes(64))
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    proc = cli("run", "resize", str(video), str(heic), "-o", f"{tmp_path}/out/")
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "clip.mp4: not a video FFmpeg can read (truncated or corrupt?)" in err  # read as a video (test_video.py)
    assert "photo.heic: not a recognised image (HEIF/AVIF is not supported" in err


# -- item 11: {scale} is the final scale -------------------------------------------------------
def test_scale_field_is_the_final_scale(tmp_path) -> None:
    import gantools

    assert gantools.load("upscale", model="fidelity", scale=2, outscale=3).scale == 3
    src = write(tmp_path / "a.png", noise(8, 10))
    proc = cli("run", "upscale", str(src), "-o", f"{tmp_path}/out/", "--model", "fidelity", "--scale", "2",
               "--outscale", "3", "--name", "{stem}_x{scale}.{ext}", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert read(tmp_path / "out/a_x3.png").shape == (24, 30, 3)


# -- item 12: --seeds 0-35,42 ------------------------------------------------------------------
def test_seed_lists() -> None:
    from gantools.cli.errors import CliError
    from gantools.cli.generate import _runs, parse_seeds

    assert parse_seeds("0-3,42,2") == [0, 1, 2, 3, 42]
    assert _runs([0, 1, 2, 3, 42, 44, 45]) == [(0, 4), (42, 1), (44, 2)]
    for bad in ("5-3", "a", "1-", "-2"):
        with pytest.raises(CliError):
            parse_seeds(bad)


def test_generate_seeds_writes_those_seeds(tmp_path) -> None:
    proc = cli("generate", "faces", "--seeds", "3-4,9", "-o", str(tmp_path), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["seed0003.png", "seed0004.png", "seed0009.png"]
    single = tmp_path / "single"
    assert cli("generate", "faces", "-n", "1", "--seed", "9", "-o", str(single)).returncode == 0
    assert (single / "seed0009.png").read_bytes() == (tmp_path / "seed0009.png").read_bytes()
    proc = cli("generate", "faces", "--seeds", "1-2", "-n", "2", "-o", str(tmp_path))
    assert proc.returncode == 2 and b"--seeds" in proc.stderr


# -- item 13: --compare ------------------------------------------------------------------------
def test_compare_sheet_next_to_each_result(tmp_path) -> None:
    src = write(tmp_path / "in/a.png", noise(6, 8))
    proc = cli("run", "resize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--compare",
               "--name", "{stem}_x{scale}.{ext}")
    assert proc.returncode == 0, proc.stderr
    result, sheet = read(tmp_path / "out/a_x2.png"), read(tmp_path / "out/a_x2_compare.png")
    assert sheet.shape == (12, 32, 3)
    assert np.array_equal(sheet[:, 16:], result)
    import cv2

    assert np.array_equal(sheet[:, :16], cv2.resize(read(src), (16, 12), interpolation=cv2.INTER_LANCZOS4))
    assert cli("run", "resize", str(src), "-o", "-", "--compare").returncode == 2


# -- item 14: name clashes and empty entry points ----------------------------------------------
def test_duplicate_and_empty_plugins_are_listed(tmp_path) -> None:
    fake_distribution(tmp_path, "gantools-resize2", "resize = gt_resize\n", {"gt_resize": """
        from gantools import Descriptor, Plugin, register_plugin

        @register_plugin
        class Resize(Plugin):
            descriptor = Descriptor("resize", "resize", "another resize")
        """})
    fake_distribution(tmp_path, "gantools-cls", "other = gt_cls:Upscale\n", {"gt_cls": """
        from gantools.plugin import Descriptor, Plugin

        class Upscale(Plugin):
            descriptor = Descriptor("upscale", "x", "a clash through module:Class")
        """})
    fake_distribution(tmp_path, "gantools-empty", "empty = gt_empty\n", {"gt_empty": "X = 1\n"})
    env = {"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rows = {r["name"]: r for r in json.loads(cli("list", "--json", env=env).stdout)}
    assert rows["resize"]["status"] == "ok" and rows["resize"]["source"] == "gantools (gantools_resize)"
    assert rows["upscale"]["status"] == "ok"
    clash = rows["resize (gantools-resize2 (gt_resize))"]
    assert clash["status"] == "ignored" and "'resize' is already used by gantools" in clash["error"]
    assert rows["upscale (gantools-cls (gt_cls:Upscale))"]["status"] == "ignored"
    assert rows["empty"]["status"] == "broken" and "registered no plugin" in rows["empty"]["error"]
    text = cli("list", env=env).stdout.decode()
    assert "ignored: the name 'resize' is already used by" in text


# -- item 15: run faces says it returns the generator's resolution ------------------------------
def test_faces_projection_size_is_documented() -> None:
    info = json.loads(cli("info", "faces", "--json").stdout)
    assert "generator's resolution" in info["description"]
    assert "generator's" in " ".join(_help("run", "faces").split())


# -- item 4: progress inside one file ----------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []
        self.started = False

    def start(self, total: int, title: str) -> None:
        self.started = True

    def step(self, done: int, total: int) -> None:
        assert self.started, "the bar starts before the first file ends"
        self.steps.append((done, total))

    def file(self, *args) -> None: ...
    def error(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def finish(self, summary: str) -> None: ...


def test_progress_inside_a_file_reaches_the_reporter(tmp_path) -> None:
    from gantools.batch import BatchOptions, run_batch
    from gantools.plugin import Descriptor, Plugin

    class Slow(Plugin):
        descriptor = Descriptor("slow", "test", "reports three steps")

        def process(self, image):
            for i in range(3):
                self.report_progress(i + 1, 3)
            return image

    write(tmp_path / "a.png")
    reporter = _Recorder()
    summary = run_batch(Slow(), [str(tmp_path / "a.png")], str(tmp_path / "out") + "/",
                        options=BatchOptions(progress="off"), reporter=reporter)  # type: ignore[arg-type]
    assert summary.done == 1 and reporter.steps == [(1, 3), (2, 3), (3, 3)]


def test_tiled_runner_reports_each_band() -> None:
    import gantools

    plugin = gantools.load("upscale", model="fidelity", scale=2, tile=32, precision="fp32", device="cpu")
    seen: list[tuple[int, int]] = []
    plugin.progress = lambda done, total: seen.append((done, total))
    out = plugin.process(noise(80, 40))
    assert out.shape == (160, 80, 3) and len(seen) > 1
    assert seen[-1] == (160, 160) and [d for d, _ in seen] == sorted(d for d, _ in seen)
