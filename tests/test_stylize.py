"""``stylize`` plugin: options, weights resolution, colour helpers, alpha, seam-free tiling.

Networks are tiny random-initialised ones written as gantools exports or third-party state
dicts in ``tmp_path``; no data from outside the tests is used.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gantools_stylize import Stylize
from gantools_stylize import loader
from gantools_stylize.color import blend, preserve_color, reinhard
from gantools.plugin import OptionError
from gantools.train.export import export_generator

torch.set_num_threads(1)
TINY = {"base_channels": 8, "n_res": 2, "norm": "instance", "in_channels": 3, "out_channels": 3}


def tiny_export(path: Path, *, task: str = "stylize", seed: int = 0, **cfg) -> str:
    """A random stylenet written as a gantools export of ``task``."""
    from gantools.nn import create_arch

    torch.manual_seed(seed)
    config = {**TINY, **cfg}
    model = create_arch("stylenet", **config)
    export_generator(path, model, "stylenet", config, {"task": task, "style": "tiny", "source": "tiny.png", "mode": "painting"})
    return str(path)


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """BGR uint8: dark textured left half, bright smooth right half, a few shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 40 + 30 * np.sin(x / 7.0) * (x < w // 2) + 170 * (x >= w // 2)
    img[..., 1] = 60 + 120 * y / h
    img[..., 2] = 90 + 40 * np.cos(y / 11.0 + x / 13.0)
    img += rng.normal(0, 6, img.shape) * (x < w // 2)[..., None]
    img[h // 4 : h // 2, w // 5 : w // 3] = (20, 200, 230)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def weights(tmp_path: Path) -> str:
    return tiny_export(tmp_path / "export.safetensors")


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_strength_outside_range(weights: str, strength: float) -> None:
    with pytest.raises(OptionError, match="--strength"):
        Stylize(weights=weights, strength=strength)


def test_no_shipped_styles_says_how_to_train(monkeypatch) -> None:
    monkeypatch.setattr(loader, "shipped_styles", lambda: [])
    with pytest.raises(OptionError, match="gantools train stylize.*--weights"):
        Stylize(style="starry_night")
    with pytest.raises(OptionError, match="gantools train stylize"):
        Stylize()


def test_style_and_weights_exclusive(weights: str) -> None:
    with pytest.raises(OptionError, match="replaces --style"):
        Stylize(style="wave", weights=weights)


def _manifest(tmp_path: Path, monkeypatch, export: str) -> None:
    """A weights folder with a manifest of two styles (same file), active for this test."""
    import gantools.weights as gw

    wdir = tmp_path / "weights"
    wdir.mkdir()
    data = Path(export).read_bytes()
    (wdir / "stylize-wave.safetensors").write_bytes(data)
    digest = gw.sha256_file(wdir / "stylize-wave.safetensors")
    entries = [
        f'[[model]]\nfile = "stylize-wave.safetensors"\ntask = "stylize"\nname = "{name}"\narch = "stylenet"\n'
        f'sha256 = "{digest}"\nsource = "{src}"\nmode = "{mode}"\n'
        for name, src, mode in (("wave", "wave.jpg", "painting"), ("monet", "monet2photo/monet", "domain"))
    ]
    (wdir / "manifest.toml").write_text("\n".join(entries))
    monkeypatch.setattr(gw, "weights_dir", lambda: wdir)
    gw.manifest.cache_clear()


@pytest.fixture
def clear_manifest():
    import gantools.weights as gw

    yield
    gw.manifest.cache_clear()


def test_shipped_style_and_unknown_style(tmp_path, monkeypatch, weights, clear_manifest) -> None:
    _manifest(tmp_path, monkeypatch, weights)
    with pytest.raises(OptionError, match=r"unknown style 'starry'.*shipped: wave, monet"):
        Stylize(style="starry")
    with pytest.raises(OptionError, match=r"choose a style \(shipped: wave, monet\)"):
        Stylize()
    out = Stylize(style="wave", threads=1).process(scene(32, 40))
    assert out.shape == (32, 40, 3) and out.dtype == np.uint8
    assert loader.style_summary() == "wave (wave.jpg), monet (monet2photo/monet, domain)"


def test_shipped_style_with_damaged_file(tmp_path, monkeypatch, weights, clear_manifest) -> None:
    _manifest(tmp_path, monkeypatch, weights)
    (tmp_path / "weights" / "stylize-wave.safetensors").write_bytes(b"damaged")
    with pytest.raises(OptionError, match="sha256"):
        Stylize(style="wave").ensure_setup()


def test_descriptor_names_training_task_and_styles() -> None:
    from gantools.train.task import get_task
    from gantools_stylize.train import StylizeTask

    desc = Stylize.descriptor
    assert desc.trainable and get_task(desc.name) is StylizeTask
    assert desc.weights and "style" in desc.option("style").help


# -- weights of every kind -----------------------------------------------------------------------
def test_upscale_export_is_refused(tmp_path) -> None:
    path = tiny_export(tmp_path / "sr.safetensors", task="upscale")
    with pytest.raises(OptionError, match="'upscale' model.*not a style-transfer model"):
        Stylize(weights=path).ensure_setup()


def test_third_party_sr_checkpoint_is_refused(tmp_path) -> None:
    from gantools.nn import create_arch

    net = create_arch("srvgg", num_feat=8, num_conv=2, upscale=4)
    torch.save({"params": net.state_dict()}, tmp_path / "sr.pth")
    with pytest.raises(OptionError, match="super-resolution"):
        Stylize(weights=str(tmp_path / "sr.pth")).ensure_setup()


def test_missing_and_garbage_weights(tmp_path) -> None:
    with pytest.raises(OptionError, match="no such file"):
        Stylize(weights=str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(OptionError, match="not a readable checkpoint"):
        Stylize(weights=str(tmp_path / "junk.pth")).ensure_setup()


def _cyclegan_state(n_blocks: int = 6, ngf: int = 8) -> dict:
    from gantools.nn.cyclegan import ResnetGenerator

    torch.manual_seed(0)
    return ResnetGenerator(3, 3, ngf, n_blocks).state_dict()


def test_cyclegan_checkpoint_loads_and_tiles(tmp_path) -> None:
    torch.save(_cyclegan_state(6), tmp_path / "latest_net_G_A.pth")
    plugin = Stylize(weights=str(tmp_path / "latest_net_G_A.pth"), threads=1)
    img = scene(160, 200)
    whole = plugin.process(img)
    assert whole.shape == img.shape
    tiler = Stylize(weights=str(tmp_path / "latest_net_G_A.pth"), threads=1, tile=48)
    tiled = tiler.process(img)  # tile raised to 2x the overlap; frozen stats keep tiles consistent
    assert tiler.runner.tiler.min_tile(tiler.runner.descriptor) < max(img.shape[:2])  # really tiled
    assert np.abs(tiled.astype(int) - whole.astype(int)).mean() < 1.0


def test_cyclegan_unexpected_block_count(tmp_path) -> None:
    state = _cyclegan_state(9)
    broken = {k: v for k, v in state.items() if not k.startswith(("model.14.", "model.15."))}
    torch.save(broken, tmp_path / "latest_net_G.pth")
    with pytest.raises(OptionError, match=r"CycleGAN.*7 residual block\(s\).*resnet_Nblocks layout"):
        Stylize(weights=str(tmp_path / "latest_net_G.pth")).ensure_setup()


def test_animegan_weights_run_whole_in_fp32(tmp_path) -> None:
    from gantools.nn.animegan import AnimeGANv2Generator

    torch.manual_seed(0)
    torch.save(AnimeGANv2Generator().state_dict(), tmp_path / "paprika.pt")
    plugin = Stylize(weights=str(tmp_path / "paprika.pt"), threads=1, tile=32, precision="bf16")
    out = plugin.process(scene(40, 48))
    assert out.shape == (40, 48, 3)
    assert plugin.runner.resolve(np.dtype(np.uint8)) == "fp32" and plugin.runner.tiler is None


# -- colour, strength, alpha, size -------------------------------------------------------------
def test_blend_and_preserve_color_helpers() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert torch.equal(blend(a, b, 0.0), b) and torch.equal(blend(a, b, 1.0), a)
    assert torch.allclose(blend(a, b, 0.25), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError):
        blend(a, b, 2.0)
    from kornia.color import rgb_to_ycbcr

    mid_a, mid_b = 0.3 + 0.4 * a, 0.3 + 0.4 * b  # in gamut after recombination
    out = preserve_color(mid_a, mid_b)
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(mid_b)[:, 1:], atol=1e-5)
    assert torch.allclose(rgb_to_ycbcr(out)[:, :1], rgb_to_ycbcr(mid_a)[:, :1], atol=1e-5)


def test_reinhard_matches_lab_statistics() -> None:
    from gantools_stylize.color import lab_stats

    torch.manual_seed(0)
    content = 0.2 + 0.5 * torch.rand(1, 3, 32, 32)
    style = torch.stack([torch.full((32, 32), 0.6), 0.3 + 0.2 * torch.rand(32, 32), torch.full((32, 32), 0.2)])[None]
    out = reinhard(content, style)
    (m_out, s_out), (m_sty, s_sty) = lab_stats(out), lab_stats(style)
    assert torch.allclose(m_out, m_sty, atol=1.0) and torch.allclose(s_out, s_sty, atol=1.0)


def _ycbcr(bgr: np.ndarray) -> torch.Tensor:
    from kornia.color import rgb_to_ycbcr

    from gantools.tensor import convert

    return rgb_to_ycbcr(convert.to_tensor(bgr, bgr_to_rgb=True))


def test_preserve_color_keeps_chroma(weights: str) -> None:
    img = (scene(48, 64).astype(np.float32) * 0.5 + 64).astype(np.uint8)  # mid tones: no gamut clipping
    styled = Stylize(weights=weights, threads=1).process(img)
    kept = Stylize(weights=weights, threads=1, preserve_color=True).process(img)
    y_in, y_styled, y_kept = _ycbcr(img), _ycbcr(styled), _ycbcr(kept)
    chroma_err = (y_kept[:, 1:] - y_in[:, 1:]).abs().mean().item()
    assert chroma_err < 0.01, chroma_err
    assert (y_styled[:, 1:] - y_in[:, 1:]).abs().mean().item() > 3 * chroma_err  # styling did change chroma
    assert (y_kept[:, :1] - y_styled[:, :1]).abs().mean().item() < 0.02  # luminance is the stylised one


def test_strength_zero_is_identity_and_half_is_between(weights: str) -> None:
    img = scene(40, 52)
    assert np.array_equal(Stylize(weights=weights, strength=0.0).process(img), img)
    full = Stylize(weights=weights, threads=1).process(img).astype(float)
    half = Stylize(weights=weights, threads=1, strength=0.5).process(img).astype(float)
    assert np.abs(half - (full + img) / 2).max() <= 1.0


def test_alpha_gray_and_16bit_layouts(weights: str) -> None:
    plugin = Stylize(weights=weights, threads=1)
    bgra = np.dstack([scene(30, 34), np.linspace(0, 255, 30 * 34).reshape(30, 34).astype(np.uint8)])
    out = plugin.process(bgra)
    assert out.shape == bgra.shape and np.array_equal(out[..., 3], bgra[..., 3])
    gray = scene(30, 34)[..., 1]
    assert plugin.process(gray).shape == gray.shape
    deep = scene(30, 34).astype(np.uint16) * 257
    out16 = plugin.process(deep)
    assert out16.dtype == np.uint16 and out16.shape == deep.shape


def test_size_processes_smaller_and_returns_input_size(weights: str) -> None:
    img = scene(90, 120)
    out = Stylize(weights=weights, threads=1, size=60).process(img)
    assert out.shape == img.shape
    whole = Stylize(weights=weights, threads=1).process(img)
    assert not np.array_equal(out, whole)


# -- tiling ------------------------------------------------------------------------------------
def _boundary_profile(diff: np.ndarray, bounds: list[int], axis: int, band: int = 3) -> tuple[float, float]:
    """Mean of ``diff`` within ``band`` px of interior tile boundaries along ``axis`` vs elsewhere."""
    prof = diff.mean(axis=1 - axis) if diff.ndim == 2 else diff.mean(axis=(1 - axis, 2))
    near = np.zeros(prof.shape[0], bool)
    for b in bounds[1:-1]:
        near[max(0, b - band) : b + band] = True
    return float(prof[near].mean()), float(prof[~near].mean())


def _tiles(plugin: Stylize, h: int, w: int) -> tuple[list[int], list[int]]:
    from gantools.tensor.tiling import _bounds

    plugin.ensure_setup()
    tile = max(plugin.runtime.tile, plugin.runner.tiler.min_tile(plugin.runner.descriptor))
    m = plugin.runner.descriptor.size.multiple
    hp, wp = -(-h // m) * m, -(-w // m) * m
    return _bounds(hp, tile, m), _bounds(wp, tile, m)


@pytest.mark.parametrize("stats_pixels", [None, 300 * 200])
def test_tiled_matches_untiled_without_seams(weights: str, stats_pixels: int | None) -> None:
    img = scene(400, 600)
    whole = Stylize(weights=weights, threads=1, tile=0).process(img).astype(np.float32)
    plugin = Stylize(weights=weights, threads=1, tile=96)
    if stats_pixels:
        plugin.ensure_setup()
        plugin.runner.tiler.stats_pixels = stats_pixels  # statistics from a 300x200 copy of the image
    tiled = plugin.process(img).astype(np.float32)
    ys, xs = _tiles(plugin, 400, 600)
    assert len(ys) > 2 and len(xs) > 2, "the image must really be tiled"
    diff = np.abs(tiled - whole)
    # exact stats when the whole image fits stats_pixels; a downscaled copy shifts them a little
    assert diff.mean() < (0.5 if stats_pixels is None else 6.0), diff.mean()
    for axis, bounds in ((0, ys), (1, xs)):
        near, elsewhere = _boundary_profile(diff, bounds, axis)
        assert near <= 1.5 * elsewhere + 0.25, (axis, near, elsewhere)


def _tone_jump(diff: np.ndarray, ys: list[int], xs: list[int], margin: int = 8) -> float:
    """Mean over neighbouring tiles of the largest per-channel change of the mean signed
    difference between their interiors: a tile-wise tone shift shows as a large value."""
    cells = np.array([[diff[ys[i] + margin : ys[i + 1] - margin, xs[j] + margin : xs[j + 1] - margin].mean((0, 1))
                       for j in range(len(xs) - 1)] for i in range(len(ys) - 1)])
    jumps = np.concatenate([np.abs(cells[:, 1:] - cells[:, :-1]).max(-1).ravel(),
                            np.abs(cells[1:] - cells[:-1]).max(-1).ravel()])
    return float(jumps.mean())


def test_naive_tiles_would_show_tone_jumps(weights: str) -> None:
    """Control: per-tile instance-norm statistics give tile-wise tone shifts; frozen ones do not."""
    from gantools.tensor import convert
    from gantools.tensor.tiling import run_tiled

    img = scene(400, 600)
    plugin = Stylize(weights=weights, threads=1, tile=0)
    whole = plugin.process(img).astype(np.float32)
    model, tiler = plugin.runner.descriptor, plugin.runner.tiler
    with torch.no_grad():
        y = run_tiled(model.model, convert.to_tensor(img, bgr_to_rgb=True), scale=1, tile=96,
                      overlap=tiler.overlap(model), multiple=4, feather=16)
    naive = convert.from_tensor(y, np.uint8, rgb_to_bgr=True).astype(np.float32)
    frozen_plugin = Stylize(weights=weights, threads=1, tile=96)
    frozen_plugin.ensure_setup()
    frozen_plugin.runner.tiler.stats_pixels = 300 * 200
    frozen = frozen_plugin.process(img).astype(np.float32)
    ys, xs = _tiles(frozen_plugin, 400, 600)
    naive_jump, frozen_jump = _tone_jump(naive - whole, ys, xs), _tone_jump(frozen - whole, ys, xs)
    assert naive_jump > 2.5 * frozen_jump, (naive_jump, frozen_jump)


def test_export_metadata_roundtrip(tmp_path) -> None:
    from gantools.train.export import read_export

    path = tiny_export(tmp_path / "e.safetensors")
    _, meta = read_export(path)
    assert meta["task"] == "stylize" and json.loads(meta["arch_config"])["n_res"] == 2
    w = loader.from_file(path)
    assert w.arch == "stylenet" and w.config["base_channels"] == 8


# -- benchmark metrics -------------------------------------------------------------------------
def test_patch_sampler_gathers_exactly_the_unfolded_patches() -> None:
    """The sampler reads only the drawn patches; they equal the same rows of a full F.unfold."""
    import torch.nn.functional as F

    from gantools_stylize import metrics as M

    x = torch.rand(1, 3, 21, 34)
    idx = torch.tensor([0, 1, 26, 27, 13 * 27 + 26, 100])
    assert torch.equal(M._gather(x, idx), F.unfold(x, M.PATCH)[0].T[idx])


def test_style_metrics_basics() -> None:
    from gantools_stylize import metrics as M

    photo = convert_bgr(scene(120, 160))
    painting = convert_bgr(scene(100, 140, seed=3)[:, ::-1].copy() // 2 + 100)
    assert M.content_ssim(photo, photo) == pytest.approx(1.0, abs=1e-5)
    assert M.patches([photo], "color").shape == (2 * M.PATCHES_PER_SCALE, 3 * 64)
    assert M.patches([photo], "texture").shape == (2 * M.PATCHES_PER_SCALE, 64)
    a = M.patches([photo], "color")
    proj = M.projections(a.shape[1])
    assert M.sliced_wasserstein(a, a, proj) == 0.0
    assert M.sliced_wasserstein(a, a + 0.1, proj) == pytest.approx(float((0.1 * proj.sum(0)).abs().mean()), rel=1e-6)
    # an output that *is* the painting is far closer to it than the photo was
    assert M.style_ratio(photo, painting, [painting], "color") < 0.2
    assert M.style_ratio(photo, photo, [painting], "texture") == pytest.approx(1.0)
    # a global colour cast changes colour but not band-pass texture
    cast = (photo + torch.tensor([0.08, -0.03, -0.06]).view(1, 3, 1, 1)).clamp(0, 1)
    assert M.style_ratio(photo, cast, [painting], "texture") == pytest.approx(1.0, abs=0.05)
    # Reinhard colour transfer moves colour towards the painting
    assert M.style_ratio(photo, reinhard(photo, painting), [painting], "color") < 0.8


def convert_bgr(bgr: np.ndarray) -> torch.Tensor:
    from gantools.tensor import convert

    return convert.to_tensor(bgr, bgr_to_rgb=True)


# -- shipped styles --------------------------------------------------------------------------
def _shipped_names() -> list[str]:
    return [m.name for m in loader.shipped_styles()]


@pytest.mark.parametrize("style", _shipped_names() or [pytest.param("none", marks=pytest.mark.skip("no style shipped"))])
def test_shipped_style_restyles_a_chart_and_keeps_its_layout(style: str) -> None:
    """Each shipped style verifies, changes a synthetic scene clearly but keeps its structure."""
    from gantools.charts import make_chart
    from gantools_stylize.metrics import content_ssim

    img = make_chart("scene", (96, 144))
    p = Stylize(style=style, precision="fp32")
    out = p.process(img)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.abs(out.astype(int) - img.astype(int)).mean() > 8  # restyled, not a copy
    assert content_ssim(convert_bgr(img), convert_bgr(out)) > 0.3  # the scene is still there
    kept = Stylize(style=style, precision="fp32", preserve_color=True).process(img)
    chroma = lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(int)  # noqa: E731
    assert np.abs(chroma(kept) - chroma(img)).mean() < np.abs(chroma(out) - chroma(img)).mean()


def test_info_lists_shipped_styles_with_their_sources() -> None:
    summary = loader.style_summary()
    for m in loader.shipped_styles():
        assert m.name in summary and m.extra.get("source", "") in summary


def test_tiles_are_sized_on_the_working_image(weights: str, monkeypatch) -> None:
    """--size 128 on a 512 px input: the 128 px working image fits the tile budget, so it runs
    whole (sizing tiles on the 512 px input would have tiled the small working image)."""
    from gantools.tensor.tiling import auto_tile

    monkeypatch.setenv("GANTOOLS_TILE_BUDGET_MB", "8")
    assert auto_tile(512, 512, 1) > 0 and auto_tile(128, 128, 1) == 0
    img = scene(512, 512)
    auto = Stylize(weights=weights, threads=1, size=128)
    out = auto.process(img)
    assert auto.runner._used_tile == 0
    whole = Stylize(weights=weights, threads=1, size=128, tile=0).process(img)
    assert np.array_equal(out, whole)


def test_tiles_of_an_image_that_is_no_multiple_of_the_strides(weights: str) -> None:
    """Unpadded nets (any size >= 16): tiles keep the stride phase, the last one ends at the edge."""
    img = scene(203, 299)
    whole = Stylize(weights=weights, threads=1, tile=0).process(img).astype(np.float32)
    tiled = Stylize(weights=weights, threads=1, tile=64).process(img).astype(np.float32)
    assert tiled.shape == whole.shape == img.shape
    assert np.abs(tiled - whole).mean() < 0.5
