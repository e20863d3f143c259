"""`gantools train upscale --mode distill` and `--block ecb`: the teacher cache, its targets
against a teacher forward pass written here, the collapsed ECB network against the branch sum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from imagegen import training_images
from safetensors.torch import save_file

from gantools.plugin import OptionError
from gantools.train.api import make_config, run_training
from gantools.train.export import read_export

TINY = {"num_feat": 8, "num_conv": 1, "patch": 8}


def _images(folder: Path, n: int = 3, size: int = 264) -> Path:
    return training_images(folder, n, size)


def _teacher_weights(path: Path, upscale: int = 4) -> dict[str, torch.Tensor]:
    """A random SRVGG-compact state dict (the published ``body.N`` layout: conv, PReLU, conv, PReLU, conv)."""
    g = torch.Generator().manual_seed(3)
    sd = {"body.0.weight": torch.randn(8, 3, 3, 3, generator=g) * 0.2, "body.0.bias": torch.zeros(8),
          "body.1.weight": torch.full((8,), 0.2), "body.2.weight": torch.randn(8, 8, 3, 3, generator=g) * 0.1,
          "body.2.bias": torch.zeros(8), "body.3.weight": torch.full((8,), 0.2),
          "body.4.weight": torch.randn(3 * upscale**2, 8, 3, 3, generator=g) * 0.05, "body.4.bias": torch.zeros(3 * upscale**2)}
    save_file(sd, str(path))
    return sd


def _reference_srvgg(sd: dict[str, torch.Tensor], rgb: np.ndarray, upscale: int) -> np.ndarray:
    """Forward pass of the published SRVGG-compact layout, written out: RGB uint8 -> RGB uint8."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255
    y = F.prelu(F.conv2d(x, sd["body.0.weight"].double(), sd["body.0.bias"].double(), padding=1), sd["body.1.weight"].double())
    y = F.prelu(F.conv2d(y, sd["body.2.weight"].double(), sd["body.2.bias"].double(), padding=1), sd["body.3.weight"].double())
    y = F.pixel_shuffle(F.conv2d(y, sd["body.4.weight"].double(), sd["body.4.bias"].double(), padding=1), upscale)
    y = y + F.interpolate(x, scale_factor=upscale, mode="nearest")
    return (y.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()


def _distill(tmp: Path, teacher: Path, **opts) -> Path:
    run = tmp / "run"
    options = {**TINY, "mode": "distill", "teacher": str(teacher), "teacher_patches": 4, **opts}
    run_training(make_config("upscale", task_options=options, out=str(run), data=[str(_images(tmp / "data"))],
                             steps=2, batch_size=2, threads=1, workers=1), log=lambda m: None)
    return run


def test_cache_targets_are_the_teachers_outputs(tmp_path: Path) -> None:
    sd = _teacher_weights(tmp_path / "teacher.safetensors")
    run = _distill(tmp_path, tmp_path / "teacher.safetensors")
    files = sorted((run / "teacher-cache").glob("*.npz"))
    assert len(files) == 4
    for f in files:
        with np.load(f) as z:
            lr, target, hr = z["lr"], z["target"], z["hr"]
        assert lr.shape == (64, 64, 3) and hr.shape == target.shape == (256, 256, 3)
        diff = np.abs(target.astype(int) - _reference_srvgg(sd, lr, 4).astype(int))
        assert diff.max() <= 1
    settings = json.loads((run / "teacher-cache" / "cache.json").read_text())
    assert settings["teacher_sha256"] and settings["scale"] == 4
    _, meta = read_export(run / "export.safetensors")
    assert meta["mode"] == "distill" and meta["teacher"].endswith("teacher.safetensors")


def test_x2_student_gets_the_x4_teacher_reduced_by_area(tmp_path: Path) -> None:
    sd = _teacher_weights(tmp_path / "teacher.safetensors")
    run = _distill(tmp_path, tmp_path / "teacher.safetensors", scale=2)
    with np.load(sorted((run / "teacher-cache").glob("*.npz"))[0]) as z:
        lr, target = z["lr"], z["target"]
    assert target.shape == (128, 128, 3)
    ref = cv2.resize(_reference_srvgg(sd, lr, 4), (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(target.astype(int) - ref.astype(int)).max() <= 1


def test_cache_is_reused_and_refused_when_made_otherwise(tmp_path: Path) -> None:
    _teacher_weights(tmp_path / "teacher.safetensors")
    run = _distill(tmp_path, tmp_path / "teacher.safetensors")
    first = {f.name: f.stat().st_mtime_ns for f in (run / "teacher-cache").glob("*.npz")}
    logs: list[str] = []
    options = {**TINY, "mode": "distill", "teacher": str(tmp_path / "teacher.safetensors"), "teacher_patches": 4}
    options["teacher_cache"] = str(run / "teacher-cache")
    run_training(make_config("upscale", task_options=options, out=str(tmp_path / "run2"), data=[str(tmp_path / "data")],
                             steps=1, batch_size=2, threads=1, workers=1), log=logs.append)
    assert not any("computing" in m for m in logs)
    assert {f.name: f.stat().st_mtime_ns for f in (run / "teacher-cache").glob("*.npz")} == first
    other = tmp_path / "other.safetensors"
    save_file({k: v * 1.01 for k, v in _teacher_weights(other).items()}, str(other))
    options["teacher"] = str(other)
    with pytest.raises(OptionError, match="teacher cache built with other settings \\(teacher, teacher_sha256\\)"):
        run_training(make_config("upscale", task_options=options, out=str(tmp_path / "run3"),
                                 data=[str(tmp_path / "data")], steps=1, batch_size=2, threads=1, workers=1), log=logs.append)


def test_bad_teachers_are_one_line_errors(tmp_path: Path) -> None:
    data = _images(tmp_path / "data")

    def train(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "gantools", "train", "upscale", "--data", str(data), "--out", str(tmp_path / "r"),
               "--mode", "distill", "--num-feat", "8", "--num-conv", "1", "--patch", "8", "--batch-size", "2",
               "--steps", "1", "--threads", "1", "--workers", "1", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    def error(res: subprocess.CompletedProcess) -> str:  # progress lines may precede it
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and [ln for ln in lines if "error" in ln.lower()] == lines[-1:], res.stderr
        return lines[-1]

    assert error(train()) == "error: --mode distill needs --teacher NAME|FILE (the upscaler to match)"
    msg = error(train("--teacher", str(tmp_path / "missing.safetensors")))
    assert "--teacher" in msg and "missing.safetensors" in msg
    one_x = tmp_path / "one_x.safetensors"
    _teacher_weights(one_x, upscale=1)
    assert "scale > 1" in error(train("--teacher", str(one_x)))


def test_ecb_collapses_to_one_convolution_exactly() -> None:
    from gantools_upscale.reparam import ECB, ECBSRNet

    torch.manual_seed(0)
    for cin, cout in ((3, 8), (8, 8), (8, 48)):
        block = ECB(cin, cout)
        for p in block.parameters():
            p.data.normal_(0, 0.3)
        x = torch.randn(2, cin, 7, 10, dtype=torch.float64)
        w, b = block.double().fused()
        assert torch.allclose(block(x), F.conv2d(x, w, b, padding=1), atol=1e-10)
    net = ECBSRNet(num_feat=8, num_conv=2, upscale=4).double()
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    x = torch.rand(1, 3, 9, 13, dtype=torch.float64)
    assert torch.allclose(net(x), net.to_srvgg().double()(x), atol=1e-4)  # collapsed into float32 weights


def test_ecb_run_exports_the_collapsed_srvgg(tmp_path: Path) -> None:
    import gantools
    from gantools_upscale.reparam import ECBSRNet

    run = tmp_path / "run"
    run_training(make_config("upscale", task_options={**TINY, "block": "ecb"}, out=str(run),
                             data=[str(_images(tmp_path / "data", size=48))], steps=3, batch_size=2, threads=1, workers=1),
                 log=lambda m: None)
    state, meta = read_export(run / "export.safetensors")
    assert meta["arch"] == "srvgg" and "body.2.weight" in state
    assert json.loads(meta["options"])["block"] == "conv"  # --init FILE fine-tunes the collapsed form
    ckpt = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], map_location="cpu", weights_only=True)
    ecb = ECBSRNet(num_feat=8, num_conv=1, upscale=4)
    ecb.load_state_dict(ckpt["G_ema"])
    rgb = np.random.default_rng(1).integers(0, 256, (11, 14, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = ecb(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)
    ref = (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
    out = gantools.load("upscale", weights=str(run / "export.safetensors"), precision="fp32").process(rgb[:, :, ::-1].copy())
    assert np.abs(out[:, :, ::-1].astype(int) - ref).max() <= 1


def test_ship_records_the_teacher_and_its_licence(tmp_path: Path) -> None:
    import tomllib

    from gantools.train.ship import ship

    _teacher_weights(tmp_path / "teacher.safetensors")
    run = _distill(tmp_path, tmp_path / "teacher.safetensors")
    wdir = tmp_path / "weights"
    wdir.mkdir()
    with pytest.raises(ValueError, match="teacher's licence"):
        ship(run / "export.safetensors", name="d", file="d.safetensors", terms="research", weights_dir=wdir)
    ship(run / "export.safetensors", name="d", file="d.safetensors", terms="research", weights_dir=wdir,
         teacher_terms="BSD-3-Clause")
    (entry,) = tomllib.loads((wdir / "manifest.toml").read_text())["model"]
    assert entry["teacher"].endswith("teacher.safetensors") and entry["teacher_terms"] == "BSD-3-Clause"
    assert entry["mode"] == "distill" and entry["scale"] == 4
