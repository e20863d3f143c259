"""Hardening (issue #11), remaining items: stylize memory at a large ``--size`` (7), libpng's own
stderr lines (24) and ``gantools train --max-pixels`` (6).

Every fixture is made here: tiny random-weight networks, images written with OpenCV, PNG chunks
edited byte by byte.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gantools_stylize import Stylize

GANTOOLS = [sys.executable, "-m", "gantools"]
TINY = {"base_channels": 4, "n_res": 1, "norm": "instance", "in_channels": 3, "out_channels": 3}


def tiny_stylenet(path: Path) -> str:
    """A random stylenet written as a gantools stylize export."""
    from gantools.nn import create_arch
    from gantools.train.export import export_generator

    torch.manual_seed(0)
    model = create_arch("stylenet", **TINY)
    export_generator(path, model, "stylenet", TINY, {"task": "stylize", "style": "tiny", "source": "t.png", "mode": "painting"})
    return str(path)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*GANTOOLS, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


# -- 7: stylize stays within the tile budget whatever --size -----------------------------------------
def _numpy_peak(fn) -> int:
    """Peak of traced memory (tracemalloc traces numpy's buffers) above the start while ``fn()`` runs."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _largest_torch_allocation(fn) -> int:
    """The most CPU memory one torch operator (with the operators it calls) allocated while ``fn()`` runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max((e.cpu_memory_usage for e in prof.events()), default=0)  # net bytes an op (and its callees) kept


class _IdentityRunner:
    """Stands in for the plugin's ImageRunner: the network is the identity (``transform``, the
    old tensor interface, is honoured too, so the test also measures a plugin that uses it)."""

    device = torch.device("cpu")

    def __call__(self, image: np.ndarray, transform=None) -> np.ndarray:
        from gantools.tensor.convert import from_tensor, split, to_tensor

        color, _, layout = split(image)
        if transform is None:
            return color.copy()
        return from_tensor(transform(to_tensor(color, bgr_to_rgb=True), lambda t: t), layout.dtype, rgb_to_bgr=True)


def test_steps_around_the_network_make_no_full_size_float_copy(tmp_path: Path) -> None:
    """--size 2048 on a 128x16 photo with --preserve-color and --strength: resize, colour and
    blend allocate no float32 array of the 2048x256 working size (the network is stubbed out)."""
    weights = tiny_stylenet(tmp_path / "tiny.safetensors")
    img = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (128, 16, 3), dtype=np.uint8), (5, 5), 0)
    plugin = Stylize(weights=weights, size=2048, preserve_color=True, strength=0.6)
    plugin.ensure_setup()
    plugin.runner = _IdentityRunner()
    plugin.process(img)  # warm: imports
    full_float = 2048 * 256 * 3 * 4
    out: list[np.ndarray] = []
    numpy_peak = _numpy_peak(lambda: out.append(plugin.process(img)))
    assert numpy_peak < full_float, f"numpy peak {numpy_peak / 2**20:.1f} MiB (full float {full_float / 2**20:.1f})"
    largest = _largest_torch_allocation(lambda: plugin.process(img))
    assert largest < full_float, f"one torch allocation of {largest / 2**20:.1f} MiB (full float {full_float / 2**20:.1f})"
    assert out[0].shape == img.shape and out[0].dtype == np.uint8
    assert np.abs(out[0].astype(int) - img).mean() < 3  # identity network, down and up again: about the input


def test_large_size_makes_no_full_size_float_copy(tmp_path: Path) -> None:
    """--size 2048 on a 128x16 photo: a 2048x256 working image, run in tiles. No float32 array of
    the working size is allocated, by torch or numpy (all numpy memory together stays below one
    such copy): resize, network input and output, colour and blend stay in uint8 or in bands."""
    weights = tiny_stylenet(tmp_path / "tiny.safetensors")
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (128, 16, 3), dtype=np.uint8), (5, 5), 0)
    plugin = Stylize(weights=weights, threads=1, precision="fp32", tile=256, size=2048, preserve_color=True, strength=0.6)
    plugin.ensure_setup()
    plugin.runner.tiler.stats_pixels = 128 * 128  # the statistics pass has its own (small) copy
    Stylize(weights=weights, threads=1, size=64, preserve_color=True, strength=0.6).process(img)  # warm: imports
    full_float = 2048 * 256 * 3 * 4
    out: list[np.ndarray] = []
    numpy_peak = _numpy_peak(lambda: out.append(plugin.process(img)))
    assert plugin.runner._used_tile == 256, "the working image must really be tiled"
    assert numpy_peak < full_float, f"numpy peak {numpy_peak / 2**20:.1f} MiB (full float {full_float / 2**20:.1f})"
    largest = _largest_torch_allocation(lambda: plugin.process(img))
    assert largest < full_float, f"one torch allocation of {largest / 2**20:.1f} MiB (full float {full_float / 2**20:.1f})"
    assert out[0].shape == img.shape and out[0].dtype == np.uint8


def test_banded_colour_steps_equal_the_whole_image_ones(monkeypatch) -> None:
    """finish() in bands of 7 rows gives exactly what preserve_color + blend give on the whole image."""
    from gantools.tensor.convert import from_tensor, to_tensor
    from gantools_stylize import color

    rng = np.random.default_rng(1)
    styled, original = (rng.integers(0, 256, (50, 40, 3), dtype=np.uint8) for _ in range(2))
    s, o = to_tensor(styled, bgr_to_rgb=True), to_tensor(original, bgr_to_rgb=True)
    want = from_tensor(color.blend(color.preserve_color(s, o), o, 0.3).clamp(0, 1), np.uint8, rgb_to_bgr=True)
    monkeypatch.setattr(color, "BAND_PIXELS", 7 * 40)
    got = color.finish(styled.copy(), original, 0.3, preserve=True)
    assert np.array_equal(got, want)


def _smooth(h: int, w: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """A blurred random BGR image over the whole range of ``dtype``."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return cv2.GaussianBlur(rng.integers(0, top + 1, (h, w, 3), dtype=np.int64).astype(dtype), (5, 5), 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("gray", [False, True])
def test_integer_input_converted_per_tile_equals_float_input(tmp_path: Path, dtype: type, gray: bool) -> None:
    """The runner keeps a uint8/uint16 image integer and makes each tile float as it runs: the
    result (tiled, frozen statistics) equals the network run on the float tensor of the image."""
    from gantools.tensor.convert import as_float, split, to_int_tensor, to_tensor

    img = _smooth(150, 190, dtype)
    img = img[:, :, 1].copy() if gray else img
    color, _, layout = split(img)
    ints, floats = to_int_tensor(color, bgr_to_rgb=True), to_tensor(color, bgr_to_rgb=True)
    assert ints.dtype != torch.float32 and ints.element_size() == img.itemsize
    assert torch.equal(as_float(ints), floats) and torch.equal(as_float(ints[..., 7:50, 3:90]), floats[..., 7:50, 3:90])

    plugin = Stylize(weights=tiny_stylenet(tmp_path / "tiny.safetensors"), threads=1, precision="fp32", tile=80)
    plugin.ensure_setup()
    runner = plugin.runner
    got = runner(img)
    assert runner._used_tile == 80 and max(80, runner.tiler.min_tile(runner.descriptor)) < 150, "really tiled"
    x = floats.expand(-1, 3, -1, -1) if gray else floats
    with torch.inference_mode():
        want = np.concatenate([runner._to_array(b, layout) for _, b in runner.network(x, "fp32")])
    assert got.dtype == dtype and got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.uint16])
def test_edge_tiles_are_padded_alone(dtype: torch.dtype) -> None:
    """Tiles are cut from the image without padding all of it: a region equals the same region of
    the image padded whole (reflected, or replicated where the image is too small), any dtype."""
    from gantools.tensor.tiling import pad_to, padded_region

    rng = np.random.default_rng(2)
    for h, w, multiple, min_size in [(37, 50, 8, 1), (3, 61, 4, 16), (64, 5, 32, 1), (1, 1, 1, 9)]:
        x = torch.from_numpy(rng.integers(0, 250, (1, 3, h, w)).astype(np.int32)).to(dtype)
        whole = pad_to(x.float(), multiple, min_size)  # torch's own padding (F.pad) of the whole image
        hp, wp = whole.shape[-2:]
        for _ in range(20):
            r0, c0 = int(rng.integers(0, hp)), int(rng.integers(0, wp))
            r1, c1 = int(rng.integers(r0 + 1, hp + 1)), int(rng.integers(c0 + 1, wp + 1))
            got = padded_region(x, (hp, wp), (r0, r1), (c0, c1))
            assert got.dtype == dtype and torch.equal(got.float(), whole[..., r0:r1, c0:c1])


def test_statistics_pass_stays_within_the_tile_budget(tmp_path: Path, monkeypatch) -> None:
    """The statistics image of tiled instance-norm runs has no more pixels than the tile budget
    lets the network run whole (or one tile with its context, if that is more), and is float."""
    from gantools.tensor.tiling import budget_pixels

    monkeypatch.setenv("GANTOOLS_TILE_BUDGET_MB", "1")
    plugin = Stylize(weights=tiny_stylenet(tmp_path / "tiny.safetensors"), threads=1, precision="fp32", tile=64)
    plugin.ensure_setup()
    tiler, model = plugin.runner.tiler, plugin.runner.descriptor
    seen: list[torch.Tensor] = []
    original = tiler.stats_image

    def stats_image(x: torch.Tensor, pixels: int | None = None) -> torch.Tensor:
        seen.append(original(x, pixels))
        return seen[-1]

    monkeypatch.setattr(tiler, "stats_image", stats_image)
    img = _smooth(400, 520)
    plugin.process(img)
    tile = max(64, tiler.min_tile(model))
    limit = max(budget_pixels(model.scale), (tile + 2 * tiler.overlap(model)) ** 2)
    assert budget_pixels(1) == 2**20 // 256 and limit < 400 * 520 < tiler.stats_pixels
    (small,) = seen
    sh, sw = small.shape[-2:]
    assert small.dtype == torch.float32 and 0.95 * limit < sh * sw <= limit + sh + sw  # sides rounded


def test_clip_statistics_of_one_frame_equal_its_own(tmp_path: Path) -> None:
    """Video statistics pooled over one sample frame are that frame's own: processing it inside
    clip_statistics gives what processing it alone gives (the capture sees the frame in [0, 1])."""
    from gantools.video.clipstats import clip_statistics

    img = _smooth(60, 84)
    plugin = Stylize(weights=tiny_stylenet(tmp_path / "tiny.safetensors"), threads=1, precision="fp32", tile=0)
    own = plugin.process(img)
    with clip_statistics(plugin, [img]) as applied:
        clip = plugin.process(img)
    assert applied and np.abs(clip.astype(int) - own).max() <= 1


def test_size_below_16_is_a_usage_error(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((20, 20, 3), 128, np.uint8))
    weights = tiny_stylenet(tmp_path / "tiny.safetensors")
    r = run_cli("run", "stylize", "a.png", "-o", "out/", "--weights", weights, "--size", "8", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--size" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


# -- 24: libpng / libjpeg / OpenCV lines never reach the user -----------------------------------------
def _png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


def _odd_files(folder: Path) -> dict[str, bool]:
    """Files each of which makes a C library print to stderr when OpenCV decodes it: name ->
    whether it is still a usable image (else gantools reports it in one line)."""
    png = cv2.imencode(".png", np.full((8, 8, 3), 100, np.uint8))[1].tobytes()
    idat = png.index(b"IDAT") - 4
    end = idat + 12 + int.from_bytes(png[idat : idat + 4], "big")
    files = {
        "iccp.png": (png[:33] + _png_chunk(b"iCCP", b"ICC\0\0" + zlib.compress(b"no profile" * 9)) + png[33:], True),
        "sbit.png": (png[:33] + _png_chunk(b"sBIT", b"\x09\x09\x09") + png[33:], True),  # libpng warning: sBIT: invalid
        "idat_crc.png": (png[: end - 4] + b"\0\0\0\0" + png[end:], False),  # libpng error: IDAT: CRC error
    }
    jpeg = cv2.imencode(".jpg", np.full((16, 16, 3), 100, np.uint8))[1].tobytes()
    files["extra.jpg"] = (jpeg[:-2] + b"\0\0\0" + jpeg[-2:], True)  # Corrupt JPEG data: extraneous bytes
    from PIL import Image, TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[65000] = "unknown"  # OpenCV: "[ WARN:0@...] ... Unknown field with tag 65000"
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(folder / "tag.tif", tiffinfo=tags)
    files["tag.tif"] = ((folder / "tag.tif").read_bytes(), True)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: ok for name, (_, ok) in files.items()}


def test_library_lines_on_stderr_are_real_without_gantools(tmp_path: Path) -> None:
    """Control: decoded by plain OpenCV, each file does print a library line to stderr."""
    files = _odd_files(tmp_path)
    script = "import sys, cv2, numpy as np\nfor f in sys.argv[1:]: cv2.imdecode(np.fromfile(f, np.uint8), -1)\n"
    r = subprocess.run([sys.executable, "-c", script, *files], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert len(r.stderr.strip().splitlines()) >= len(files), r.stderr


def test_odd_images_give_one_line_or_a_result_without_library_noise(tmp_path: Path) -> None:
    files = _odd_files(tmp_path)
    r = run_cli("run", "resize", *files, "-o", "out/", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, r.stderr
    bad = sorted(n for n, ok in files.items() if not ok)
    assert sorted(l.split(": ")[1] for l in lines if l.startswith("error: ")) == bad, r.stderr
    assert not [l for l in lines if not l.startswith(("error: ", "[", "resize: "))], r.stderr
    assert not [l for l in lines if l.startswith("[") and " -> " not in l], r.stderr  # "[ WARN" is no progress line
    for name, ok in files.items():
        out = tmp_path / "out" / name
        assert out.exists() == ok
        if ok:  # resize's default x2 of the 8x8 (16x16 JPEG) input
            side = 32 if name.endswith(".jpg") else 16
            assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape[:2] == (side, side)


def test_opencv_log_is_errors_only_once_the_codec_is_loaded(tmp_path: Path) -> None:
    """OpenCV's own "[ WARN ]" lines are off wherever OpenCV runs, not only inside a decode window."""
    _odd_files(tmp_path)
    script = ("import cv2, numpy as np, gantools.image.codec\n"
              "cv2.imdecode(np.fromfile('tag.tif', np.uint8), -1)\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_quiet_window_drops_only_library_lines(capfd) -> None:
    """Inside the window (as other threads print while one decodes) gantools' own lines pass,
    libpng's and libjpeg's do not, also when a library writes its newline separately."""
    import os
    import threading

    from gantools.image.quiet import quiet_libraries

    def other_thread() -> None:
        os.write(2, b"[1/2] a.png -> out/a.png\n")

    with quiet_libraries():
        os.write(2, b"libpng warning: iCCP: too short")
        os.write(2, b"\n")
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        with quiet_libraries():  # nested / overlapping windows share the pipe
            os.write(2, b"Corrupt JPEG data: 1 extraneous bytes before marker 0xd9\nerror: b.png: broken\n")
        os.write(2, b"progress 50%\r")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "[1/2] a.png -> out/a.png\nerror: b.png: broken\nprogress 50%\rafter\n"


# -- 6: gantools train --max-pixels -----------------------------------------------------------------
SR_TINY = ["--scale", "2", "--num-feat", "8", "--num-conv", "1", "--patch", "8", "--batch-size", "2",
           "--threads", "1", "--workers", "1", "--steps", "1", "--sample-every", "1000"]


def _train_data(folder: Path) -> Path:
    """Three 48x56 photos (2688 pixels) and one 120x128 (15360 pixels)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(48, 56)] * 3 + [(120, 128)]):
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0))
    return folder


def test_train_max_pixels_skips_larger_images_with_a_count(tmp_path: Path, capsys) -> None:
    import json

    from gantools.cli import main

    data = _train_data(tmp_path / "data")
    run = tmp_path / "run"
    code = main(["train", "upscale", "--data", str(data), "--out", str(run), "--max-pixels", "10000", *SR_TINY])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "3 images" in err and "1 of them above 10000 pixels" in err, err
    assert json.loads((run / "config.json").read_text())["max_pixels"] == 10000


def test_train_max_pixels_below_every_image_is_one_line_error(tmp_path: Path, capsys) -> None:
    from gantools.cli import main

    data = _train_data(tmp_path / "data")
    code = main(["train", "upscale", "--data", str(data), "--out", str(tmp_path / "run"), "--max-pixels", "1000", *SR_TINY])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "4 of them are above 1000 pixels" in lines[0] and "--max-pixels" in lines[0]


def test_image_set_follows_the_runs_limit_and_zero_is_none(tmp_path: Path) -> None:
    from gantools.train.data import ImageSet, pixel_limit

    data = _train_data(tmp_path / "data")
    assert len(ImageSet([data])) == 4  # outside a run: the default limit (89478485)
    with pixel_limit(10000):
        assert len(ImageSet([data])) == 3 and len(ImageSet([data], max_pixels=None)) == 4
    with pixel_limit(0):
        assert len(ImageSet([data])) == 4


def test_stderr_filter_keeps_split_lines_and_drops_only_library_lines() -> None:
    """Lines written in pieces (text, then its newline) keep their newline; libpng's text and the
    lone newline it writes after it are dropped; a real blank line stays."""
    import os

    from gantools.image.quiet import _LineFilter

    read, write = os.pipe()
    try:
        lines = _LineFilter(write)
        for piece in (b"[3/9] a.png", b"\n", b"[4/9] b", b".png\n", b"libpng warning: iCCP", b"\n",
                      b"libpng error: x\n", b"\n", b"done\n", b"\n", b"end\n"):
            lines.feed(piece)
        lines.close()
        os.close(write)
        write = -1
        with os.fdopen(read, "rb") as f:
            read = -1
            got = f.read()
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)
    assert got == b"[3/9] a.png\n[4/9] b.png\ndone\n\nend\n"
