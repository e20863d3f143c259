"""Tiled inference equals whole-image inference for networks with a limited receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gantools.nn.descriptor import ModelDescriptor, Tiling
from gantools.runner import ImageRunner
from gantools.tensor import convert
from gantools.tensor.tiling import auto_tile, pad_to, run_tiled

RADIUS = 3  # three 3x3 convs at input resolution


def make_net(scale: int, seed: int = 0):
    """3 convs 3x3 (receptive radius 3 input px), then pixel shuffle by ``scale``."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(6, 3, 3, 3, generator=g) * 0.3
    w2 = torch.randn(6, 6, 3, 3, generator=g) * 0.3
    w3 = torch.randn(3 * scale * scale, 6, 3, 3, generator=g) * 0.3

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(F.conv2d(x, w1, padding=1))
        y = torch.tanh(F.conv2d(y, w2, padding=1))
        y = torch.sigmoid(F.conv2d(y, w3, padding=1))
        return F.pixel_shuffle(y, scale) if scale > 1 else y

    return fn


def make_strided_net(scale: int):
    """Pixel-unshuffle by 2 first: only equivariant to even shifts (needs multiple=2 alignment)."""
    g = torch.Generator().manual_seed(1)
    w1 = torch.randn(8, 12, 3, 3, generator=g) * 0.3
    w2 = torch.randn(3 * 4 * scale * scale, 8, 3, 3, generator=g) * 0.3

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(F.conv2d(F.pixel_unshuffle(x, 2), w1, padding=1))
        return F.pixel_shuffle(torch.sigmoid(F.conv2d(y, w2, padding=1)), 2 * scale)

    return fn  # radius: 2 convs at half resolution = 4 input px (+1 for the phase)


@st.composite
def tiling_case(draw):
    h = draw(st.integers(8, 96))
    w = draw(st.integers(8, 96))
    scale = draw(st.sampled_from([1, 2, 4]))
    overlap = draw(st.integers(RADIUS, 12))
    feather = draw(st.integers(0, 2 * (overlap - RADIUS)))  # exact while radius <= overlap - feather/2
    tile = draw(st.integers(overlap + 1, 48))
    multiple = draw(st.sampled_from([1, 2, 4]))
    return h, w, scale, overlap, feather, tile, multiple


@settings(max_examples=25, deadline=None)
@given(tiling_case())
def test_tiled_equals_untiled(case):
    h, w, scale, overlap, feather, tile, multiple = case
    fn = make_net(scale)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 97 + w))
    with torch.no_grad():
        whole = run_tiled(fn, x, scale=scale, tile=0, overlap=0, multiple=multiple)
        tiled = run_tiled(fn, x, scale=scale, tile=tile, overlap=overlap, multiple=multiple, feather=feather)
    assert tiled.shape == (1, 3, h * scale, w * scale) == whole.shape
    assert (tiled - whole).abs().max().item() <= 1 / 255


@settings(max_examples=10, deadline=None)
@given(h=st.integers(8, 64), w=st.integers(8, 64), scale=st.sampled_from([1, 2]), tile=st.integers(12, 40))
def test_tiles_aligned_to_multiple_for_strided_nets(h, w, scale, tile):
    fn = make_strided_net(scale)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h + w))
    with torch.no_grad():
        whole = run_tiled(fn, x, scale=scale, tile=0, overlap=0, multiple=2)
        tiled = run_tiled(fn, x, scale=scale, tile=tile, overlap=5, multiple=2, feather=0)
    assert (tiled - whole).abs().max().item() <= 1 / 255


def test_untiled_without_padding_is_the_plain_call():
    fn = make_net(2)
    x = torch.rand(1, 3, 13, 21)
    assert torch.equal(run_tiled(fn, x, scale=2, tile=0, overlap=0), fn(x))


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_blend_weights_sum_to_one(scale):
    fn = lambda t: torch.ones(t.shape[0], 2, t.shape[-2] * scale, t.shape[-1] * scale)  # noqa: E731
    x = torch.rand(1, 3, 70, 53)
    out = run_tiled(fn, x, scale=scale, tile=16, overlap=6)
    assert out.shape == (1, 2, 70 * scale, 53 * scale)
    assert torch.allclose(out, torch.ones_like(out), atol=1e-6)


@pytest.mark.parametrize("tile,overlap", [(8, 8), (4, 8)])
def test_tile_not_larger_than_overlap_raises(tile, overlap):
    with pytest.raises(ValueError, match=f"tile size {tile} must be larger than the overlap {overlap}"):
        run_tiled(make_net(1), torch.rand(1, 3, 32, 32), scale=1, tile=tile, overlap=overlap)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_one_pixel_image_padded_to_min_size_and_multiple(scale):
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[-2:]))
        return F.interpolate(t, scale_factor=scale, mode="nearest")

    x = torch.rand(1, 3, 1, 1)
    out = run_tiled(fn, x, scale=scale, tile=0, overlap=0, multiple=4, min_size=16)
    assert seen == [(16, 16)]
    assert out.shape == (1, 3, scale, scale)
    assert torch.allclose(out, x.expand(-1, -1, scale, scale))


def test_pad_to_reflects_when_possible_and_replicates_otherwise():
    x = torch.arange(5.0).view(1, 1, 1, 5)
    y = pad_to(x, multiple=8)
    assert y.shape[-2:] == (8, 8)
    assert y[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]  # reflect along W
    assert torch.equal(y[0, 0], y[0, 0, :1].expand(8, -1))  # H of 1 can only replicate


def test_output_size_mismatch_is_reported():
    with pytest.raises(ValueError, match="expected"):
        run_tiled(lambda t: t, torch.rand(1, 3, 8, 8), scale=2, tile=0, overlap=0)


def test_channels_last_and_dtype_kept():
    seen = []

    def fn(t):
        seen.append(t.is_contiguous(memory_format=torch.channels_last))
        return t.to(torch.bfloat16)

    x = torch.rand(1, 3, 40, 40).contiguous(memory_format=torch.channels_last)
    out = run_tiled(fn, x, scale=1, tile=16, overlap=4)
    assert all(seen) and len(seen) > 1 and out.dtype == torch.bfloat16


def test_auto_tile(monkeypatch):
    monkeypatch.delenv("GANTOOLS_TILE_BUDGET_MB", raising=False)
    assert auto_tile(256, 256, 4) == 0
    t = auto_tile(4000, 3000, 4)
    assert t >= 64 and t % 32 == 0
    assert auto_tile(4000, 3000, 1) > t
    monkeypatch.setenv("GANTOOLS_TILE_BUDGET_MB", "1")
    assert auto_tile(256, 256, 4) == 64
    monkeypatch.setenv("GANTOOLS_TILE_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="GANTOOLS_TILE_BUDGET_MB"):
        auto_tile(10, 10, 1)


class _Net(torch.nn.Module):
    """``make_net(scale)`` as a module; inputs larger than ``limit`` px "run out of memory"."""

    def __init__(self, scale: int, limit: int, error: str = "DefaultCPUAllocator: can't allocate memory") -> None:
        super().__init__()
        self.fn, self.limit, self.error, self.sizes = make_net(scale), limit, error, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise RuntimeError(self.error)
        return self.fn(x)


def _runner(net: torch.nn.Module, scale: int, tile: int | None) -> ImageRunner:
    model = ModelDescriptor("test", scale=scale, tiling=Tiling.SUPPORTED, bf16=False, receptive_radius=RADIUS,
                            model=net)
    return ImageRunner(model, precision="fp32", tile=tile)


def test_runner_halves_tile_on_oom():
    net = _Net(2, limit=150)
    image = (torch.rand(300, 180, 3) * 255).to(torch.uint8).numpy()
    out = _runner(net, 2, tile=0)(image)
    x = convert.to_tensor(image, bgr_to_rgb=True)
    want = convert.from_tensor(net.fn(x), image.dtype, rgb_to_bgr=True)
    assert out.shape == (600, 360, 3)
    assert abs(out.astype(int) - want).max() <= 1
    assert net.sizes[0] == 300 and max(net.sizes[-1:]) <= 150 and len(net.sizes) > 2


def test_runner_reraises_what_backoff_cannot_fix():
    image = (torch.rand(256, 256, 3) * 255).to(torch.uint8).numpy()
    with pytest.raises(RuntimeError, match="out of memory"):
        _runner(_Net(1, limit=8, error="CUDA out of memory. Tried to allocate 2 GiB"), 1, tile=128)(image)
    never = _Net(1, limit=8, error="shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _runner(never, 1, tile=128)(image)
    assert len(never.sizes) == 1  # not retried
