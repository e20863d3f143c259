"""Community ESRGAN checkpoints (old-arch ``model.*`` layout, x1/x2/x4/x8) and SPAN.

The expected layouts and the reference forward below are written out from the published
ESRGAN old-arch layout and the SPAN paper's layout, independently of gantools.nn.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from gantools.nn import UnsupportedVariant, create_arch, detect_arch, load_arch

FEAT, GROW, BLOCKS = 8, 4, 2


def old_arch_indices(scale: int) -> list[int]:
    """Top-level conv indices of the old-arch nn.Sequential: conv, shortcut, (up, conv, act)*n, conv, act, conv."""
    n = scale.bit_length() - 1
    return [0] + [3 * k for k in range(1, n + 1)] + [3 * n + 2, 3 * n + 4]


def random_old_arch(scale: int, blocks: int = BLOCKS, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def conv(cout: int, cin: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(cout, cin, 3, 3, generator=g) * 0.1, torch.randn(cout, generator=g) * 0.01

    sd: dict[str, torch.Tensor] = {}
    tops = old_arch_indices(scale)
    outs = [FEAT] * (len(tops) - 1) + [3]
    ins = [3] + [FEAT] * (len(tops) - 1)
    for i, cout, cin in zip(tops, outs, ins):
        sd[f"model.{i}.weight"], sd[f"model.{i}.bias"] = conv(cout, cin)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                w, bias = conv(FEAT if c == 5 else GROW, FEAT + (c - 1) * GROW)
                sd[f"model.1.sub.{b}.RDB{r}.conv{c}.0.weight"], sd[f"model.1.sub.{b}.RDB{r}.conv{c}.0.bias"] = w, bias
    sd[f"model.1.sub.{blocks}.weight"], sd[f"model.1.sub.{blocks}.bias"] = conv(FEAT, FEAT)
    return sd


def reference_old_arch(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """ESRGAN old-arch forward, straight from the key layout."""
    def conv(prefix: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], padding=1)

    def rdb(prefix: str, t: torch.Tensor) -> torch.Tensor:
        feats = [t]
        for c in range(1, 5):
            feats.append(F.leaky_relu(conv(f"{prefix}.conv{c}.0", torch.cat(feats, 1)), 0.2))
        return t + 0.2 * conv(f"{prefix}.conv5.0", torch.cat(feats, 1))

    blocks = sum(1 for k in sd if re.fullmatch(r"model\.1\.sub\.\d+\.RDB1\.conv1\.0\.weight", k))
    fea = conv("model.0", x)
    t = fea
    for b in range(blocks):
        t = t + 0.2 * rdb(f"model.1.sub.{b}.RDB3", rdb(f"model.1.sub.{b}.RDB2", rdb(f"model.1.sub.{b}.RDB1", t)))
    t = fea + conv(f"model.1.sub.{blocks}", t)
    tops = old_arch_indices(scale)
    for i in tops[1:-2]:
        t = F.leaky_relu(conv(f"model.{i}", F.interpolate(t, scale_factor=2, mode="nearest")), 0.2)
    return conv(f"model.{tops[-1]}", F.leaky_relu(conv(f"model.{tops[-2]}", t), 0.2))


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_old_arch_loads_and_matches_reference(scale):
    sd = random_old_arch(scale)
    info = load_arch(sd)
    assert (info.arch, info.scale, info.size.multiple) == ("rrdbnet", scale, 1)
    assert info.config["num_block"] == BLOCKS and info.config["num_feat"] == FEAT
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        got, ref = info.model(x), reference_old_arch(sd, x, scale)
    assert got.shape == (1, 3, 6 * scale, 5 * scale)
    assert torch.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_old_arch_equals_new_arch_keys(scale):
    """The same weights under the old-arch names and under the BasicSR names give the same network."""
    old = random_old_arch(scale)
    new = load_arch(old).model.state_dict()
    assert ("conv_up3.weight" in new) == (scale == 8) and ("conv_up1.weight" in new) == (scale > 1)
    assert torch.equal(new["body.1.rdb3.conv5.weight"], old["model.1.sub.1.RDB3.conv5.0.weight"])
    assert torch.equal(new["conv_body.weight"], old[f"model.1.sub.{BLOCKS}.weight"])
    assert torch.equal(new["conv_last.weight"], old[f"model.{old_arch_indices(scale)[-1]}.weight"])
    again = load_arch(new)
    assert again.config == load_arch(old).config
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        assert torch.equal(again.model(x), load_arch(old).model(x))


def test_x8_new_layout_is_supported_and_realesrgan_x2_unchanged():
    sd = create_arch("rrdbnet", scale=8, num_feat=FEAT, num_block=1, num_grow_ch=GROW).state_dict()
    assert "conv_up3.weight" in sd and tuple(sd["conv_first.weight"].shape) == (FEAT, 3, 3, 3)
    info = detect_arch(sd)
    assert (info.scale, info.size.multiple) == (8, 1)
    x2 = detect_arch(create_arch("rrdbnet", scale=2, num_feat=FEAT, num_block=1, num_grow_ch=GROW).state_dict())
    assert (x2.scale, x2.size.multiple, x2.config["pixel_unshuffle"]) == (2, 2, True)


def test_old_arch_unknown_block_count_or_scale_is_one_line():
    sd = random_old_arch(4)
    sd = {k.replace("model.1.sub.2.", "model.1.sub.3."): v for k, v in sd.items()}  # trunk conv off by one
    with pytest.raises(UnsupportedVariant, match="unknown block layout") as exc:
        detect_arch(sd)
    assert "\n" not in str(exc.value)
    sd = random_old_arch(4)
    sd["model.13.weight"], sd["model.13.bias"] = sd.pop("model.10.weight"), sd.pop("model.10.bias")
    with pytest.raises(UnsupportedVariant, match="unknown scale") as exc:
        load_arch(sd)
    assert "\n" not in str(exc.value)


# -- SPAN ------------------------------------------------------------------------------------
def published_span(feat: int = 48, blocks: int = 6, scale: int = 4, in_ch: int = 3) -> dict[str, tuple]:
    def conv3xc(p: str, cin: int, cout: int) -> dict[str, tuple]:
        return {f"{p}.sk.weight": (cout, cin, 1, 1), f"{p}.sk.bias": (cout,),
                f"{p}.conv.0.weight": (2 * cin, cin, 1, 1), f"{p}.conv.0.bias": (2 * cin,),
                f"{p}.conv.1.weight": (2 * cout, 2 * cin, 3, 3), f"{p}.conv.1.bias": (2 * cout,),
                f"{p}.conv.2.weight": (cout, 2 * cout, 1, 1), f"{p}.conv.2.bias": (cout,),
                f"{p}.eval_conv.weight": (cout, cin, 3, 3), f"{p}.eval_conv.bias": (cout,)}

    exp = conv3xc("conv_1", in_ch, feat)
    for i in range(1, blocks + 1):
        for c in ("c1_r", "c2_r", "c3_r"):
            exp |= conv3xc(f"block_{i}.{c}", feat, feat)
    exp |= {"conv_cat.weight": (feat, 4 * feat, 1, 1), "conv_cat.bias": (feat,)} | conv3xc("conv_2", feat, feat)
    return exp | {"upsampler.0.weight": (in_ch * scale * scale, feat, 3, 3), "upsampler.0.bias": (in_ch * scale * scale,)}


def random_span(feat: int = 8, blocks: int = 2, scale: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.2 for k, s in published_span(feat, blocks, scale).items()}


def reference_span(sd: dict[str, torch.Tensor], x: torch.Tensor, blocks: int, scale: int, norm: bool) -> torch.Tensor:
    """SPAN inference from the layout: each Conv3XC is its trained branch, summed on the padded input."""
    def c3xc(p: str, t: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(t, (1, 1, 1, 1)), sd[f"{p}.conv.0.weight"], sd[f"{p}.conv.0.bias"])
        y = F.conv2d(F.conv2d(y, sd[f"{p}.conv.1.weight"], sd[f"{p}.conv.1.bias"]),
                     sd[f"{p}.conv.2.weight"], sd[f"{p}.conv.2.bias"])
        return y + F.conv2d(t, sd[f"{p}.sk.weight"], sd[f"{p}.sk.bias"])

    if norm:
        x = (x - torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)) * 255
    first = out = out_b1 = mid = c3xc("conv_1", x)
    for i in range(1, blocks + 1):
        mid = c3xc(f"block_{i}.c1_r", out)
        c3 = c3xc(f"block_{i}.c3_r", F.silu(c3xc(f"block_{i}.c2_r", F.silu(mid))))
        out = (c3 + out) * (torch.sigmoid(c3) - 0.5)
        if i == 1:
            out_b1 = out
    cat = torch.cat([first, c3xc("conv_2", out), out_b1, mid], 1)
    out = F.conv2d(cat, sd["conv_cat.weight"], sd["conv_cat.bias"])
    return F.pixel_shuffle(F.conv2d(out, sd["upsampler.0.weight"], sd["upsampler.0.bias"], padding=1), scale)


def test_span_published_layout_is_detected():
    got = {k: tuple(v.shape) for k, v in create_arch("span", feature_channels=48, num_blocks=6).state_dict().items()}
    assert got == published_span()
    with torch.device("meta"):
        sd = {k: torch.empty(s) for k, s in published_span(feat=52, blocks=6, scale=2).items()}
    info = detect_arch(sd | {"no_norm": torch.empty(1)})
    assert (info.arch, info.scale, info.config["feature_channels"], info.config["num_blocks"]) == ("span", 2, 52, 6)
    assert info.config["norm"] is False and detect_arch(sd).config["norm"] is True


@pytest.mark.parametrize("norm", [True, False])
def test_span_matches_reference(norm):
    sd = random_span()
    if not norm:
        sd["no_norm"] = torch.zeros(1)
    sd["conv_1.eval_conv.weight"] = torch.full_like(sd["conv_1.eval_conv.weight"], 7.0)  # stale: refolded
    info = load_arch(sd)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        got, ref = info.model(x), reference_span(sd, x, blocks=2, scale=2, norm=norm)
    assert got.shape == (1, 3, 48, 48)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_span_unknown_blocks_or_scale_is_one_line():
    sd = random_span()
    bad = {k.replace("block_2.", "block_3."): v for k, v in sd.items()}
    with pytest.raises(UnsupportedVariant, match="SPAN: unknown block layout"):
        detect_arch(bad)
    sd["upsampler.0.weight"] = sd["upsampler.0.weight"][:5]
    with pytest.raises(UnsupportedVariant, match="SPAN: unknown scale") as exc:
        detect_arch(sd)
    assert "\n" not in str(exc.value)
