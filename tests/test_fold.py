"""Deriving a lower-scale upscaler from a trained one (``gantools.train.fold``): the derived
network must equal the source's output area-downscaled by OpenCV (the independent reference)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from gantools.nn import create_arch
from gantools.nn.srvgg import fold_area_downscale
from gantools.registry import load
from gantools.train.export import export_generator, read_export
from gantools.train.fold import main


def _srvgg(scale: int, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_arch("srvgg", num_feat=8, num_conv=2, upscale=scale, act_type="prelu").eval()
    for p in model.parameters():  # far from identity, so that a wrong channel order shows
        p.data.normal_(0, std)
    return model


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).contiguous().detach().numpy()


@pytest.mark.parametrize("scale, factor", [(4, 2), (4, 4), (3, 3), (2, 2), (4, 1)])
def test_folded_network_is_the_area_downscaled_output(scale: int, factor: int) -> None:
    big = _srvgg(scale)
    small = create_arch("srvgg", num_feat=8, num_conv=2, upscale=scale // factor, act_type="prelu").eval()
    small.load_state_dict(fold_area_downscale(big.state_dict(), factor))
    x = torch.rand(1, 3, 13, 18)
    h, w = 13 * scale // factor, 18 * scale // factor
    expected = cv2.resize(_hwc(big(x)), (w, h), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(_hwc(small(x)), expected, atol=1e-5)


def test_fold_refuses_a_factor_that_does_not_divide_the_scale() -> None:
    with pytest.raises(ValueError, match="cannot fold a 3x area downscale into an x4 network"):
        fold_area_downscale(_srvgg(4).state_dict(), 3)


def test_fold_command_writes_a_shippable_x2_export(tmp_path, capsys) -> None:
    source = tmp_path / "x4.safetensors"
    cfg = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu")
    export_generator(source, _srvgg(4, seed=1, std=0.03), "srvgg", cfg,
                     {"task": "upscale", "scale": "4", "mode": "photo", "command": "gantools train upscale", "steps": "9"})
    out = tmp_path / "x2" / "export.safetensors"
    assert main([str(source), "--scale", "2", "-o", str(out)]) == 0
    _, meta = read_export(out)
    assert meta["scale"] == "2" and json.loads(meta["arch_config"])["upscale"] == 2
    assert (meta["mode"], meta["steps"]) == ("photo", "9")
    assert meta["command"].startswith("gantools train upscale && python -m gantools.train.fold ")
    assert meta["derived_from"].startswith("x4.safetensors sha256:")

    # through the plugin, as users run it: uint8 in, uint8 out, within one level of the x4
    # output area-downscaled (the two round at different points; mid-grey input keeps the
    # outputs inside [0, 255], where clamping before or after the downscale would differ)
    img = (np.random.default_rng(3).random((20, 24, 3)) * 64 + 96).astype(np.uint8)
    x4 = load("upscale", weights=str(source), precision="fp32").process(img)
    x2 = load("upscale", weights=str(out), precision="fp32", scale=2).process(img)
    ref = cv2.resize(x4.astype(np.float32), (48, 40), interpolation=cv2.INTER_AREA)
    assert x2.shape == (40, 48, 3) and x2.dtype == np.uint8 and 0 < x4.min() and x4.max() < 255
    assert np.abs(x2.astype(np.float32) - ref).max() <= 1.0


@pytest.mark.parametrize("scale, message", [("3", "x3 is not a whole fraction of its x4"), ("2", "not an SRVGG")])
def test_fold_command_bad_input_is_one_line(tmp_path, capsys, scale: str, message: str) -> None:
    source = tmp_path / "m.safetensors"
    if message == "not an SRVGG":
        export_generator(source, torch.nn.Linear(2, 2), "toy", {"w": 2}, {"task": "upscale", "scale": "4"})
    else:
        cfg = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu")
        export_generator(source, _srvgg(4), "srvgg", cfg, {"task": "upscale", "scale": "4"})
    assert main([str(source), "--scale", scale, "-o", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "o.safetensors").exists()
