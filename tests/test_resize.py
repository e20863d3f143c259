"""The reference plugin ``resize``: every layout and depth, alpha, the scale option."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gantools
from imagegen import gradient
from gantools.plugin import OptionError


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_layout_and_depth_are_preserved(channels, dtype):
    src = gradient(10, 14, channels, dtype)
    out = gantools.load("resize").process(src)
    assert out.dtype == dtype
    assert out.shape == (20, 28) + src.shape[2:]


def test_gray_with_a_channel_axis_keeps_it():
    src = gradient(6, 8, 1)[:, :, None]
    assert gantools.load("resize").process(src).shape == (12, 16, 1)


def test_sixteen_bit_values_are_kept_beyond_eight_bits():
    src = np.full((8, 8), 1000, np.uint16)  # not representable in 8 bits scaled back
    out = gantools.load("resize", method="bicubic").process(src)
    assert np.all(out == 1000)


def test_alpha_is_resized_with_the_image():
    src = np.zeros((8, 8, 4), np.uint8)
    src[:, :, :3] = 200
    src[:, 4:, 3] = 255  # right half opaque
    out = gantools.load("resize", method="nearest").process(src)
    assert out.shape == (16, 16, 4)
    assert np.all(out[:, :8, 3] == 0) and np.all(out[:, 8:, 3] == 255)
    assert np.all(out[:, :, :3] == 200)


def test_nearest_replicates_pixels():
    src = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = gantools.load("resize", method="nearest", scale=2).process(src)
    assert np.array_equal(out, np.kron(src, np.ones((2, 2), np.uint8)))


@pytest.mark.parametrize("scale, size", [(1.5, (15, 21)), (0.5, (5, 7)), (3, (30, 42)), (0.01, (1, 1))])
def test_scale_option_sets_the_output_size(scale, size):
    plugin = gantools.load("resize", scale=scale)
    assert plugin.scale == float(scale)
    assert plugin.process(gradient(10, 14)).shape[:2] == size


@pytest.mark.parametrize("method", ["lanczos", "bicubic", "area", "nearest"])
def test_every_method_keeps_a_flat_image_flat(method):
    src = np.full((9, 9, 3), 77, np.uint8)
    out = gantools.load("resize", method=method, scale=1.7).process(src)
    assert np.all(out == 77)


@pytest.mark.parametrize("options, flag", [
    ({"scale": 0}, "--scale"), ({"scale": -1}, "--scale"), ({"scale": 17}, "--scale"),
    ({"scale": "big"}, "--scale"), ({"method": "cubic"}, "--method"),
])
def test_invalid_options_name_the_option(options, flag):
    with pytest.raises(OptionError, match=flag):
        gantools.load("resize", **options)


def test_descriptor():
    d = gantools.load("resize").descriptor
    assert (d.name, d.scale, d.tiling, d.weights) == ("resize", 2, False, "none")
    assert {o.name for o in d.options} == {"scale", "method"}


def test_rejects_arrays_outside_the_contract():
    with pytest.raises(ValueError, match="dtype"):
        gantools.load("resize").process(np.zeros((4, 4), np.float32))


def test_importing_the_plugin_does_not_import_opencv_or_torch():
    code = ("import sys, gantools_resize; "
            "print(sorted(m for m in ('cv2', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
