"""Frames in batches (``--batch-frames``): one (N, C, H, W) network pass for N frames, the same
results as frame by frame (:meth:`gantools.runner.ImageRunner.batch`, :mod:`gantools.video.batching`).

Frames here are at least 96x80: below about 7k pixels torch runs a one-image fp32 convolution with
its own (non-oneDNN) kernel and a stack with oneDNN, and the float rounding then differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import gantools
from clitools import cli
from gantools.batch import BatchUsageError
from gantools.video.batching import AUTO_FRAMES, batch_frames, frames_per_batch, process_frames

torch.set_num_threads(1)


# -- fixtures ---------------------------------------------------------------------------------------
def frames(n: int = 5, h: int = 80, w: int = 96, seed: int = 0) -> list[np.ndarray]:
    """``n`` different BGR uint8 frames: moving gradients plus noise (every pixel differs between frames)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        img = np.stack([90 + 80 * np.sin((x + 5 * i) / 11), 40 + 150 * y / h, 120 + 60 * np.cos((x - 3 * i) / 7)], -1)
        out.append(np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def upscale_weights(tmp_path_factory) -> str:
    """A random small SRVGG x2 (gantools export)."""
    from gantools.nn import create_arch
    from gantools.train.export import export_generator

    torch.manual_seed(0)
    cfg = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2, act_type="prelu")
    path = tmp_path_factory.mktemp("w") / "x2.safetensors"
    export_generator(path, create_arch("srvgg", **cfg), "srvgg", cfg, {"task": "upscale", "scale": "2"})
    return str(path)


@pytest.fixture(scope="module")
def style_weights(tmp_path_factory) -> str:
    """A random tiny instance-norm stylenet (gantools export)."""
    from test_stylize import tiny_export

    return tiny_export(tmp_path_factory.mktemp("w") / "style.safetensors")


def passes(plugin) -> list[int]:
    """A list that collects the batch size of every network pass of ``plugin`` (from now on)."""
    seen: list[int] = []
    plugin.runner.descriptor.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    return seen


def load(name: str, weights: str, **options):
    plugin = gantools.load(name, weights=weights, device="cpu", backend="torch", threads=1, **options)
    plugin.ensure_setup()
    return plugin


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
                                    for x, y in zip(a, b))


# -- the runner's batch --------------------------------------------------------------------------------
def test_upscale_batch_is_one_pass_and_bit_exact_in_fp32(upscale_weights) -> None:
    plugin = load("upscale", upscale_weights, precision="fp32")
    clip = frames(5)
    seen = passes(plugin)
    alone = [plugin.runner(f) for f in clip]
    assert seen == [1] * 5
    seen.clear()
    batched = plugin.runner.batch(clip)
    assert seen == [5]
    assert same(batched, alone)
    gray = [f[:, :, 1] for f in clip]  # gray stays gray (HxWx1), through the same stacked pass
    assert same(plugin.runner.batch(gray), [plugin.runner(g) for g in gray])


def test_upscale_batch_in_bf16_within_one_level(upscale_weights) -> None:
    """bf16 autocast: measured bit-exact on an AVX512-BF16 Xeon; asserted within one level."""
    plugin = load("upscale", upscale_weights, precision="bf16")
    clip = frames(4, seed=1)
    batched, alone = plugin.runner.batch(clip), [plugin.runner(f) for f in clip]
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(batched, alone))


def test_tiled_frames_and_budget_split_the_batch(upscale_weights, monkeypatch) -> None:
    clip = frames(5)
    tiled = load("upscale", upscale_weights, precision="fp32", tile=48)  # 96x80 frames need tiles of 48
    assert tiled.runner.per_pass(80, 96) == 1 and tiled.runner.per_pass(40, 48) > 1
    seen = passes(tiled)
    assert same(tiled.runner.batch(clip), [tiled.runner(f) for f in clip])
    assert max(seen) == 1  # frame by frame, tile by tile
    plugin = load("upscale", upscale_weights, precision="fp32")
    monkeypatch.setenv("GANTOOLS_TILE_BUDGET_MB", str(2 * 96 * 80 * 256 * 4 / 2**20))  # two frames' budget at x2
    assert plugin.runner.per_pass(80, 96) == 2
    seen = passes(plugin)
    assert same(plugin.runner.batch(clip), [plugin.runner(f) for f in clip])
    assert seen[:3] == [2, 2, 1]
    assert frames_per_batch(plugin, "auto", clip[0].shape) == 2 and frames_per_batch(plugin, 1, clip[0].shape) == 1
    mixed = [clip[0], clip[1][:64], clip[2]]  # mixed sizes: one by one
    assert same(plugin.runner.batch(mixed), [plugin.runner(f) for f in mixed])


# -- plugins around the runner -------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, {"strength": 0.6, "preserve_color": True, "size": 112}])
def test_stylize_with_clip_statistics_batched_equals_frame_by_frame(style_weights, options) -> None:
    """Frozen clip statistics are the same for every frame of a batch: batching changes nothing."""
    from gantools.video.clipstats import clip_statistics

    plugin = load("stylize", style_weights, precision="fp32", **options)
    clip = frames(6, h=96, w=128, seed=2)
    with clip_statistics(plugin, clip[::2]) as frozen:
        assert frozen
        stats = [(m.clone(), v.clone()) for m, v in plugin.runner.tiler._stats]
        seen = passes(plugin)
        batched = process_frames(plugin, clip)
        assert seen == [6]  # one pass for the six frames
        alone = [plugin.process(f) for f in clip]
        after = plugin.runner.tiler._stats
        assert all(torch.equal(m, m2) and torch.equal(v, v2) for (m, v), (m2, v2) in zip(stats, after))
    assert same(batched, alone)
    assert same(process_frames(plugin, clip), [plugin.process(f) for f in clip])  # per-frame statistics too


def test_graph_backend_batches_and_clip_statistics_run_the_module_once(style_weights, tmp_path, monkeypatch) -> None:
    """ONNX Runtime takes the stacked frames (dynamic batch); with clip statistics (which the graph
    cannot take) each batch runs the torch module once, after the graph was found to bypass it."""
    pytest.importorskip("onnxruntime")
    from gantools.video.clipstats import clip_statistics

    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path))
    clip = frames(4, h=96, w=128, seed=4)
    plugin = gantools.load("stylize", weights=style_weights, device="cpu", backend="onnxruntime", precision="fp32",
                           threads=1)
    plugin.ensure_setup()
    batched, alone = plugin.runner.batch(clip), [plugin.runner(f) for f in clip]
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(batched, alone))
    reference = load("stylize", style_weights, precision="fp32")  # torch: the module itself
    seen = passes(plugin)
    with clip_statistics(plugin, clip[:2]), clip_statistics(reference, clip[:2]):
        seen.clear()
        batched = process_frames(plugin, clip[:3]) + process_frames(plugin, clip[3:])
        assert seen == [3, 1]  # the module once per batch (the graph's first result was dropped)
        assert same(batched, [reference.process(f) for f in clip])


def test_plugins_without_a_runner_go_frame_by_frame() -> None:
    plugin = gantools.load("resize", scale=2)
    clip = frames(3)
    assert frames_per_batch(plugin, 8, clip[0].shape) == 1
    assert same(process_frames(plugin, clip), [plugin.process(f) for f in clip])


class FakeRunner:
    """A runner that doubles pixel values, counting calls; ``batch`` records its stacks."""

    scale = 1

    def __init__(self) -> None:
        self.calls, self.stacks = 0, []

    def __call__(self, image, transform=None):
        self.calls += 1
        return image * 2

    def batch(self, images):
        self.stacks.append(len(images))
        return [a * 2 for a in images]

    def per_pass(self, h, w):
        return 8


class Around:
    """A plugin with steps around its runner; ``mode``: ``drift`` feeds a different image each
    call, ``transform`` calls with a transform, ``skip`` calls no network for odd frames."""

    def __init__(self, mode: str = "") -> None:
        self.runner, self.mode, self.count = FakeRunner(), mode, 0

    def process(self, image):
        self.count += 1
        if self.mode == "skip" and image[0, 0, 0] % 2:
            return image + 1
        x = image + (self.count if self.mode == "drift" else 0)
        return self.runner(x, transform=(lambda t, n: n(t)) if self.mode == "transform" else None) + 1


@pytest.mark.parametrize("mode", ["", "drift", "transform", "skip"])
def test_capture_and_replay(mode) -> None:
    clip = [np.full((4, 5, 3), v, np.uint8) for v in (1, 2, 3, 4)]
    plugin = Around(mode)
    runner = plugin.runner
    results = process_frames(plugin, clip)
    assert plugin.runner is runner
    if mode == "":
        assert runner.stacks == [4] and runner.calls == 0
        assert same(results, [f * 2 + 1 for f in clip])
    if mode == "drift":  # the replayed image differs from the captured one: computed alone, still right
        assert runner.calls == 4 and plugin.count == 8
        assert same(results, [(f + 4 + k + 1) * 2 + 1 for k, f in enumerate(clip)])
    if mode == "transform":  # cannot be deferred: frame by frame
        assert runner.stacks == [] and same(results, [f * 2 + 1 for f in clip])
    if mode == "skip":  # frames without a network call keep their first result (not processed again)
        assert runner.stacks == [2] and plugin.count == 6
        assert same(results, [f + 1 if f[0, 0, 0] % 2 else f * 2 + 1 for f in clip])


# -- the option, end to end -----------------------------------------------------------------------------
def test_batch_frames_values(tmp_path) -> None:
    assert batch_frames("auto") is None and batch_frames(None) is None and batch_frames("3") == 3
    assert AUTO_FRAMES == 8
    for bad in ("0", "x", -2, 2.5):
        with pytest.raises(ValueError, match="option --batch-frames"):
            batch_frames(bad)
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), frames(1)[0])
    with pytest.raises(BatchUsageError, match="option --batch-frames: 'many'"):
        gantools.run("resize", image, tmp_path / "out", batch_frames="many", progress="off")
    proc = cli("run", "resize", str(image), "-o", f"{tmp_path / 'out'}/", "--batch-frames", "0")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "--batch-frames" in err
    assert not (tmp_path / "out").exists()
    assert "--batch-frames" in cli("run", "upscale", "--help").stdout.decode()


def test_video_frames_and_gif_same_with_any_batch(tmp_path, upscale_weights) -> None:
    av = pytest.importorskip("av")
    from PIL import Image

    from clitools import read

    clip = frames(6, seed=3)
    src = tmp_path / "clip.mkv"
    out = av.open(str(src), "w")
    v = out.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt, v.options = 96, 80, "yuv444p", {"crf": "0"}
    for i, f in enumerate(clip):
        frame = av.VideoFrame.from_ndarray(f, format="bgr24")
        frame.pts = i
        out.mux(v.encode(frame))
    out.mux(v.encode())
    out.close()
    gif = tmp_path / "anim.gif"
    Image.fromarray(clip[0][:, :, ::-1]).save(gif, save_all=True, duration=100, loop=0,
                                              append_images=[Image.fromarray(f[:, :, ::-1]) for f in clip[1:4]])
    results = {}
    for batch in (1, "auto", 4):
        plugin = load("upscale", upscale_weights, precision="fp32")
        seen = passes(plugin)
        dest = tmp_path / f"out_{batch}"
        summary = gantools.run(plugin, [src, gif], dest, frames=True, batch_frames=batch, progress="off")
        assert summary.exit_code == 0 and summary.done == 2, summary.files
        names = sorted(p.name for p in dest.iterdir())
        assert names == ["anim.gif"] + [f"clip_{i:06d}.png" for i in range(1, 7)]
        results[batch] = [read(dest / n) for n in names[1:]], Path(dest / "anim.gif").read_bytes()
        assert seen == ({1: [1] * 10, "auto": [6, 4], 4: [4, 2, 4]}[batch])
    for batch in ("auto", 4):
        assert same(results[batch][0], results[1][0]) and results[batch][1] == results[1][1]
