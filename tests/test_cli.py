"""The ``gantools`` command: list, info, generated run commands, errors, start-up cost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

import gantools
import numpy as np

from clitools import files, read, write
from gantools.cli import main
from gantools.cli.options import DEFAULT_MAX_PIXELS, PLATFORM
from gantools.cli.run import parse_colour
from gantools.plugin import PLATFORM_OPTIONS, Descriptor, Plugin

PLATFORM_FLAGS = (
    "--device", "--precision", "--threads", "--tile", "--weights", "--format", "--quality", "--name",
    "--overwrite", "--recursive", "--from-list", "--null", "--json", "--background", "--max-pixels",
    "--output",
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def call(capsys, *args):
    """Run ``main(args)`` in-process; return (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    code, out, _ = call(capsys, "--version")
    assert code == 0 and out.strip() == f"gantools {gantools.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", gantools.__version__)


def test_help_lists_commands(capsys):
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for command in ("list", "info", "run", "generate", "train"):
        assert re.search(rf"\b{command}\b", out), command


def test_list_shows_builtin_plugins(capsys):
    code, out, _ = call(capsys, "list")
    row = next(line for line in out.splitlines() if line.startswith("resize\t"))  # not a TTY: tab-separated
    assert code == 0 and "x2" in row and "none" in row and "ok" in row


def test_info_shows_descriptor_and_options(capsys):
    code, out, _ = call(capsys, "info", "resize")
    assert code == 0
    for text in ("resize", "--scale", "float", "2.0", "--method", "lanczos, bicubic, area, nearest", "..16"):
        assert text in out, text


def _words(text: str) -> str:
    """``text`` without Rich box-drawing characters, whitespace collapsed (help wraps long lines)."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def test_run_help_lists_plugins(capsys):
    from gantools.registry import list_plugins

    code, out, _ = call(capsys, "run", "--help")
    assert code == 0
    plugins = list_plugins(include_broken=False)
    assert {"resize", "upscale"} <= {e.name for e in plugins}
    for entry in plugins:
        assert re.search(rf"\b{entry.name}\b", out), entry.name
        assert _words(entry.descriptor.description) in _words(out), entry.name


def test_generate_help_lists_exactly_the_generators(capsys):
    from gantools.registry import list_plugins

    code, out, _ = call(capsys, "generate", "--help")
    assert code == 0
    for entry in list_plugins(include_broken=False):
        listed = re.search(rf"^\W*{entry.name}\b", out, re.MULTILINE) is not None
        assert listed == (entry.descriptor.kind == "generator"), entry.name


def test_generate_with_an_image_plugin_is_one_line(capsys):
    code, _, err = call(capsys, "generate", "resize", "-n", "1", "-o", "x")
    assert code == 2 and err == "error: plugin 'resize' is not a generator (see gantools list)\n"


def test_platform_options_are_the_reserved_names():
    """The one declaration of platform flags matches the names plugin options may not take."""
    assert {p.name for p in PLATFORM} | {"help", "progress"} == PLATFORM_OPTIONS


def test_default_max_pixels_matches_io():
    from gantools.image import DEFAULT_MAX_PIXELS as IO_DEFAULT

    assert DEFAULT_MAX_PIXELS == IO_DEFAULT


def test_plugin_help_shows_platform_and_plugin_options(capsys):
    code, out, _ = call(capsys, "run", "resize", "--help")
    assert code == 0
    for flag in PLATFORM_FLAGS + ("--scale", "--method", "--quiet", "--workers"):
        assert flag in out, flag
    assert "auto|fp32|bf16" in out and "lanczos|bicubic|area|nearest" in out
    assert "[default: 2.0]" in out and "[default: lanczos]" in out


@pytest.mark.parametrize("args", [("run", "nope", "x.png", "-o", "y"), ("info", "nope")])
def test_unknown_plugin(capsys, args):
    code, _, err = call(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: unknown plugin 'nope' (known: ")
    assert "resize" in err


@pytest.mark.parametrize(
    "option, flag",
    [
        (["--scale", "abc"], "--scale"), (["--scale", "0"], "--scale"), (["--scale", "99"], "--scale"),
        (["--method", "cubic"], "--method"), (["--precision", "fp16"], "--precision"),
        (["--background", "pink"], "--background"), (["--quality", "500", "--format", "jpeg"], "--quality"),
        (["--name", "{nope}.png"], "--name"), (["--format", "gif"], "--format"),
    ],
)
def test_invalid_option_value_is_one_line_naming_it(tmp_path, capsys, option, flag):
    src = write(tmp_path / "a.png")
    code, _, err = call(capsys, "run", "resize", str(src), "-o", str(tmp_path / "out"), *option)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and flag in err
    assert not (tmp_path / "out").exists()


def test_run_writes_and_reports(tmp_path, capsys):
    src = write(tmp_path / "in" / "a.png")
    code, _, err = call(capsys, "run", "resize", str(src.parent), "-o", str(tmp_path / "out"), "--scale", "3",
                        "--method", "area", "--name", "{stem}-x{scale}.{ext}")
    assert code == 0 and files(tmp_path / "out") == ["a-x3.png"]
    assert "1 done, 0 skipped, 0 failed" in err
    code, _, err = call(capsys, "run", "resize", str(src), "-o", str(tmp_path / "out2") + "/", "-q")
    assert code == 0 and err == ""


@pytest.mark.parametrize("name", [
    "{stem}.txt", "{stem}", "{stem}.{ext}.bak", "{stem!r}.png", "{stem.__class__}.png", "{stem:>10}.png",
    "{stem[0]}.png", "{}.png", "{0}.png", "{stem}_{ext}",
])
def test_name_takes_only_the_documented_fields_and_an_image_extension(tmp_path, capsys, name):
    src = write(tmp_path / "in" / "a.png")
    code, _, err = call(capsys, "run", "resize", str(src.parent), "-o", str(tmp_path / "out"), "--name", name)
    assert code == 2, err
    assert err.startswith("error: option --name: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


class ToyGenerator(Plugin):
    """Flat images whose gray level is the seed; counts the images it makes."""

    descriptor = Descriptor("toygen", "generation", "test generator", kind="generator")
    made = 0

    def process(self, image):
        return image

    def generate(self, n, seed):
        type(self).made += n
        return [np.full((4, 6, 3), (seed + i) % 256, np.uint8) for i in range(n)]

    def interpolate(self, seed_a, seed_b, frames):
        return self.generate(frames, seed_a)


@pytest.fixture
def toygen():
    from gantools import registry

    registry.discover()
    with registry.PLUGINS.scoped():
        registry.register_plugin(ToyGenerator)
        ToyGenerator.made = 0
        yield ToyGenerator


def test_generate_skips_existing_outputs_unless_overwrite(tmp_path, capsys, toygen):
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    write(out / "seed0001.png")  # a complete image: kept
    sheet.write_text("not an image")  # not a complete image: redone
    code, stdout, err = call(capsys, "generate", "toygen", "-n", "3", "-o", str(out), "--grid", str(sheet))
    assert code == 0, err
    assert files(out) == ["seed0000.png", "seed0001.png", "seed0002.png"]
    assert read(out / "seed0001.png").shape == (12, 16, 3) and read(out / "seed0002.png")[0, 0, 0] == 2
    assert "skipped" in stdout and "seed0001.png" in stdout
    assert read(sheet).ndim == 3  # an incomplete output is redone
    before = {p: p.read_bytes() for p in (out / "seed0001.png", sheet)}
    toygen.made = 0
    code, stdout, _ = call(capsys, "generate", "toygen", "-n", "3", "-o", str(out), "--grid", str(sheet))
    assert code == 0 and toygen.made == 0 and "skipped" in stdout  # nothing to do: nothing generated
    assert {p: p.read_bytes() for p in before} == before
    write(sheet)  # a complete 12x16 image: replaced by the 14x18 grid only with --overwrite
    code, _, _ = call(capsys, "generate", "toygen", "-n", "3", "-o", str(out), "--grid", str(sheet), "--overwrite")
    assert code == 0 and read(out / "seed0001.png").shape == (4, 6, 3) and read(sheet).shape == (14, 18, 3)
    code, _, err = call(capsys, "generate", "toygen", "-n", "2", "-o", str(out), "--grid", str(out / "seed0001.png"))
    assert code == 2 and err.startswith("error: ") and "--grid" in err


def test_parse_colour():
    assert parse_colour("white") == (255, 255, 255)
    assert parse_colour("#102030") == (16, 32, 48)
    assert parse_colour("1, 2,3") == (1, 2, 3)


# -- start-up cost -----------------------------------------------------------------------------
PROBE = (
    "import sys, time; t = time.perf_counter(); from gantools.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "heavy = sorted(m for m in ('torch', 'cv2', 'numpy') if m in sys.modules)\n"
    "print('HEAVY', ','.join(heavy), file=sys.stderr)\n"
)


def heavy_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("HEAVY"))
    return set(filter(None, line.split(" ", 1)[1].split(",")))


def test_help_and_list_import_neither_torch_nor_opencv_nor_numpy():
    assert heavy_modules("--help") == set()
    assert heavy_modules("list") == set()
    # also through the real entry point, checked with -X importtime
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gantools", "list"],
                          capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "resize" in proc.stdout
    assert not {"torch", "cv2", "numpy"} & imported


def cost(*argv: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one ``python ARGV``."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("args", [("--help",), ("list",)])
def test_start_up_under_0_4_s(args):
    """Minimum of 3 runs. CPU time is what gantools costs whatever else runs: under 0.4 s, or under
    4x the CPU of importing Typer alone in the same test where this machine is slower than that (a
    CI runner, or a busy one where every process's CPU time inflates; here the ratio is about 3).
    Wall time is also held to 0.4 s unless other work keeps every core busy (then it measures the queue)."""
    runs = [cost("-m", "gantools", *args) for _ in range(3)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    typer_cpu = min(cost("-c", "import typer.main")[1] for _ in range(3))
    assert cpu < max(0.4, 4 * typer_cpu), \
        f"gantools {' '.join(args)} used {cpu:.2f} s of CPU (Typer alone {typer_cpu:.2f} s)"
    if os.getloadavg()[0] < (os.cpu_count() or 1):
        assert wall < 0.4, f"gantools {' '.join(args)} took {wall:.2f} s"
