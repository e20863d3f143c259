"""gantools.image: reading, encoding and atomically writing images."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import stat
import subprocess
import sys
import time

import cv2
import imagegen as gen
import numpy as np
import pytest
from PIL import Image, ImageOps

from gantools import image as gio
from gantools.image import Decoded, ImageError, atomic, encode_image, formats, read_image, write_image


def error_of(call, *args, **kwargs) -> str:
    """Run ``call``, expect an ImageError, check it is one line, return its message."""
    with pytest.raises(ImageError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


def write_bytes(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def no_decoding(monkeypatch):
    """Make any call to cv2.imdecode fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def lenient_decoder(monkeypatch):
    """Replace cv2.imdecode by one that, like older OpenCV, returns an image for truncated data."""

    def decode(buf, flags):
        im = Image.open(io.BytesIO(buf.tobytes()))
        return np.zeros((im.height, im.width, 3), np.uint8)

    monkeypatch.setattr(cv2, "imdecode", decode)


# -- small helpers --------------------------------------------------------------------------------
def test_format_from_name():
    assert gio.format_from_name("a/b.JPG") == "jpeg"
    assert gio.format_from_name("x.jpeg") == "jpeg"
    assert gio.format_from_name("x.tiff") == "tiff"
    assert gio.format_from_name("x.tif") == "tiff"
    assert gio.format_from_name(pathlib.Path("x.webp")) == "webp"
    assert gio.format_from_name("x.png") == "png"
    assert gio.format_from_name("x.bmp") == "bmp"
    assert gio.format_from_name("x.gif") is None
    assert gio.format_from_name("noext") is None
    assert set(gio.FORMATS) == {"png", "jpeg", "webp", "tiff", "bmp"}
    assert all(gio.format_from_name("f" + ext) == fmt for fmt, ext in gio.FORMATS.items())


def test_image_info():
    assert gio.image_info(np.zeros((480, 640, 3), np.uint8)) == "640x480 BGR uint8"
    assert gio.image_info(np.zeros((2, 5), np.uint16)) == "5x2 gray uint16"
    assert gio.image_info(np.zeros((2, 5, 4), np.uint8)) == "5x2 BGRA uint8"


def test_check_quality_ranges_and_defaults():
    assert gio.check_quality("jpeg", None) == 95
    assert gio.check_quality("webp", 1) == 1
    assert gio.check_quality("png", None) == 3
    assert gio.check_quality("tiff", 50) is None
    assert gio.check_quality("bmp", None) is None
    with pytest.raises(ValueError, match="0-9"):
        gio.check_quality("png", 90)
    with pytest.raises(ValueError, match="1-100"):
        gio.check_quality("jpg", 0)


def test_unknown_format_is_a_value_error():
    with pytest.raises(ValueError, match="gif"):
        encode_image(gen.gradient(), "gif")


# -- round trips -----------------------------------------------------------------------------------
LOSSLESS = ["png", "tiff", "bmp"]


@pytest.mark.parametrize("fmt", LOSSLESS)
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_round_trip_is_exact(tmp_path, fmt, channels):
    image = gen.noise(channels=channels, seed=channels)
    path = tmp_path / f"img{gio.FORMATS[fmt]}"
    write_image(path, encode_image(image, fmt))
    decoded = read_image(path)
    assert decoded.format == fmt
    assert decoded.image.dtype == np.uint8
    assert decoded.image.shape == image.shape
    np.testing.assert_array_equal(decoded.image, image)


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp"])
def test_alpha_round_trip(fmt):
    image = gen.noise(channels=4, seed=4)
    quality = 100 if fmt == "webp" else None
    decoded = read_image(encode_image(image, fmt, quality=quality))
    assert decoded.image.shape == (12, 16, 4)
    np.testing.assert_array_equal(decoded.image[:, :, 3], image[:, :, 3])
    if fmt != "webp":
        np.testing.assert_array_equal(decoded.image, image)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_lossy_round_trip_is_close(fmt):
    image = gen.gradient(32, 32)
    decoded = read_image(encode_image(image, fmt, quality=95))
    assert decoded.format == fmt
    assert decoded.image.shape == (32, 32, 3)
    assert np.abs(decoded.image.astype(int) - image).mean() < 3


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_stays_16_bit_and_exact(fmt, channels):
    image = gen.noise(channels=channels, dtype=np.uint16, seed=16)
    decoded = read_image(encode_image(image, fmt), name="deep")
    assert decoded.image.dtype == np.uint16
    np.testing.assert_array_equal(decoded.image, image)


def test_16_bit_gray_png_from_pillow(tmp_path):
    gray = gen.gradient(10, 14, channels=1, dtype=np.uint16)
    path = write_bytes(tmp_path / "g16.png", gen.pil_bytes(Image.fromarray(gray), "PNG"))
    decoded = read_image(path)
    assert decoded.image.dtype == np.uint16 and decoded.image.ndim == 2
    np.testing.assert_array_equal(decoded.image, gray)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_gray_stays_two_dimensional(fmt):
    gray = gen.checker(16, 16)
    decoded = read_image(gen.pil_bytes(Image.fromarray(gray), fmt, quality=100) if fmt == "JPEG"
                         else gen.pil_bytes(Image.fromarray(gray), fmt))
    assert decoded.image.shape == (16, 16)
    assert np.abs(decoded.image.astype(int) - gray).max() <= (0 if fmt == "PNG" else 8)


def test_gray_alpha_png_becomes_bgra():
    gray, alpha = gen.gradient(channels=1), gen.checker()
    data = gen.pil_bytes(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG")
    decoded = read_image(data)
    assert decoded.image.shape == (12, 16, 4)
    for c in range(3):
        np.testing.assert_array_equal(decoded.image[:, :, c], gray)
    np.testing.assert_array_equal(decoded.image[:, :, 3], alpha)


def test_palette_png_with_transparency_becomes_bgra():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, 4:] = (255, 0, 0)  # right half red, left half black (made transparent)
    pal = Image.fromarray(rgb).quantize(colors=2)
    black = pal.getpixel((0, 0))
    decoded = read_image(gen.pil_bytes(pal, "PNG", transparency=black))
    assert decoded.image.shape == (8, 8, 4)
    assert (decoded.image[:, :4, 3] == 0).all() and (decoded.image[:, 4:, 3] == 255).all()
    assert (decoded.image[:, 4:, :3] == (0, 0, 255)).all()  # red in BGR


def test_palette_png_without_transparency_becomes_bgr():
    rgb = gen.noise(channels=3, seed=7)
    pal = Image.fromarray(rgb).quantize(colors=16)
    decoded = read_image(gen.pil_bytes(pal, "PNG"))
    assert decoded.image.shape == (12, 16, 3)
    np.testing.assert_array_equal(decoded.image[:, :, ::-1], np.asarray(pal.convert("RGB")))


def test_cmyk_jpeg_reads_as_bgr_with_pillow_colours():
    rgb = gen.noise(16, 16, seed=3)
    rgb[:8, :8] = (0, 255, 255)  # cyan
    data = gen.pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=100,
                         icc_profile=gen.fake_icc(b"CMYK"))
    decoded = read_image(data)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert decoded.image.shape == (16, 16, 3)
    assert np.abs(decoded.image[:, :, ::-1].astype(int) - reference).max() <= 2
    assert np.abs(decoded.image[2, 2].astype(int) - (255, 255, 0)).max() <= 3  # cyan, BGR
    assert decoded.icc is None  # the CMYK profile no longer describes the pixels


def test_cmyk_tiff_reads_as_bgr():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:] = (255, 200, 100)
    decoded = read_image(gen.pil_bytes(Image.fromarray(rgb).convert("CMYK"), "TIFF"))
    assert decoded.image.shape == (4, 6, 3)
    assert np.abs(decoded.image.astype(int) - (100, 200, 255)).max() <= 1


def test_float_tiff_is_refused():
    data = gen.pil_bytes(Image.fromarray(np.ones((4, 6), np.float32)), "TIFF")
    message = error_of(read_image, data, name="float.tif")
    assert message == "float.tif: float32 samples are not supported (only 8- and 16-bit images)"


def test_format_comes_from_content_not_extension(tmp_path):
    path = write_bytes(tmp_path / "really-a-png.jpg", encode_image(gen.gradient(), "png"))
    assert read_image(path).format == "png"


def test_names_of_sources(tmp_path, monkeypatch):
    data = encode_image(gen.gradient(), "png")
    assert read_image(data).name == "<bytes>"
    assert read_image(data, name="upload.png").name == "upload.png"
    path = write_bytes(tmp_path / "a.png", data)
    assert read_image(str(path)).name == str(path)
    assert read_image(path, name="shown").name == "shown"

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    decoded = read_image("-")
    assert decoded.name == "<stdin>"
    np.testing.assert_array_equal(decoded.image, gen.gradient())


def test_reading_leaves_the_input_unchanged(tmp_path):
    data = gen.pil_bytes(gen.noise(seed=9), "JPEG", exif=b"Exif\0\0" + gen.exif_block(6))
    path = write_bytes(tmp_path / "in.jpg", data)
    before, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    buffer = bytearray(data)
    read_image(path)
    read_image(buffer)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert path.stat().st_mtime_ns == mtime
    assert bytes(buffer) == data


# -- EXIF orientation -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(fmt, orientation):
    rgb = gen.noise(6, 10, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = gen.pil_bytes(Image.fromarray(rgb), fmt, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = read_image(data)
    np.testing.assert_array_equal(decoded.image[:, :, ::-1], expected)
    if fmt == "PNG":
        assert gen.orientation_of(decoded.exif) == 1


def test_exif_rotated_jpeg_is_upright():
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:8, :8] = (255, 0, 0)  # red mark in the stored top-left corner
    data = gen.pil_bytes(rgb, "JPEG", quality=100, exif=b"Exif\0\0" + gen.exif_block(6))
    decoded = read_image(data)
    assert decoded.image.shape == (48, 32, 3)  # rotated 90 degrees clockwise
    assert tuple(decoded.image[2, -3]) == pytest.approx((0, 0, 255), abs=8)  # mark now top-right
    assert decoded.image[2, 2].max() < 8
    assert gen.orientation_of(decoded.exif) == 1
    parsed = Image.Exif()
    parsed.load(b"Exif\0\0" + decoded.exif)
    assert parsed[0x010F] == "gantools-test"


def test_jpeg_without_exif_is_untouched():
    data = gen.pil_bytes(gen.noise(10, 20, seed=2), "JPEG", quality=90)
    decoded = read_image(data)
    plain = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.exif is None and decoded.icc is None
    np.testing.assert_array_equal(decoded.image, plain)


# -- metadata -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_icc_and_exif_survive_read_encode_read(fmt):
    icc = gen.srgb_icc()
    rgb = gen.gradient(16, 16)
    data = gen.pil_bytes(rgb, fmt.upper(), icc_profile=icc, exif=b"Exif\0\0" + gen.exif_block(3))
    first = read_image(data)
    assert first.icc == icc
    again = read_image(encode_image(first.image, fmt, icc=first.icc, exif=first.exif))
    assert again.icc == icc
    assert again.exif == first.exif
    assert gen.orientation_of(again.exif) == 1
    with Image.open(io.BytesIO(encode_image(first.image, fmt, icc=icc, exif=first.exif))) as im:
        assert im.info["icc_profile"] == icc  # Pillow finds it too
        assert im.getexif()[0x010F] == "gantools-test"


def test_png_with_icc_profile_from_pillow(tmp_path):
    icc = gen.srgb_icc()
    path = write_bytes(tmp_path / "icc.png", gen.pil_bytes(gen.gradient(), "PNG", icc_profile=icc))
    decoded = read_image(path)
    assert decoded.icc == icc
    np.testing.assert_array_equal(decoded.image[:, :, ::-1], gen.gradient())


def test_png_metadata_chunks_are_placed_and_valid():
    data = encode_image(gen.gradient(), "png", icc=gen.srgb_icc(), exif=gen.exif_block())
    assert gen.png_chunk_types(data)[:3] == [b"IHDR", b"iCCP", b"eXIf"]
    with Image.open(io.BytesIO(data)) as im:
        im.verify()  # checks every chunk CRC
    np.testing.assert_array_equal(read_image(data).image, gen.gradient())


def test_jpeg_metadata_is_inserted_without_reencoding():
    image = gen.noise(16, 16, seed=5)
    plain = encode_image(image, "jpeg")
    tagged = encode_image(image, "jpeg", icc=gen.srgb_icc(), exif=gen.exif_block())
    assert gen.jpeg_markers(tagged)[:4] == [0xD8, 0xE0, 0xE1, 0xE2]  # SOI, JFIF, Exif, ICC
    assert tagged.endswith(plain[2 + 2 + int.from_bytes(plain[4:6], "big"):])  # same scan data
    np.testing.assert_array_equal(read_image(tagged).image, read_image(plain).image)


def test_large_icc_profile_spans_several_jpeg_segments():
    big = gen.fake_icc(b"RGB ", 150_000)
    data = encode_image(gen.gradient(), "jpeg", icc=big)
    assert gen.jpeg_markers(data).count(0xE2) == 3
    assert read_image(data).icc == big
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == big


def test_written_exif_orientation_is_one_and_pixels_not_rotated():
    image = gen.noise(8, 20, seed=8)
    data = encode_image(image, "png", exif=b"Exif\0\0" + gen.exif_block(6))
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif()[0x0112] == 1
    np.testing.assert_array_equal(read_image(data).image, image)


def test_mismatched_icc_is_not_written_and_warned():
    warnings: list[str] = []
    data = encode_image(gen.checker(), "png", icc=gen.srgb_icc(), warn=warnings.append)
    assert warnings == ["ICC profile (RGB) does not fit a 16x12 gray uint8 image; not written"]
    assert b"iCCP" not in gen.png_chunk_types(data)


def test_webp_metadata_is_read_but_not_written():
    icc = gen.srgb_icc()
    data = gen.pil_bytes(gen.gradient(), "WEBP", lossless=True, icc_profile=icc,
                         exif=b"Exif\0\0" + gen.exif_block(1))
    decoded = read_image(data)
    assert decoded.icc == icc and gen.orientation_of(decoded.exif) == 1
    np.testing.assert_array_equal(decoded.image[:, :, ::-1], gen.gradient())
    warnings: list[str] = []
    out = encode_image(decoded.image, "webp", icc=icc, exif=decoded.exif, warn=warnings.append)
    assert warnings == [] and read_image(out).icc is None


# -- paths and writing ----------------------------------------------------------------------------
def test_unicode_path_with_spaces_reads_and_writes(tmp_path):
    path = tmp_path / "ñandú photos" / "café 東京.png"
    image = gen.noise(seed=11)
    write_image(path, encode_image(image, "png"))
    assert path.is_file()
    decoded = read_image(path)
    assert decoded.name == str(path)
    np.testing.assert_array_equal(decoded.image, image)
    message = error_of(read_image, path.with_name("café 東京 missing.png"))
    assert "café 東京 missing.png" in message


def test_write_creates_missing_parents_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "b" / "out.jpg"
    write_image(path, b"payload")
    assert path.read_bytes() == b"payload"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.jpg"]


def test_write_new_file_mode_follows_umask_and_replace_keeps_mode(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    atomic._umask.cache_clear()
    new = tmp_path / "new.png"
    write_image(new, b"x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~mask
    old = tmp_path / "old.png"
    old.write_bytes(b"old")
    old.chmod(0o600)
    write_image(old, b"new")
    assert old.read_bytes() == b"new" and stat.S_IMODE(old.stat().st_mode) == 0o600


def test_write_into_a_parent_that_is_a_file(tmp_path):
    blocker = write_bytes(tmp_path / "blocker", b"i am a file")
    dest = blocker / "out.png"
    message = error_of(write_image, dest, b"data")
    assert message == f"{dest}: cannot write: {blocker} is a file, not a folder"
    assert blocker.read_bytes() == b"i am a file"
    assert list(tmp_path.iterdir()) == [blocker]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    dest = write_bytes(tmp_path / "keep.png", b"old content")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    message = error_of(write_image, dest, b"new content")
    assert message == f"{dest}: cannot write: No space left on device"
    assert dest.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_keyboard_interrupt_during_write_removes_temp(tmp_path, monkeypatch):
    seen: list[str] = []

    def interrupted(src, dst):
        seen.append(os.path.basename(src))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    dest = tmp_path / "out.png"
    with pytest.raises(KeyboardInterrupt):
        write_image(dest, b"data")
    assert seen and seen[0].startswith(".out.png.") and seen[0].endswith(".part")
    assert list(tmp_path.iterdir()) == []


def test_encode_failure_writes_nothing(tmp_path):
    dest = tmp_path / "wide.webp"
    with pytest.raises(ImageError, match="at most 16383 pixels a side"):
        write_image(dest, encode_image(np.zeros((1, 16_384), np.uint8), "webp"))
    assert list(tmp_path.iterdir()) == []


def test_write_to_stdout(monkeypatch):
    class Stdout:
        buffer = io.BytesIO()

    monkeypatch.setattr(sys, "stdout", Stdout)
    write_image("-", b"\x89PNG bytes")
    assert Stdout.buffer.getvalue() == b"\x89PNG bytes"


# -- the one atomic writer, as used outside image writing -----------------------------------------
@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    """Run the test under a given process umask (the writer's cached reading is refreshed)."""
    old = os.umask(request.param)
    atomic._umask.cache_clear()
    yield request.param
    os.umask(old)
    atomic._umask.cache_clear()


def test_run_dir_and_export_files_get_umask_permissions(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from gantools.train.export import save_safetensors
    from gantools.train.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.create()
    run.write_config({"steps": 1})
    ckpt = run.save_checkpoint({"step": 1}, step=1, keep=2)
    export = save_safetensors(run.export_path, {"w": torch.zeros(2)}, {"format": "x"})
    for path in (run.config_path, ckpt, export):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name  # 0o644 under 022
    assert sorted(p.name for p in run.path.iterdir()) == [
        "checkpoints", "config.json", "export.safetensors", "samples"]


def test_atomic_path_renames_on_success_and_cleans_up_on_exception(tmp_path, umask):
    dest = write_bytes(tmp_path / "walk.mp4", b"old")
    with pytest.raises(RuntimeError, match="encoder failed"):
        with atomic.atomic_path(dest, suffix=".mp4") as temp:
            assert temp.parent == tmp_path and temp.name.startswith(".walk.mp4.")
            assert temp.suffix == ".mp4" and temp.is_file()
            temp.write_bytes(b"partial")
            raise RuntimeError("encoder failed")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["walk.mp4"]
    new = tmp_path / "sub" / "new.mp4"
    with atomic.atomic_path(new, suffix=".mp4") as temp:
        temp.write_bytes(b"whole")
        assert not new.exists()
    assert new.read_bytes() == b"whole" and stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in new.parent.iterdir()] == ["new.mp4"]


# -- read errors ----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    assert error_of(read_image, path) == f"{path}: file not found"


def test_directory(tmp_path):
    assert error_of(read_image, tmp_path) == f"{tmp_path}: is a directory, not an image file"


def test_empty_file(tmp_path):
    path = write_bytes(tmp_path / "empty.png", b"")
    assert error_of(read_image, path) == f"{path}: empty file"


def test_text_file_named_jpg(tmp_path):
    path = write_bytes(tmp_path / "notes.jpg", "just some notes, ñ\n".encode())
    message = error_of(read_image, path)
    expected = "not a recognised image (looks like text; expected PNG, JPEG, WebP, TIFF or BMP)"
    assert message == f"{path}: {expected}"


def test_unsupported_format_is_named(tmp_path):
    path = write_bytes(tmp_path / "anim.gif", gen.pil_bytes(gen.checker(), "GIF"))
    assert "GIF is not supported" in error_of(read_image, path)
    binary = error_of(read_image, bytes(range(256)), name="blob")
    assert binary == "blob: not a recognised image (expected PNG, JPEG, WebP, TIFF or BMP)"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, parsing a cut TIFF header
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "tiff", "bmp"])
def test_truncated_at_half(tmp_path, fmt):
    data = encode_image(gen.noise(24, 24, seed=1), fmt)
    path = write_bytes(tmp_path / f"cut{gio.FORMATS[fmt]}", data[: len(data) // 2])
    label = formats.get(fmt).label
    assert error_of(read_image, path) == f"{path}: truncated or corrupt {label} data"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_truncation_is_caught_even_if_the_decoder_is_lenient(monkeypatch, fmt):
    exif = gen.exif_block() + b"\xff\xd9 an EOI-looking pair inside APP1"
    data = encode_image(gen.noise(24, 24, seed=1), fmt, exif=exif)
    lenient_decoder(monkeypatch)
    assert read_image(data).image.shape == (24, 24, 3)  # the fake decoder works on whole files
    message = error_of(read_image, data[: len(data) // 2], name="cut")
    assert message == f"cut: truncated or corrupt {formats.get(fmt).label} data"


def test_corrupt_png_data(tmp_path):
    data = bytearray(encode_image(gen.noise(seed=2), "png"))
    data[60:70] = b"\0" * 10  # inside IDAT: CRC and zlib stream break
    assert error_of(read_image, bytes(data), name="bad.png") == "bad.png: truncated or corrupt PNG data"


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "bomb.png", gen.png_header_only(40_000, 40_000))
    no_decoding(monkeypatch)
    start = time.perf_counter()
    message = error_of(read_image, path)
    assert time.perf_counter() - start < 1.0
    assert message == (
        f"{path}: image is 40000x40000 = 1600000000 pixels, above the limit of 89478485 "
        "(raise it with --max-pixels)"
    )
    beyond_opencv = error_of(read_image, path, max_pixels=None)
    assert "above OpenCV's decoding limit" in beyond_opencv


def test_max_pixels_boundary():
    data = encode_image(gen.gradient(12, 16), "png")
    assert read_image(data, max_pixels=192).image.shape == (12, 16, 3)
    assert "above the limit of 191" in error_of(read_image, data, max_pixels=191)


def test_bomb_check_does_not_touch_pillow_globals():
    before = Image.MAX_IMAGE_PIXELS
    error_of(read_image, gen.png_header_only(40_000, 40_000))
    assert Image.MAX_IMAGE_PIXELS == before


def test_name_with_control_characters_stays_on_one_line():
    message = error_of(read_image, b"", name="evil\nname.png")
    assert message == "evil\\nname.png: empty file"


# -- encoding policies ----------------------------------------------------------------------------
def test_alpha_to_jpeg_is_composited_on_background_with_one_warning():
    image = np.zeros((16, 16, 4), np.uint8)
    image[:, :, 2] = 255  # red
    image[:, :, 3] = 128  # half transparent
    warnings: list[str] = []
    decoded = read_image(encode_image(image, "jpeg", quality=100, warn=warnings.append))
    assert warnings == ["alpha composited on white background for JPEG"]
    assert decoded.image.shape == (16, 16, 3)
    assert np.abs(decoded.image[8, 8].astype(int) - (127, 127, 255)).max() <= 3


def test_alpha_composite_values_and_background_colour():
    image = np.zeros((2, 3, 4), np.uint8)
    image[0, 0] = (200, 100, 50, 255)  # opaque: unchanged
    image[0, 1] = (200, 100, 50, 0)  # transparent: background
    image[0, 2] = (0, 0, 0, 51)  # 20 % black over the background
    warnings: list[str] = []
    out = read_image(encode_image(image, "bmp", background=(10, 20, 250), warn=warnings.append)).image
    assert warnings == ["alpha composited on #0a14fa background for BMP"]
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[0, 1].tolist() == [250, 20, 10]  # RGB background written as BGR
    assert out[0, 2].tolist() == [200, 16, 8]


def test_opaque_alpha_is_dropped_without_warning():
    image = np.dstack([gen.noise(seed=3), np.full((12, 16), 255, np.uint8)])
    warnings: list[str] = []
    out = read_image(encode_image(image, "bmp", warn=warnings.append)).image
    assert warnings == []
    np.testing.assert_array_equal(out, image[:, :, :3])


def test_16_bit_to_8_bit_formats_warns_and_rounds():
    values = np.array([[0, 128, 129, 257 * 200, 257 * 200 + 128, 65535]], np.uint16)
    warnings: list[str] = []
    out = read_image(encode_image(values, "bmp", warn=warnings.append)).image
    assert warnings == ["16-bit image reduced to 8 bits for BMP"]
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 1, 200, 200, 255]]
    jpeg_warnings: list[str] = []
    deep = gen.gradient(16, 16, channels=1, dtype=np.uint16)
    jpeg = read_image(encode_image(deep, "jpeg", quality=100, warn=jpeg_warnings.append)).image
    assert jpeg_warnings == ["16-bit image reduced to 8 bits for JPEG"]
    assert jpeg.dtype == np.uint8 and jpeg.shape == (16, 16)
    assert np.abs(jpeg.astype(int) - np.rint(deep / 257)).max() <= 2


def test_16_bit_bgra_to_jpeg_warns_twice_once_per_problem():
    image = gen.noise(channels=4, dtype=np.uint16, seed=12)
    warnings: list[str] = []
    encode_image(image, "jpeg", warn=warnings.append)
    assert warnings == [
        "alpha composited on white background for JPEG",
        "16-bit image reduced to 8 bits for JPEG",
    ]


def test_quality_changes_jpeg_size_and_bad_quality_raises():
    image = gen.noise(32, 32, seed=6)
    assert len(encode_image(image, "jpeg", quality=10)) < len(encode_image(image, "jpeg", quality=95))
    with pytest.raises(ValueError, match="0-9"):
        encode_image(image, "png", quality=50)


def test_invalid_array_is_a_value_error():
    with pytest.raises(ValueError, match="dtype"):
        encode_image(np.zeros((4, 4), np.float32), "png")


def test_import_does_not_load_torch():
    code = "import gantools.image.codec, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decoded_is_a_plain_dataclass():
    decoded = read_image(encode_image(gen.gradient(), "png"))
    assert isinstance(decoded, Decoded)
    assert (decoded.format, decoded.icc, decoded.exif) == ("png", None, None)
