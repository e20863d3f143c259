"""Architectures: published state-dict layouts, detection, strict loading, checkpoint reading.

Expected layouts are written out here from the published code (Real-ESRGAN srvgg_arch.py,
BasicSR rrdbnet_arch.py, junyanz networks.py, bryandlee/animegan2-pytorch model.py), not
derived from our modules. Full-size models are built on the meta device (shapes only).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn.functional as F

from gantools.checkpoint import read_state_dict, unwrap_state_dict
from gantools.nn import (
    UnknownArchitecture,
    UnsupportedVariant,
    create_arch,
    detect_arch,
    list_archs,
    load_arch,
    register_arch,
)
from gantools.nn.descriptor import Tiling
from gantools.nn.registry import ARCHS, Architecture
from gantools.nn.rrdbnet import PRESETS as RRDB_PRESETS
from gantools.nn.srvgg import PRESETS as SRVGG_PRESETS
from gantools.nn.layers.norm import TileableInstanceNorm, compute_norm_stats, frozen_norm_stats


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def meta_state_dict(name: str, **config) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return create_arch(name, **config).state_dict()


def conv(prefix: str, cout: int, cin: int, k: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    out = {f"{prefix}.weight": (cout, cin, k, k)}
    if bias:
        out[f"{prefix}.bias"] = (cout,)
    return out


# -- published layouts, written out from the original code ----------------------------------
def published_srvgg(in_ch=3, out_ch=3, feat=64, n=32, up=4, prelu=True):
    exp = conv("body.0", feat, in_ch, 3)
    if prelu:
        exp["body.1.weight"] = (feat,)
    for i in range(1, n + 1):
        exp |= conv(f"body.{2 * i}", feat, feat, 3)
        if prelu:
            exp[f"body.{2 * i + 1}.weight"] = (feat,)
    return exp | conv(f"body.{2 * n + 2}", out_ch * up * up, feat, 3)


def published_rrdb(in_ch=3, out_ch=3, feat=64, blocks=23, grow=32):
    exp = conv("conv_first", feat, in_ch, 3)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                exp |= conv(f"body.{b}.rdb{r}.conv{c}", feat if c == 5 else grow, feat + (c - 1) * grow, 3)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        exp |= conv(name, feat, feat, 3)
    return exp | conv("conv_last", out_ch, feat, 3)


def published_cyclegan(in_nc=3, out_nc=3, ngf=64, n=9, dropout=False):
    # model: 0 pad, 1 conv, 2 norm, 3 relu, 4 conv, 5 norm, 6 relu, 7 conv, 8 norm, 9 relu,
    # 10..10+n-1 ResnetBlocks, then (ConvT, norm, relu) x2, pad, conv, tanh
    exp = conv("model.1", ngf, in_nc, 7) | conv("model.4", 2 * ngf, ngf, 3) | conv("model.7", 4 * ngf, 2 * ngf, 3)
    second = 6 if dropout else 5
    for i in range(10, 10 + n):
        exp |= conv(f"model.{i}.conv_block.1", 4 * ngf, 4 * ngf, 3)
        exp |= conv(f"model.{i}.conv_block.{second}", 4 * ngf, 4 * ngf, 3)
    # ConvTranspose2d weights are [in, out, k, k]
    exp |= {f"model.{10 + n}.weight": (4 * ngf, 2 * ngf, 3, 3), f"model.{10 + n}.bias": (2 * ngf,)}
    exp |= {f"model.{13 + n}.weight": (2 * ngf, ngf, 3, 3), f"model.{13 + n}.bias": (ngf,)}
    return exp | conv(f"model.{17 + n}", out_nc, ngf, 7)


def published_animegan2():
    def cnl(prefix, cout, cin, k=3, groups=1, bias=False):
        e = {f"{prefix}.1.weight": (cout, cin // groups, k, k),
             f"{prefix}.2.weight": (cout,), f"{prefix}.2.bias": (cout,)}
        if bias:
            e[f"{prefix}.1.bias"] = (cout,)
        return e

    def irb(prefix, cin, cout):
        hid = 2 * cin
        return (cnl(f"{prefix}.layers.0", hid, cin, 1) | cnl(f"{prefix}.layers.1", hid, hid, 3, groups=hid, bias=True)
                | {f"{prefix}.layers.2.weight": (cout, hid, 1, 1), f"{prefix}.layers.3.weight": (cout,),
                   f"{prefix}.layers.3.bias": (cout,)})

    exp = cnl("block_a.0", 32, 3, 7) | cnl("block_a.1", 64, 32) | cnl("block_a.2", 64, 64)
    exp |= cnl("block_b.0", 128, 64) | cnl("block_b.1", 128, 128)
    exp |= cnl("block_c.0", 128, 128) | irb("block_c.1", 128, 256)
    for i in (2, 3, 4):
        exp |= irb(f"block_c.{i}", 256, 256)
    exp |= cnl("block_c.5", 128, 256)
    exp |= cnl("block_d.0", 128, 128) | cnl("block_d.1", 128, 128)
    exp |= cnl("block_e.0", 64, 128) | cnl("block_e.1", 64, 64) | cnl("block_e.2", 32, 64, 7)
    return exp | {"out_layer.0.weight": (3, 32, 1, 1)}


# -- layouts -------------------------------------------------------------------------------
def test_registry_lists_families():
    assert {"srvgg", "rrdbnet", "cyclegan", "animegan2", "stylenet", "patch_discriminator",
            "unet_discriminator"} <= set(list_archs())
    assert list_archs("*discriminator") == ["face_discriminator", "patch_discriminator", "unet_discriminator"]


def test_registry_does_not_depend_on_plugin_imports():
    """``stylize_pair`` is a family of gantools.nn: detected without importing any plugin."""
    import subprocess
    import sys

    code = ("import sys; from gantools.nn import list_archs; "
            "print(sorted(m for m in sys.modules if m.startswith('gantools_')), 'stylize_pair' in list_archs())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"
    with pytest.raises(KeyError, match="unknown architecture 'nope'.*srvgg"):
        create_arch("nope")


def test_realesrgan_x4plus_layout():
    sd = meta_state_dict("rrdbnet", **RRDB_PRESETS["RealESRGAN_x4plus"])
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == published_rrdb()
    assert got["conv_first.weight"] == (64, 3, 3, 3)
    assert got["body.0.rdb1.conv1.weight"] == (32, 64, 3, 3)
    assert got["body.22.rdb3.conv5.weight"] == (64, 192, 3, 3)
    assert got["conv_last.weight"] == (3, 64, 3, 3)
    assert len(got) == 702  # 23*3*5 dense convs + 6 others, weight and bias each
    info = detect_arch(sd)
    assert (info.arch, info.scale, info.size.multiple) == ("rrdbnet", 4, 1)
    assert info.config == RRDB_PRESETS["RealESRGAN_x4plus"]


def test_realesrgan_x2plus_layout():
    sd = meta_state_dict("rrdbnet", **RRDB_PRESETS["RealESRGAN_x2plus"])
    assert tuple(sd["conv_first.weight"].shape) == (64, 12, 3, 3)
    info = detect_arch(sd)
    assert (info.scale, info.size.multiple, info.config["num_block"]) == (2, 2, 23)
    assert detect_arch(meta_state_dict("rrdbnet", scale=1, num_block=2)).size.multiple == 4


@pytest.mark.parametrize("preset,last", [("realesr-general-x4v3", 66), ("realesr-animevideov3", 34)])
def test_realesr_compact_layout(preset, last):
    cfg = SRVGG_PRESETS[preset]
    sd = meta_state_dict("srvgg", **cfg)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == published_srvgg(n=cfg["num_conv"])
    assert got["body.0.weight"] == (64, 3, 3, 3) and got["body.1.weight"] == (64,)
    assert got[f"body.{last}.weight"] == (48, 64, 3, 3)  # 3 * 4**2
    info = detect_arch(sd)
    assert info.arch == "srvgg" and info.config == cfg and info.scale == 4 and info.bf16


def test_srvgg_relu_variant_has_no_activation_keys():
    sd = meta_state_dict("srvgg", num_feat=8, num_conv=3, upscale=2, act_type="relu")
    assert {k: tuple(v.shape) for k, v in sd.items()} == published_srvgg(feat=8, n=3, up=2, prelu=False)
    assert detect_arch(sd).config["num_conv"] == 3


@pytest.mark.parametrize("n,last", [(9, 26), (6, 23)])
def test_cyclegan_resnet_layout(n, last):
    sd = meta_state_dict("cyclegan", n_blocks=n)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == published_cyclegan(n=n)
    assert got["model.1.weight"] == (64, 3, 7, 7)
    assert got["model.10.conv_block.1.weight"] == (256, 256, 3, 3)
    assert got["model.10.conv_block.5.weight"] == (256, 256, 3, 3)
    assert got[f"model.{last}.weight"] == (3, 64, 7, 7)
    assert not any("running" in k or k.endswith(".2.weight") for k in got)  # instance norm: no keys
    info = detect_arch(sd)
    assert info.config == dict(input_nc=3, output_nc=3, ngf=64, n_blocks=n, use_dropout=False)
    assert (info.size.multiple, info.bf16) == (4, False)


def test_cyclegan_dropout_layout():
    sd = meta_state_dict("cyclegan", ngf=4, n_blocks=2, use_dropout=True)
    assert {k: tuple(v.shape) for k, v in sd.items()} == published_cyclegan(ngf=4, n=2, dropout=True)
    assert detect_arch(sd).config["use_dropout"] is True


def test_animegan2_layout():
    sd = meta_state_dict("animegan2")
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == published_animegan2()
    assert got["block_c.1.layers.1.1.weight"] == (256, 1, 3, 3)
    assert detect_arch(sd).arch == "animegan2"


# -- detect, load, run on tiny configs -----------------------------------------------------
TINY = [
    ("srvgg", dict(num_feat=8, num_conv=2, upscale=2), 2),
    ("srvgg", dict(num_feat=8, num_conv=1, upscale=4, num_in_ch=1, num_out_ch=1), 4),
    ("rrdbnet", dict(num_feat=8, num_block=2, num_grow_ch=4, scale=4), 4),
    ("rrdbnet", dict(num_feat=8, num_block=1, num_grow_ch=4, scale=2), 2),
    ("rrdbnet", dict(num_feat=8, num_block=1, num_grow_ch=4, scale=1), 1),
    ("cyclegan", dict(ngf=4, n_blocks=2), 1),
    ("stylenet", dict(base_channels=4, n_res=1), 1),
    ("stylenet", dict(base_channels=4, n_res=2, norm="none"), 1),
]


@pytest.mark.parametrize("name,cfg,scale", TINY)
def test_detect_load_and_run(name, cfg, scale):
    torch.manual_seed(0)
    model = create_arch(name, **cfg).eval()
    sd = model.state_dict()
    info = detect_arch(sd)
    assert info.arch == name and info.scale == scale
    assert {k: info.config[k] for k in cfg} == cfg
    info2 = load_arch(sd)
    loaded = info2.model
    assert info.model is None and not loaded.training
    info2.model = None
    assert info2 == info
    c = info.in_channels
    x = torch.rand(1, c, 16, 20)
    with torch.no_grad():
        y, y2 = model(x), loaded(x)
    assert y.shape == (1, info.out_channels, 16 * scale, 20 * scale)
    assert torch.equal(y, y2)


def test_animegan2_runs_and_maps_to_unit_range():
    info = load_arch(create_arch("animegan2").state_dict())
    model = info.model
    with torch.no_grad():
        y = model(torch.rand(1, 3, 16, 20))
    assert y.shape == (1, 3, 16, 20) and 0 <= y.min() and y.max() <= 1
    assert (info.tiling, info.bf16, info.size.minimum) == (Tiling.DISCOURAGED, False, 16)


def test_wrong_block_count_gives_one_line_error():
    sd = create_arch("rrdbnet", num_feat=8, num_block=2, num_grow_ch=4).state_dict()
    with pytest.raises(ValueError) as err:
        load_arch(sd, name="rrdbnet", config=dict(num_feat=8, num_block=3, num_grow_ch=4))
    msg = str(err.value)
    assert "\n" not in msg and "30 missing" in msg and "body.2.rdb1.conv1.weight" in msg
    sd = create_arch("srvgg", num_feat=8, num_conv=4).state_dict()
    with pytest.raises(ValueError, match=r"unexpected \(body\.7\.weight"):
        load_arch(sd, name="srvgg", config=dict(num_feat=8, num_conv=2))
    with pytest.raises(ValueError, match=r"shape mismatch \(body\.0\.weight \[8,3,3,3\] vs model \[16,3,3,3\]"):
        load_arch(sd, name="srvgg", config=dict(num_feat=16, num_conv=4))


def test_load_with_name_checks_family_and_config_overrides():
    sd = create_arch("srvgg", num_feat=8, num_conv=1, act_type="relu").state_dict()
    with pytest.raises(UnknownArchitecture, match="not a 'rrdbnet' checkpoint"):
        load_arch(sd, name="rrdbnet")
    info = load_arch(sd, config={"act_type": "leakyrelu"})
    model = info.model
    assert info.config["act_type"] == "leakyrelu"
    assert isinstance(model.body[1], torch.nn.LeakyReLU)


def test_unknown_architecture_message():
    with pytest.raises(UnknownArchitecture) as err:
        detect_arch({"encoder.weight": torch.zeros(2, 2), "decoder.bias": torch.zeros(2)})
    msg = str(err.value)
    for family in ("srvgg", "rrdbnet", "cyclegan", "animegan2", "stylenet"):
        assert family in msg
    assert "encoder.weight" in msg and isinstance(err.value, ValueError)


def test_cyclegan_batch_norm_is_reported():
    sd = published_cyclegan(ngf=4, n=1)
    sd = {k: torch.zeros(v) for k, v in sd.items() if not k.endswith("bias") or k == "model.18.bias"}
    sd |= {"model.2.weight": torch.ones(4), "model.2.bias": torch.zeros(4),
           "model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4)}
    with pytest.raises(UnsupportedVariant, match="--norm batch"):
        detect_arch(sd)


def test_cyclegan_pre_04_instance_norm_buffers_are_dropped():
    model = create_arch("cyclegan", ngf=4, n_blocks=1)
    sd = dict(model.state_dict())
    sd["model.2.running_mean"] = torch.zeros(4)
    sd["model.2.running_var"] = torch.ones(4)
    sd["model.11.conv_block.2.num_batches_tracked"] = torch.tensor(0)
    info = load_arch(sd)
    loaded = info.model
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_cyclegan_matches_reference_instance_norm():
    torch.manual_seed(0)
    model = create_arch("cyclegan", ngf=4, n_blocks=1).eval()
    ref = copy.deepcopy(model)
    for name, module in list(ref.named_modules()):
        if isinstance(module, TileableInstanceNorm):
            parent, _, attr = name.rpartition(".")
            setattr(ref.get_submodule(parent), attr, torch.nn.InstanceNorm2d(module.num_features))
    assert not any(isinstance(m, TileableInstanceNorm) for m in ref.modules())
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_esrgan_legacy_keys_are_renamed():
    model = create_arch("rrdbnet", num_feat=8, num_block=1, num_grow_ch=4)
    legacy = {}
    for k, v in model.state_dict().items():
        k = k.replace("body.0.rdb", "RRDB_trunk.0.RDB").replace("conv_body", "trunk_conv")
        k = k.replace("conv_up", "upconv").replace("conv_hr", "HRconv")
        legacy[k] = v
    assert "RRDB_trunk.0.RDB2.conv3.weight" in legacy
    info = load_arch(legacy)
    loaded = info.model
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_rrdb_unshuffle_matches_basicsr_order():
    x = torch.rand(1, 3, 8, 12)
    b, c, hh, hw = x.shape
    ref = x.view(b, c, hh // 2, 2, hw // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, hh // 2, hw // 2)
    assert torch.equal(F.pixel_unshuffle(x, 2), ref)


# -- speed-relevant behaviour ----------------------------------------------------------------
def test_srvgg_bf16_channels_last():
    torch.manual_seed(0)
    model = create_arch("srvgg", num_feat=48, num_conv=2, upscale=2).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x.contiguous(memory_format=torch.channels_last))
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    assert (y - ref).abs().max() < 0.05


def test_srvgg_matches_published_forward():
    """Real-ESRGAN: body, pixel shuffle, then += nearest-upsampled input."""
    torch.manual_seed(0)
    model = create_arch("srvgg", num_feat=8, num_conv=2, upscale=4).eval()
    x = torch.rand(2, 3, 9, 7)
    with torch.no_grad():
        out = x
        for layer in model.body:
            out = layer(out)
        ref = F.pixel_shuffle(out, 4) + F.interpolate(x, scale_factor=4, mode="nearest")
        assert torch.allclose(model(x), ref, atol=1e-6)


def test_stylenet_size_and_bf16():
    model = create_arch("stylenet")
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    small = create_arch("stylenet", base_channels=8, n_res=2).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = small(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = small.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert 0 <= ref.min() and ref.max() <= 1
    assert (y.float() - ref).abs().max() < 0.03


# -- instance-norm statistics for tiling ---------------------------------------------------------
def test_tileable_instance_norm_matches_torch():
    torch.manual_seed(0)  # atol 1e-5 is a few float32 eps on outputs of size ~10: keep the inputs fixed
    x = torch.randn(2, 5, 7, 9) * 3 + 1
    norm = TileableInstanceNorm(5, affine=True)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    ref = torch.nn.InstanceNorm2d(5, affine=True)
    ref.load_state_dict(norm.state_dict())
    assert torch.allclose(norm(x), ref(x), atol=1e-5)
    assert TileableInstanceNorm(5, affine=False).state_dict() == {}


def test_frozen_norm_stats():
    torch.manual_seed(0)
    model = create_arch("stylenet", base_channels=4, n_res=1).eval()
    x, other = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) * 0.3 + 0.6
    with torch.no_grad():
        normal_x, normal_other = model(x), model(other)
        with model.frozen_norm_stats(x):
            assert torch.allclose(model(x), normal_x, atol=1e-6)  # its own stats: same result
            frozen_other = model(other)
        assert not torch.allclose(frozen_other, normal_other, atol=1e-4)  # x's stats were used
        assert torch.allclose(model(other), normal_other)  # back to per-input stats
        with pytest.raises(RuntimeError, match="compute_norm_stats"):
            with frozen_norm_stats(model):
                pass
        compute_norm_stats(model, x)
        with frozen_norm_stats(model):
            assert torch.allclose(model(x), normal_x, atol=1e-6)


# -- discriminators ------------------------------------------------------------------------------
def test_patch_discriminator():
    d = create_arch("patch_discriminator", base_channels=4)
    x = torch.rand(2, 3, 64, 64)
    logits = d(x)
    assert logits.shape == (2, 1, 6, 6)
    logits2, feats = d(x, return_features=True)
    assert len(feats) == 4 and feats[0].shape == (2, 4, 32, 32)
    assert any("parametrizations.weight.original" in k for k in d.state_dict())


def test_unet_discriminator_and_legacy_sn_keys():
    d = create_arch("unet_discriminator", num_feat=4).eval()
    x = torch.rand(1, 3, 16, 24)
    logits, feats = d(x, return_features=True)
    assert logits.shape == (1, 1, 16, 24) and len(feats) == 8
    legacy = {k.replace("parametrizations.weight.original", "weight_orig")
              .replace("parametrizations.weight.0._u", "weight_u")
              .replace("parametrizations.weight.0._v", "weight_v"): v for k, v in d.state_dict().items()}
    assert "conv1.weight_orig" in legacy
    info = load_arch(legacy)
    loaded = info.model
    assert info.arch == "unet_discriminator"
    with torch.no_grad():
        assert torch.allclose(loaded(x), d(x))


# -- registry extension ----------------------------------------------------------------------------
def test_register_architecture_with_detect():
    def tiny_factory(channels: int = 2) -> torch.nn.Module:
        return torch.nn.Conv2d(3, channels, 1)

    class TinyArch(Architecture):
        id = "test_tiny"
        module = staticmethod(tiny_factory)

        def detect(self, sd):
            return {"channels": sd["weight"].shape[0]} if set(sd) == {"weight", "bias"} else None

    class OtherTiny(TinyArch):
        pass

    with ARCHS.scoped():
        register_arch(TinyArch)
        info = load_arch(torch.nn.Conv2d(3, 5, 1).state_dict())
        assert info.arch == "test_tiny" and info.config == {"channels": 5}
        assert tuple(info.model(torch.rand(1, 3, 4, 4)).shape) == (1, 5, 4, 4)
        register_arch(TinyArch)  # the same class again (a module imported twice) is fine
        with pytest.raises(ValueError, match="already registered"):
            register_arch(OtherTiny)
    assert "test_tiny" not in ARCHS


# -- checkpoint files ---------------------------------------------------------------------------------
def test_unwrap_state_dict():
    a = {"w": torch.ones(1)}
    b = {"w": torch.zeros(1)}
    assert unwrap_state_dict({"params_ema": a, "params": b})["w"].item() == 1
    assert unwrap_state_dict({"params": b, "iter": 3})["w"].item() == 0
    assert list(unwrap_state_dict({"state_dict": {"module.x.w": torch.ones(1)}})) == ["x.w"]
    assert list(unwrap_state_dict({"model": {"_orig_mod.module.y": torch.ones(1)}, "optimizer": {}})) == ["y"]
    assert list(unwrap_state_dict({"g": b, "g_ema": a, "d": b})) == ["w"]
    assert unwrap_state_dict({"g": b, "g_ema": a, "d": b})["w"].item() == 1
    with pytest.raises(ValueError, match="no tensors"):
        unwrap_state_dict({"epoch": 3})


def test_load_arch_accepts_wrapped_checkpoints():
    sd = create_arch("srvgg", num_feat=4, num_conv=1).state_dict()
    wrapped = {"params": {f"module.{k}": v for k, v in sd.items()}, "iter": 10}
    info = load_arch(wrapped)
    model = info.model
    assert info.arch == "srvgg" and info.config["num_feat"] == 4


def test_read_state_dict_formats(tmp_path):
    from safetensors.torch import save_file

    sd = create_arch("srvgg", num_feat=4, num_conv=1).state_dict()
    torch.save({"params_ema": sd, "params": {}, "iter": 7}, tmp_path / "a.pth")
    got, meta = read_state_dict(tmp_path / "a.pth")
    assert set(got) == set(sd) and meta == {"iter": "7"}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "b.safetensors"), metadata={"arch": "srvgg"})
    got, meta = read_state_dict(str(tmp_path / "b.safetensors"))
    assert torch.equal(got["body.0.weight"], sd["body.0.weight"]) and meta == {"arch": "srvgg"}


@pytest.mark.parametrize("name", ["junk.pth", "junk.safetensors", "junk.ckpt", "junk.weights"])
def test_read_state_dict_rejects_garbage(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(os.urandom(300))
    with pytest.raises(ValueError) as err:
        read_state_dict(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not a readable checkpoint (") and "\n" not in msg


def test_read_state_dict_truncated_and_missing(tmp_path):
    sd = create_arch("srvgg", num_feat=4, num_conv=1).state_dict()
    torch.save(sd, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        read_state_dict(tmp_path / "cut.pth")
    torch.save({"epoch": 1}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no tensors"):
        read_state_dict(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        read_state_dict(tmp_path / "nothere.pth")
