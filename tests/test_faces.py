"""faces pipeline, part 1: labels, FaceGAN networks, registry hooks, generation, writers.

Everything runs on tiny random networks (32 px, a few channels) and synthetic arrays: no
training data and no shipped weights are needed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gantools_faces import labels as L
from gantools.image import media
from gantools_faces.generate import FaceModel, slerp
from gantools.nn.facegan import FaceDiscriminator, FaceGenerator, ModulatedConv, minibatch_stddev

TINY = dict(resolution=32, z_dim=16, w_dim=32, channel_base=256, channel_max=32, embed_dim=16, mapping_layers=2)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_g() -> FaceGenerator:
    torch.manual_seed(0)
    return FaceGenerator(**TINY).eval()


# -- labels ----------------------------------------------------------------------------------
def test_parse_utkface_names() -> None:
    assert L.parse_name("utkface-128/61_1_0_20170109142408075.jpg") == (7, 1)
    assert L.parse_name("25_0_3_20170119.jpg") == (3, 0)
    assert L.parse_name("61_1_20170109142408075.jpg") == (7, 1)  # race missing: gender still read
    assert L.parse_name("1_20170109.jpg") == (0, None)  # gender missing
    assert L.parse_name("x_1_2_3.jpg") == (None, 1)  # age unreadable
    assert L.parse_name("45_7_0_2017.jpg") == (5, None)  # gender not 0/1
    assert L.parse_name("holiday.png") == (None, None)
    assert L.parse_name("") == (None, None)
    ages, genders = L.label_arrays(["3_0_1_x.jpg", "61_1_x.jpg", "nope.jpg"])
    assert ages.tolist() == [1, 7, L.UNKNOWN] and genders.tolist() == [0, 1, L.UNKNOWN]


@pytest.mark.parametrize("years,group", [(0, 0), (2, 0), (3, 1), (9, 1), (10, 2), (29, 3), (60, 7), (69, 7), (70, 8), (116, 8)])
def test_age_groups(years: int, group: int) -> None:
    assert L.age_to_group(years) == group
    assert L.parse_age(str(years)) == group


def test_cli_label_values() -> None:
    assert L.parse_age("70+") == 8 and L.parse_age(" 60-69 ") == 7
    assert L.parse_gender("female") == 1 and L.parse_gender("M") == 0
    for bad in ("old", "-3", "200", "6O", ""):
        with pytest.raises(L.LabelError, match="unknown age|whole number"):
            L.parse_age(bad)
    with pytest.raises(L.LabelError, match="unknown gender"):
        L.parse_gender("other")
    assert len(L.AGE_GROUPS) == 9 and L.describe_label(7, 1) == "female 60-69"


def test_label_distribution_sampling() -> None:
    counts = np.zeros((9, 2))
    counts[3, 0], counts[7, 1] = 10, 30
    dist = L.LabelDistribution(counts)
    draws = [dist.sample(np.random.default_rng(s)) for s in range(400)]
    assert set(draws) == {(3, 0), (7, 1)}
    assert 0.6 < sum(d == (7, 1) for d in draws) / 400 < 0.9
    assert all(dist.sample(np.random.default_rng(s), age=3) == (3, 0) for s in range(20))
    assert dist.sample(np.random.default_rng(0), age=0)[0] == 0  # never seen: rest drawn uniformly
    # exactly one draw is consumed, whatever is given
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    dist.sample(a)
    dist.sample(b, age=1, gender=0)
    assert a.random() == b.random()
    again = L.LabelDistribution.from_json(dist.to_json())
    assert np.array_equal(again.counts, dist.counts)
    ages = np.array([3, 3, -1, 7])
    genders = np.array([0, -1, 1, 1])
    assert L.LabelDistribution.from_labels(ages, genders).counts.sum() == 2


# -- networks ----------------------------------------------------------------------------------
def test_modulated_conv_equals_stylegan2_weight_demodulation() -> None:
    """The folded demodulation (scale inputs, shared conv, scale outputs) equals grouped-conv demod."""
    torch.manual_seed(1)
    layer = ModulatedConv(6, 5, 8)
    with torch.no_grad():
        layer.bias.zero_()
    x, w = torch.randn(3, 6, 7, 7), torch.randn(3, 8)
    d_in = torch.rand(3, 6) + 0.5
    y, d = layer(x, d_in, w, "none")
    ours = y * d[:, :, None, None]
    # reference: modulate/demodulate the weights per sample, grouped conv on the true input d_in * x
    s = layer.affine(w)
    weight = layer.weight * layer.w_gain
    wm = weight[None] * s[:, None, :, None, None]
    wm = wm * (wm.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    xt = (x * d_in[:, :, None, None]).reshape(1, 18, 7, 7)
    ref = F.conv2d(xt, wm.reshape(15, 6, 3, 3), padding=1, groups=3).reshape(3, 5, 7, 7)
    ref = F.leaky_relu(ref, 0.2)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_torgb_bmm_equals_modulated_1x1_conv() -> None:
    from gantools.nn.facegan import ToRGB

    torch.manual_seed(5)
    layer = ToRGB(8, 6)
    with torch.no_grad():
        layer.bias.normal_()
    x, w, d = torch.randn(2, 8, 5, 4), torch.randn(2, 6), torch.rand(2, 8) + 0.5
    s = layer.affine(w) * d
    ref = torch.stack([F.conv2d(x[i : i + 1] * s[i, :, None, None], layer.weight * layer.w_gain, layer.bias)[0]
                       for i in range(2)])
    assert torch.allclose(layer(x, d, w), ref, atol=1e-5)
    assert torch.allclose(layer(x.contiguous(memory_format=torch.channels_last), d, w), ref, atol=1e-5)


def test_generator_shapes_and_conditioning(tiny_g: FaceGenerator) -> None:
    z = torch.randn(4, 16)
    a, g = torch.tensor([0, 3, 7, 8]), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        img = tiny_g(z, a, g)
        other = tiny_g(z, (a + 2) % 9, 1 - g)
        again = tiny_g(z, a, g)
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    assert torch.equal(img, again)  # eval mode: constant noise
    assert (img - other).abs().mean() > 1e-3  # labels change the face
    assert tiny_g.synthesis.num_ws == 1 + 2 * 3 + 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf = tiny_g(z, a, g)
    assert bf.dtype == torch.float32 and (bf - img).abs().max() < 0.1


def test_w_avg_tracks_training_mapping() -> None:
    torch.manual_seed(2)
    g = FaceGenerator(**TINY).train()
    assert torch.count_nonzero(g.mapping.w_avg) == 0
    z, a, s = torch.randn(8, 16), torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)
    w = g.mapping(z, a, s)
    assert torch.allclose(g.mapping.w_avg, w.mean(0) * (1 - g.mapping.w_avg_beta), atol=1e-6)
    g.eval()
    before = g.mapping.w_avg.clone()
    g(z, a, s)
    assert torch.equal(before, g.mapping.w_avg)  # eval: no update


@pytest.mark.parametrize("up_order", ["pre", "post"])
def test_generator_trains_one_step_bf16_channels_last(up_order: str) -> None:
    """A bf16 + channels_last training step computes what the fp32 step computes, to bf16 precision.

    bf16 keeps 8 significant bits (relative rounding 2^-9 per op); over the ~10 layers of the tiny
    generator that gives ~1% errors (measured: 0.7% on the output, 1% on the gradients); 3% / 5% bounds.
    """
    import copy

    torch.manual_seed(3)
    g = FaceGenerator(**dict(TINY, up_order=up_order)).train()
    ref = copy.deepcopy(g)
    g = g.to(memory_format=torch.channels_last)
    z, age, gender = torch.randn(2, 16), torch.tensor([1, 2]), torch.tensor([0, 1])
    torch.manual_seed(10)  # the same noise maps for both passes
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(z, age, gender)
    out.float().mean().backward()
    torch.manual_seed(10)
    expect = ref(z, age, gender)
    expect.mean().backward()
    assert out.shape == expect.shape == (2, 3, 32, 32)
    assert (out.float() - expect).abs().max() <= 0.03 * expect.abs().max()
    params = [(p, q) for p, q in zip(g.parameters(), ref.parameters()) if q.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p, _ in params)
    grad, grad_ref = (torch.cat([t.grad.flatten() for t in ts]) for ts in zip(*params))
    assert grad_ref.norm() > 0 and (grad - grad_ref).norm() <= 0.05 * grad_ref.norm()


def test_discriminator_projection_and_unknown_labels() -> None:
    torch.manual_seed(4)
    d = FaceDiscriminator(32, channel_base=256, channel_max=32, mbstd_group=2).eval()
    x = torch.rand(4, 3, 32, 32)
    base = d(x)
    assert base.shape == (4,)
    unknown = torch.full((4,), -1)
    assert torch.allclose(d(x, unknown, unknown), base)  # unknown labels: no projection term
    a = torch.tensor([0, 3, 7, -1])
    g = torch.tensor([1, -1, 0, 0])
    mixed = d(x, a, g)
    phi = d.features(x)
    expect = base.clone()
    for i in range(4):
        if a[i] >= 0:
            expect[i] += (d.age_embed.weight[a[i]] * phi[i]).sum()
        if g[i] >= 0:
            expect[i] += (d.gender_embed.weight[g[i]] * phi[i]).sum()
    assert torch.allclose(mixed, expect, atol=1e-5)
    for stem, sn in (("rgb", False), ("s2", True)):
        out = FaceDiscriminator(32, 256, 32, stem=stem, spectral_norm=sn, mbstd_group=0)(x, a, g)
        assert out.shape == (4,) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="stem"):
        FaceDiscriminator(32, stem="odd")


def test_minibatch_stddev_groups_are_consecutive() -> None:
    torch.manual_seed(0)
    x = torch.cat([torch.zeros(4, 2, 2, 2), torch.randn(4, 2, 2, 2) * 3])
    out = minibatch_stddev(x, 4)
    assert out.shape == (8, 3, 2, 2)
    assert torch.all(out[:4, 2] < 1e-3) and torch.all(out[4:, 2] > 0.5)  # reals and fakes never mixed
    assert minibatch_stddev(torch.randn(6, 2, 2, 2), 4).shape == (6, 3, 2, 2)  # group lowered to 3


@pytest.mark.parametrize("extra", [{}, {"noise": False}, {"up_order": "pre"}, {"resolution": 64, "channel_base": 512}])
def test_detect_describe_round_trip(extra: dict) -> None:
    import gantools.nn  # noqa: F401  (every family registered: detection must be unambiguous)
    from gantools.nn.registry import ARCHS, describe_arch, detect_arch, full_config, load_arch

    cfg = dict(TINY, **extra)
    g = FaceGenerator(**cfg)
    info = detect_arch(g.state_dict())
    assert info.arch == "facegan"
    assert info.config == full_config("facegan", cfg)
    assert (info.scale, info.in_channels, info.out_channels, info.bf16) == (1, 3, 3, True)
    model = load_arch(g.state_dict()).model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), g.state_dict().values()))
    assert describe_arch("facegan", cfg).config == info.config
    assert ARCHS.get("facegan").detect({"body.0.weight": torch.zeros(1)}) is None


def test_bad_generator_configs() -> None:
    with pytest.raises(ValueError, match="resolution"):
        FaceGenerator(resolution=48)
    with pytest.raises(ValueError, match="up_order"):
        FaceGenerator(**dict(TINY, up_order="sideways"))


# -- generation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_each_face_depends_only_on_its_seed(tiny_g: FaceGenerator, precision: str) -> None:
    model = FaceModel(tiny_g, precision=precision)
    four = model.generate(4, seed=7)
    split = model.generate(2, seed=7) + model.generate(2, seed=9)
    assert len(four) == 4 and all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in four)
    for a, b in zip(four, split):
        assert np.array_equal(a, b)
    assert np.array_equal(model.generate(1, seed=10)[0], four[3])
    assert not np.array_equal(four[0], four[1])
    # labels do not change a seed's z
    assert np.array_equal(model.latent(7, (8, 1)).z, model.latent(7).z)
    fixed = model.latents(3, 7, labels=(8, 1))
    assert all((lat.age, lat.gender) == (8, 1) for lat in fixed)


def test_truncation_pulls_towards_the_centre(tiny_g: FaceGenerator) -> None:
    model = FaceModel(tiny_g)
    with torch.no_grad():
        tiny_g.mapping.w_avg.copy_(torch.randn(32, generator=torch.Generator().manual_seed(0)))
    try:
        lat = model.latent(3)
        w1 = model.seed_w(3, 1.0)
        for center, c in (("label", model.center(lat.age, lat.gender)), ("global", tiny_g.mapping.w_avg)):
            w_half = model.seed_w(3, 0.5, center=center)
            assert torch.allclose((w_half - c).norm(), 0.5 * (w1 - c).norm(), rtol=1e-4)
        img_c = model.render(model.center(lat.age, lat.gender)[None])
        near = model.render(model.seed_w(3, 0.01))
        far = model.render(w1)
        assert (near - img_c).abs().mean() < 0.1 * (far - img_c).abs().mean()
    finally:
        with torch.no_grad():
            tiny_g.mapping.w_avg.zero_()


def test_slerp_endpoints_and_interpolation(tiny_g: FaceGenerator) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    assert np.array_equal(slerp(a, b, 0.0), a) and np.array_equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(mid) - (np.linalg.norm(a) + np.linalg.norm(b)) / 2) < 0.2 * np.linalg.norm(a)
    assert np.allclose(slerp(a, a, 0.3), a, atol=1e-6)  # parallel: falls back to lerp
    model = FaceModel(tiny_g)
    walk = model.interpolate(7, 42, 5)
    assert len(walk) == 5
    assert np.array_equal(walk[0], model.generate(1, 7)[0]) and np.array_equal(walk[-1], model.generate(1, 42)[0])
    walk_t = model.interpolate(7, 42, 3, truncation=0.7)
    assert np.array_equal(walk_t[-1], model.generate(1, 42, truncation=0.7)[0])


def test_generation_bad_arguments(tiny_g: FaceGenerator) -> None:
    model = FaceModel(tiny_g)
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n must be"):
            model.generate(n, 0)
    for t in (0.0, -0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="truncation"):
            model.generate(1, 0, truncation=t)
    with pytest.raises(ValueError, match="age group"):
        model.generate(1, 0, labels=(9, None))
    with pytest.raises(ValueError, match="gender"):
        model.generate(1, 0, labels=(None, 2))
    with pytest.raises(ValueError, match="seed"):
        model.generate(1, -1)
    with pytest.raises(ValueError, match="frames"):
        model.interpolate(1, 2, 1)


# -- writers ----------------------------------------------------------------------------------
def test_writers(tmp_path) -> None:
    import cv2
    from PIL import Image

    frames = [np.full((18, 18, 3), (i * 40, 255 - i * 40, 100), np.uint8) for i in range(6)]
    paths = media.write_pngs(frames[:3], [7, 8, 12345], tmp_path / "out")
    assert [p.name for p in paths] == ["seed0007.png", "seed0008.png", "seed12345.png"]
    assert np.array_equal(cv2.imread(str(paths[0])), frames[0])
    sheet = media.grid(frames, nrow=3, pad=2)
    assert sheet.shape == (2 * 20 + 2, 3 * 20 + 2, 3)
    media.write_grid(frames, tmp_path / "sheet.png")
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == media.grid(frames).shape
    gif = media.write_animation(frames, tmp_path / "walk.gif", fps=12)
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (18, 18)
    mp4 = media.write_animation(frames[:5], tmp_path / "walk.mp4")
    cap = cv2.VideoCapture(str(mp4))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 5
    odd = [np.zeros((17, 15, 3), np.uint8)] * 3
    assert media.write_mp4(odd, tmp_path / "odd.mp4").stat().st_size > 0
    with pytest.raises(ValueError, match=".gif or .mp4"):
        media.write_animation(frames, tmp_path / "walk.avi")
    with pytest.raises(ValueError, match="no images"):
        media.write_gif([], tmp_path / "empty.gif")


def test_bias_noise_act_fast_path_matches_broadcast() -> None:
    from gantools.nn.facegan import bias_noise_act

    torch.manual_seed(6)
    y = torch.randn(3, 16, 5, 6)
    noise = torch.randn(3, 1, 5, 6)
    bias = torch.randn(3, 16, requires_grad=True)
    strength = torch.randn(3, 16, requires_grad=True)
    ref = F.leaky_relu(y + bias[:, :, None, None] + noise * strength[:, :, None, None], 0.2)
    ref.sum().backward()
    g_bias, g_strength = bias.grad.clone(), strength.grad.clone()
    bias.grad = strength.grad = None
    yc = y.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = bias_noise_act(yc, bias, noise, strength)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref, atol=1e-5)
    out.sum().backward()
    assert torch.allclose(bias.grad, g_bias, atol=1e-4) and torch.allclose(strength.grad, g_strength, atol=1e-4)
    assert torch.allclose(yc.grad, torch.where(ref > 0, 1.0, 0.2), atol=1e-6)
    # without noise, and on NCHW tensors (the plain broadcasting path)
    no_noise = F.leaky_relu(y + bias[:, :, None, None], 0.2)
    assert torch.allclose(bias_noise_act(y.contiguous(memory_format=torch.channels_last), bias, None, None), no_noise, atol=1e-5)
    assert torch.allclose(bias_noise_act(y.clone(), bias, noise[:1], strength),
                          F.leaky_relu(y + bias[:, :, None, None] + noise[:1] * strength[:, :, None, None], 0.2), atol=1e-5)


def test_modulated_conv_with_bias_and_noise_is_stylegan2_layer() -> None:
    """d * y == lrelu(demodulated conv + bias + strength * noise): bias and noise after demod."""
    torch.manual_seed(7)
    layer = ModulatedConv(6, 5, 8, noise_res=7)
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.7)
    x, w = torch.randn(2, 6, 7, 7), torch.randn(2, 8)
    for fmt in (torch.contiguous_format, torch.channels_last):
        y, d = layer(x.contiguous(memory_format=fmt), None, w, "const")
        s = layer.affine(w)
        wm = (layer.weight * layer.w_gain)[None] * s[:, None, :, None, None]
        wm = wm * (wm.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        conv = F.conv2d(x.reshape(1, 12, 7, 7), wm.reshape(10, 6, 3, 3), padding=1, groups=2).reshape(2, 5, 7, 7)
        ref = F.leaky_relu(conv + layer.bias[None, :, None, None] + 0.7 * layer.noise_const, 0.2)
        assert torch.allclose(y * d[:, :, None, None], ref, atol=1e-5)
