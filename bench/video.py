"""Video throughput of ``gantools run``: frames per second end to end (decode, plugin, encode,
stream copy, atomic write) with ``--batch-frames 1`` (frame by frame) and ``auto`` (one network
pass for several frames, :mod:`gantools.video.batching`), against the plugin alone on the same frames.

The clip is synthetic (made here with PyAV: moving gradients and shapes, H.264 yuv420p, an AAC
track), so the numbers depend only on the machine. Each pipeline runs once after a warm-up call;
the 1-minute load average is recorded before and after (the machine may be shared).

    python bench/video.py --size 160x120 --frames 48 --only upscale-x4 stylize
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: name -> (plugin, options) of the measured pipelines
PIPELINES = {
    "resize x2 (Lanczos)": ("resize", {"scale": 2}),
    "upscale fidelity x2": ("upscale", {"model": "fidelity", "scale": 2}),
    "upscale fidelity x4": ("upscale", {"model": "fidelity", "scale": 4}),
    "stylize candy": ("stylize", {"style": "candy"}),
}
#: ``--only`` keys: the plugin name, or ``upscale-x2``/``upscale-x4``
KEYS = {"resize x2 (Lanczos)": ("resize",), "upscale fidelity x2": ("upscale", "upscale-x2"),
        "upscale fidelity x4": ("upscale", "upscale-x4"), "stylize candy": ("stylize",)}


def make_clip(path: Path, frames: int, w: int, h: int) -> list[np.ndarray]:
    """A clip of moving gradients and a bright square with a silent AAC track; returns its frames."""
    import av

    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
    audio = out.add_stream("aac", rate=16000)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    made = []
    for i in range(frames):
        img = np.stack([90 + 80 * np.sin((x + 3 * i) / 17), 60 + 120 * y / h, 120 + 60 * np.cos((x - 2 * i) / 23)], -1)
        s = (4 * i) % max(1, w - 16)
        img[h // 3:h // 3 + 16, s:s + 16] = 240
        frame = np.clip(img, 0, 255).astype(np.uint8)
        made.append(frame)
        vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
        vf.pts = i
        out.mux(video.encode(vf))
    out.mux(video.encode())
    for k in range(frames * 16000 // 25 // 1024 + 1):
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, k * 1024
        out.mux(audio.encode(af))
    out.mux(audio.encode())
    out.close()
    return made


def measure(name: str, plugin_name: str, options: dict, clip: Path, frames: list[np.ndarray], work: Path,
            warm: Path, backend: str = "auto") -> dict:
    """Plugin-only fps and end-to-end fps of ``gantools.run`` with ``--batch-frames 1`` and ``auto``
    (each after a run on the short clip ``warm``: imports, encoder and kernel set-up are not timed)."""
    import gantools
    from gantools.video.batching import frames_per_batch, process_frames

    plugin = gantools.load(plugin_name, device="cpu", backend=backend, **options)
    plugin.ensure_setup()
    per_pass = frames_per_batch(plugin, "auto", frames[0].shape)
    plugin.process(frames[0])  # warm-up (first-call allocations), one frame and one batch
    process_frames(plugin, frames[:per_pass])
    t = time.perf_counter()
    for f in frames:
        plugin.process(f)
    alone = len(frames) / (time.perf_counter() - t)
    runner = getattr(plugin, "runner", None)
    row = {"name": name, "alone": alone, "per_pass": per_pass,
           "backend": getattr(getattr(runner, "backend", None), "name", "-"),
           "precision": getattr(runner, "resolve", lambda d: "-")(np.uint8)}
    for batch in (1, "auto"):
        gantools.run(plugin, warm, work / "warm_out.mp4", progress="off", overwrite=True, batch_frames=batch)
        t = time.perf_counter()
        summary = gantools.run(plugin, clip, work / f"{plugin_name}.mp4", progress="off", overwrite=True,
                               batch_frames=batch)
        total = time.perf_counter() - t
        assert summary.done == 1, summary.errors
        row[batch] = len(frames) / total
    return row


def load() -> str:
    try:
        return "{:.1f}".format(os.getloadavg()[0])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="160x120", help="clip size WxH")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--only", nargs="*", help="pipelines to run: resize, upscale (x2 and x4), upscale-x2, "
                        "upscale-x4, stylize (default: all)")
    parser.add_argument("--backend", default="auto", help="--backend of the network plugins (default: auto)")
    parser.add_argument("--out", help="write the Markdown table here (else stdout)")
    args = parser.parse_args(argv)
    w, h = map(int, args.size.lower().split("x"))
    import av
    import torch

    from gantools.video.batching import AUTO_FRAMES

    rows = []
    before = load()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        frames = make_clip(clip, args.frames, w, h)
        warm = work / "warm.mp4"
        make_clip(warm, min(args.frames, AUTO_FRAMES), w, h)
        for name, (plugin, options) in PIPELINES.items():
            if args.only and not set(KEYS[name]) & set(args.only):
                continue
            rows.append(measure(name, plugin, options, clip, frames, work, warm, args.backend))
            r = rows[-1]
            print(f"{name}: {r[1]:.2f} fps end to end frame by frame, {r['auto']:.2f} fps batched "
                  f"({r['per_pass']} per pass), {r['alone']:.2f} fps plugin alone", file=sys.stderr)
    after = load()
    lines = [
        f"Clip: {w}x{h}, {args.frames} frames, H.264 yuv420p + AAC, synthetic (`bench/video.py`). "
        f"CPU: {os.cpu_count()} cores ({platform.machine()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), PyAV {av.__version__}. Load average (1 min) {before} before, "
        f"{after} after the run.",
        "",
        "| pipeline | backend, precision | end to end, --batch-frames 1 (fps) | end to end, auto (fps) "
        "| frames per pass (auto) | speed-up | plugin alone, frame by frame (fps) |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(f"| {r['name']} | {r['backend']}, {r['precision']} | {r[1]:.2f} | {r['auto']:.2f} | {r['per_pass']} | "
          f"{r['auto'] / r[1]:.2f}x | {r['alone']:.2f} |" for r in rows),
    ]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
