"""``stylize`` training task: both modes train through the engine and export what the plugin runs.

Synthetic images only (written to ``tmp_path``); tiny networks and crops, 3 steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gantools_stylize import Stylize
from gantools_stylize.data import StyleImages
from gantools.nn.pair import PAIR_ARCH
from gantools_stylize.pair import slim_export
from gantools.train.api import make_config, run_training
from gantools.train.data import DataError
from gantools.train.export import read_export

torch.set_num_threads(1)
TINY = {"crop": 32, "channels": 8, "blocks": 1, "d_channels": 8, "d_layers": 2, "sample_size": 32}


def _photos(folder: Path, n: int = 5, seed: int = 0) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((56, 72, 3)) * 255).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(str(folder / f"photo{i}.png"), img)
    return str(folder)


def _painting(path: Path, size: tuple[int, int] = (90, 120), gray: bool = False) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(x / 3.0), 128 + 100 * np.cos(y / 4.0), 60 + 0 * x], -1).astype(np.uint8)
    if gray:
        img = np.repeat(img[..., :1], 3, axis=2)
    cv2.imwrite(str(path), img)
    return str(path)


def _config(out: Path, style: list[str], content: list[str], **opts):
    return make_config("stylize", out=str(out), steps=3, threads=1, workers=1, batch_size=2, sample_every=3,
                       seed=1, task_options={"style_images": style, "content": content, **TINY, **opts})


def _run_and_load(cfg, image: np.ndarray) -> tuple[dict, np.ndarray]:
    result = run_training(cfg, log=lambda m: None)
    assert result.step == 3
    _, meta = read_export(result.export_path)
    out = Stylize(weights=result.export_path, threads=1).process(image)
    return meta, out


def test_patch_swd_loss_is_the_sliced_wasserstein_distance_of_the_patches() -> None:
    """Against a reference written here: 8x8 patches at every 4th position cut out by hand, projected
    on the same unit directions, 1-D Wasserstein-1 of equal-size samples = mean |sorted - sorted|;
    RGB and band-pass, full and half size, averaged."""
    from gantools_stylize.losses import patch_swd_loss
    from gantools_stylize.metrics import band_pass

    fake, style = torch.rand(2, 3, 24, 32), torch.rand(2, 3, 32, 24) * 0.5  # same patch counts
    got = patch_swd_loss(fake, style, projections=4, generator=torch.Generator().manual_seed(5))
    g, total = torch.Generator().manual_seed(5), 0.0
    for level in range(2):
        f, s = (fake, style) if not level else (F.avg_pool2d(fake, 2), F.avg_pool2d(style, 2))
        for a, b in ((f, s), (band_pass(f), band_pass(s))):
            rows = [np.array([img[:, y:y + 8, x:x + 8].reshape(-1).numpy() for img in batch
                              for y in range(0, batch.shape[2] - 7, 4) for x in range(0, batch.shape[3] - 7, 4)])
                    for batch in (a, b)]
            proj = torch.randn(rows[0].shape[1], 4, generator=g)
            proj = (proj / proj.norm(dim=0, keepdim=True)).numpy()
            total += np.mean([np.abs(np.sort(rows[0] @ p) - np.sort(rows[1] @ p)).mean() for p in proj.T])
    assert float(got) == pytest.approx(total / 4, rel=1e-4)

    assert patch_swd_loss(style, style).item() == 0.0
    x = fake.clone().requires_grad_(True)  # gradient descent on it moves the patches towards the style's
    opt = torch.optim.Adam([x], lr=0.02)
    first = None
    for _ in range(30):
        loss = patch_swd_loss(x, style, generator=torch.Generator().manual_seed(1))
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_painting_mode_trains_and_exports(tmp_path) -> None:
    style = _painting(tmp_path / "art" / "swirls.png")
    cfg = _config(tmp_path / "run", [style], [_photos(tmp_path / "photos")])
    img = np.full((40, 44, 4), 120, np.uint8)
    meta, out = _run_and_load(cfg, img)
    assert (meta["task"], meta["arch"], meta["mode"]) == ("stylize", "stylenet", "painting")
    assert meta["style"] == "swirls" and meta["source"] == "swirls.png"
    assert out.shape == img.shape and np.array_equal(out[..., 3], img[..., 3])
    samples = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert samples and cv2.imread(str(samples[-1])) is not None


def _last_metrics(run: Path) -> dict:
    """The last row of the run's metrics log (loss terms logged as g_NAME / d_NAME)."""
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def test_painting_mode_with_cycle_generator(tmp_path) -> None:
    """--cycle: a generator pair (photo -> painting used by the plugin) with a cycle loss on top of painting losses."""
    style = _painting(tmp_path / "art" / "swirls.png")
    cfg = _config(tmp_path / "run", [style], [_photos(tmp_path / "photos")], cycle=True, style_name="mine")
    img = cv2.imread(_painting(tmp_path / "in.png", (24, 28)))  # a coloured, non-square input
    meta, out = _run_and_load(cfg, img)
    assert (meta["arch"], meta["mode"], meta["style"]) == (PAIR_ARCH, "painting", "mine")
    logged = _last_metrics(tmp_path / "run")
    assert {"g_cycle", "g_content", "g_edge", "g_adv"} <= set(logged) and "g_adv_photo" not in logged
    state, _ = read_export(tmp_path / "run" / "export.safetensors")
    assert any(k.startswith("ab.") for k in state) and any(k.startswith("ba.") for k in state)
    # the plugin runs the photo -> painting half: the same output as the slim (ab-only) export
    slim = slim_export(str(tmp_path / "run" / "export.safetensors"), str(tmp_path / "slim.safetensors"))
    assert out.shape == img.shape and np.array_equal(Stylize(weights=slim, threads=1).process(img), out)


def test_domain_mode_trains_and_exports_photo_to_painting(tmp_path) -> None:
    folder = tmp_path / "paintings"
    for i in range(6):  # 6 > 5 images: domain mode by default
        _painting(folder / f"p{i}.png", (64 + 4 * i, 80))
    cfg = _config(tmp_path / "run", [str(folder)], [_photos(tmp_path / "photos")])
    img = np.full((36, 40, 3), 200, np.uint8)
    meta, out = _run_and_load(cfg, img)
    assert meta["mode"] == "domain" and meta["arch"] == PAIR_ARCH and meta["source"] == "paintings"
    state, _ = read_export(tmp_path / "run" / "export.safetensors")
    assert any(k.startswith("ba.") for k in state)  # both generators kept (resume, --init)
    slim = slim_export(str(tmp_path / "run" / "export.safetensors"), str(tmp_path / "slim.safetensors"))
    slim_state, slim_meta = read_export(slim)
    assert slim_meta["arch"] == "stylenet" and not any(k.startswith(("ab.", "ba.")) for k in slim_state)
    assert np.array_equal(Stylize(weights=slim, threads=1).process(img), out)


def test_mode_can_be_forced(tmp_path) -> None:
    """One style image means painting mode unless --mode domain says otherwise; domain mode then trains both ways."""
    from gantools.train.task import get_task

    style = _painting(tmp_path / "art" / "swirls.png")
    photos = _photos(tmp_path / "photos")
    assert get_task("stylize")(_config(tmp_path / "auto", [style], [photos])).mode == "painting"
    cfg = _config(tmp_path / "run", [style], [photos], mode="domain")
    meta, _ = _run_and_load(cfg, np.full((24, 24, 3), 90, np.uint8))
    assert (meta["mode"], meta["arch"]) == ("domain", PAIR_ARCH)
    logged = _last_metrics(tmp_path / "run")
    assert {"g_adv_photo", "g_identity", "g_cycle", "d_adv_photo"} <= set(logged) and "g_content" not in logged


def test_tiny_style_image_is_a_clear_error(tmp_path) -> None:
    style = _painting(tmp_path / "art" / "stamp.png", (40, 50))
    cfg = _config(tmp_path / "run", [style], [_photos(tmp_path / "photos")])
    with pytest.raises(DataError, match=r"stamp.png is 50x40 px: too small.*at least 64"):
        run_training(cfg, log=lambda m: None)


def test_grayscale_style_image_is_handled(tmp_path) -> None:
    style = _painting(tmp_path / "art" / "sketch.png", gray=True)
    said: list[str] = []
    images = StyleImages([style], crop=32, style_size=512, log=said.append)
    assert images.gray == [True] and any("grayscale" in m for m in said)
    crop = images.crop(np.random.default_rng(0), 32, 2.0)
    assert crop.shape == (32, 32, 3)


def test_missing_data_errors(tmp_path) -> None:
    style = _painting(tmp_path / "art" / "swirls.png")
    with pytest.raises(DataError, match="no content photos"):
        run_training(_config(tmp_path / "a", [style], []), log=lambda m: None)
    with pytest.raises(DataError, match="no style images"):
        run_training(_config(tmp_path / "b", [], [_photos(tmp_path / "photos")]), log=lambda m: None)
    from gantools.plugin import OptionError

    with pytest.raises(OptionError, match="multiple of 16"):
        run_training(_config(tmp_path / "c", [style], [str(tmp_path / "photos")], crop=40), log=lambda m: None)


def test_content_losses_prefer_structure() -> None:
    from gantools_stylize.losses import content_loss, edge_loss, feature_stats_loss

    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    photo = torch.stack([(torch.sin(xx / 4) + 1) / 2, (torch.cos(yy / 5) + 1) / 2, (xx > 16).float()])[None].repeat(2, 1, 1, 1)
    brighter = photo * 0.6 + 0.3  # same structure, other tone and contrast: normalised loss small
    other = photo.flip(-1).transpose(-1, -2)
    assert content_loss(brighter, photo) < 0.2 * content_loss(other, photo)
    assert edge_loss(brighter, photo) < 0.2 * edge_loss(other, photo)
    feats = [torch.randn(4, 8, 5, 5)]
    assert feature_stats_loss(feats, feats).item() == 0.0
    assert feature_stats_loss(feats, [f * 2 + 1 for f in feats]).item() > 0.5


def test_resume_is_bit_exact(tmp_path) -> None:
    """Long style runs are stopped and resumed: 2 steps + resume to 3 equals 3 straight steps."""
    style, photos = _painting(tmp_path / "art" / "swirls.png"), _photos(tmp_path / "photos")
    run_training(_config(tmp_path / "full", [style], [photos]), log=lambda m: None)
    part = _config(tmp_path / "part", [style], [photos])
    part.steps = 2
    run_training(part, log=lambda m: None)
    again = _config(tmp_path / "part", [style], [photos])
    run_training(again, resume=True, log=lambda m: None)
    a, _ = read_export(tmp_path / "full" / "export.safetensors")
    b, _ = read_export(tmp_path / "part" / "export.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
