"""The ``upscale`` plugin: weights resolution, layouts, dtypes, tiling, outscale, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gantools.nn import create_arch
from gantools.plugin import OptionError
from gantools.registry import load
from gantools.train.export import export_generator
from gantools.weights import shipped


def _export(path, scale: int = 2, feat: int = 8, conv: int = 2) -> str:
    torch.manual_seed(0)
    cfg = dict(num_in_ch=3, num_out_ch=3, num_feat=feat, num_conv=conv, upscale=scale, act_type="prelu")
    model = create_arch("srvgg", **cfg)
    export_generator(path, model, "srvgg", cfg, {"task": "upscale", "scale": str(scale)})
    return str(path)


@pytest.fixture(scope="module")
def weights_x2(tmp_path_factory) -> str:
    return _export(tmp_path_factory.mktemp("w") / "x2.safetensors", scale=2)


def _img(h: int, w: int, c: int = 3, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(h * 1000 + w)
    maxv = 65535 if dtype == np.uint16 else 255
    shape = (h, w) if c == 1 else (h, w, c)
    return (rng.random(shape) * maxv).astype(dtype)


def test_narrow_networks_run_fp32_with_their_own_backend_row(weights_x2, tmp_path) -> None:
    narrow = load("upscale", weights=weights_x2, precision="bf16")
    narrow.ensure_setup()
    assert narrow.runner.resolve(np.dtype(np.uint8)) == "fp32"  # bf16 measured slower with so few channels
    assert narrow.runner.descriptor.backend_family == "srvgg-narrow"
    wide = load("upscale", weights=_export(tmp_path / "wide.safetensors", feat=32, conv=1), precision="bf16")
    wide.ensure_setup()
    assert wide.runner.resolve(np.dtype(np.uint8)) == "bf16" and wide.runner.descriptor.backend_family == "srvgg"


def test_scale_comes_from_weights(weights_x2) -> None:
    p = load("upscale", weights=weights_x2, precision="fp32")
    assert p.scale == 2
    assert p.process(_img(10, 12)).shape == (20, 24, 3)


def test_contradicting_scale_is_an_error(weights_x2) -> None:
    plugin = load("upscale", weights=weights_x2, scale=4)  # weights are read on first use, not here
    with pytest.raises(OptionError, match="--scale: 4 contradicts"):
        plugin.ensure_setup()


@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_layouts_and_dtypes_are_kept(weights_x2, c, dtype) -> None:
    img = _img(9, 7, c, dtype)
    out = load("upscale", weights=weights_x2).process(img)
    assert out.dtype == dtype
    assert out.shape == ((18, 14) if c == 1 else (18, 14, c))
    if c == 4:  # alpha resized with the image (bicubic by default)
        import cv2

        expect = cv2.resize(img[:, :, 3], (14, 18), interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(out[:, :, 3], expect)


def test_sixteen_bit_runs_at_full_precision(tmp_path) -> None:
    img = _img(8, 8, 3, np.uint16)
    wide = _export(tmp_path / "wide.safetensors", feat=32, conv=1)  # narrow networks run fp32 anyway
    p = load("upscale", weights=wide, precision="bf16")
    p.ensure_setup()
    assert p.runner.resolve(img.dtype) == "fp32" and p.runner.resolve(np.dtype(np.uint8)) == "bf16"
    out = p.process(img)
    assert len(np.unique(out)) > 256  # not quantised to 8 bits


def test_alpha_through_model(weights_x2) -> None:
    img = _img(8, 8, 4)
    img[:, :, 3] = 255
    out = load("upscale", weights=weights_x2, alpha="model", precision="fp32").process(img)
    assert out.shape == (16, 16, 4)
    assert out[:, :, 3].min() >= 200  # an opaque plane stays (nearly) opaque through the net


def test_tiled_equals_untiled(weights_x2) -> None:
    img = _img(70, 90)
    whole = load("upscale", weights=weights_x2, tile=0, precision="fp32").process(img).astype(int)
    tiled = load("upscale", weights=weights_x2, tile=32, precision="fp32").process(img).astype(int)
    assert np.abs(whole - tiled).max() <= 1


@pytest.fixture(scope="module")
def weights_x4(tmp_path_factory) -> str:
    return _export(tmp_path_factory.mktemp("w") / "x4.safetensors", scale=4, conv=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 72), w=st.integers(1, 72), tile=st.integers(24, 64), x4=st.booleans(),
       c=st.sampled_from([1, 3, 4]))
def test_tiled_equals_untiled_property(weights_x2, weights_x4, h, w, tile, x4, c) -> None:
    """Through the whole plugin (padding, gray, alpha, blending): tiled == untiled within 1/255."""
    weights = weights_x4 if x4 else weights_x2
    img = _img(h, w, c)
    whole = load("upscale", weights=weights, tile=0, precision="fp32", alpha="model").process(img).astype(int)
    tiled = load("upscale", weights=weights, tile=tile, precision="fp32", alpha="model").process(img).astype(int)
    assert whole.shape == tiled.shape
    assert np.abs(whole - tiled).max() <= 1


@pytest.mark.parametrize("outscale,size,interp", [(3.0, (30, 60), "LANCZOS4"), (1.5, (15, 30), "AREA")])
def test_outscale(weights_x2, outscale, size, interp) -> None:
    """--outscale: the model's x2 result resized to exactly outscale x the input (Lanczos up, area down)."""
    import cv2

    img = _img(10, 20)
    out = load("upscale", weights=weights_x2, outscale=outscale, precision="fp32").process(img)
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    x2 = load("upscale", weights=weights_x2, precision="fp32").process(img)
    expect = cv2.resize(x2, size[::-1], interpolation=getattr(cv2, f"INTER_{interp}")).astype(int)
    assert np.abs(out.astype(int) - expect).max() <= 1


def test_one_pixel_image(weights_x2) -> None:
    """A 1x1 image is a valid input: the network runs on that one RGB pixel, like on any image."""
    from gantools.train.export import read_export

    state, _ = read_export(weights_x2)
    net = create_arch("srvgg", num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2, act_type="prelu")
    net.load_state_dict(state)
    img = np.array([[[30, 140, 250]]], np.uint8)  # BGR
    out = load("upscale", weights=weights_x2, precision="fp32").process(img)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    with torch.no_grad():
        rgb = torch.tensor(img[0, 0, ::-1] / 255.0, dtype=torch.float32).view(1, 3, 1, 1)
        expect = (net.eval()(rgb).clamp(0, 1)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round()
    assert np.abs(out.astype(int) - expect.astype(int)).max() <= 1


def test_jpeg_degradation_keeps_colours() -> None:
    """The JPEG step of the training degradation encodes RGB as RGB (OpenCV's codec expects BGR).

    Reference: Pillow's JPEG round trip, which takes RGB, at the same quality and 4:2:0 chroma
    subsampling. Red-only and blue-only detail are compressed differently (red weighs 0.299 in
    luma, blue 0.114), so a channel swap around the encoder shows as errors of ~25 levels.
    """
    import io

    from PIL import Image

    from gantools_upscale.degrade import jpeg

    x = np.arange(32)[None, :].repeat(32, 0)
    img = np.zeros((32, 32, 3), np.float32)
    img[:, :, 0] = x % 2  # 1-px red stripes on black, left to right
    img[16:, :, 0], img[16:, :, 2] = 0, x[16:] % 2  # blue stripes in the lower half
    buf = io.BytesIO()
    Image.fromarray((img * 255).astype(np.uint8)).save(buf, "JPEG", quality=90, subsampling=2)
    expect = np.asarray(Image.open(buf).convert("RGB")).astype(int)
    out = jpeg(img, np.random.default_rng(0), (90, 90))
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(np.round(out * 255).astype(int) - expect).max() <= 2


def test_tile_not_above_overlap(weights_x2) -> None:
    with pytest.raises(ValueError, match="larger than the overlap"):
        load("upscale", weights=weights_x2, tile=8).process(_img(40, 40))


def test_unknown_and_truncated_weights(tmp_path) -> None:
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(odd))
    with pytest.raises(ValueError, match="(?i)srvgg|rrdb|supported"):
        load("upscale", weights=str(odd)).ensure_setup()
    good = _export(tmp_path / "g.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(open(good, "rb").read()[:200])
    with pytest.raises(ValueError, match="cut.safetensors"):
        load("upscale", weights=str(cut)).ensure_setup()


def test_realesrgan_x2plus_layout_runs(tmp_path) -> None:
    cfg = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    model = create_arch("rrdbnet", **cfg)
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    p = load("upscale", weights=str(path), precision="fp32")
    assert p.scale == 2
    assert p.process(_img(7, 9)).shape == (14, 18, 3)  # odd sizes padded to the unshuffle multiple


def test_unshipped_pair_lists_shipped_ones() -> None:
    names = {(m.name, m.scale) for m in shipped("upscale")}
    assert ("fast", 4) in names and ("fast", 2) not in names  # fast is made for x4 only
    with pytest.raises(OptionError, match="shipped"):
        load("upscale", model="fast", scale=2)


@pytest.mark.parametrize("model", ["fidelity", "photo"])
def test_shipped_models_beat_bicubic_on_a_chart(model) -> None:
    import cv2
    from PIL import Image

    from gantools.charts import make_chart

    hr = make_chart("star", 128)
    hr = hr if hr.ndim == 3 else cv2.cvtColor(hr, cv2.COLOR_GRAY2BGR)
    lr = np.asarray(Image.fromarray(hr[:, :, ::-1]).resize((32, 32), Image.BICUBIC))[:, :, ::-1].copy()
    bic = np.asarray(Image.fromarray(lr[:, :, ::-1]).resize((128, 128), Image.BICUBIC))[:, :, ::-1]
    sr = load("upscale", model=model, scale=4).process(lr)
    assert sr.shape == hr.shape and sr.dtype == np.uint8

    def psnr(a):
        return 10 * np.log10(255.0**2 / np.mean((a[8:-8, 8:-8].astype(float) - hr[8:-8, 8:-8]) ** 2))

    assert psnr(sr) > psnr(bic) + (1.0 if model == "fidelity" else 0.0)
