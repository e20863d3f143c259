"""Backend speed against the machine's measured peak, and backend accuracy, in one run.

For every shipped network (upscale fidelity x2/x4 and photo x4, the five styles, the faces
generator; ``weights/manifest.toml``) and every backend (torch eager, ONNX Runtime, OpenVINO) at
bf16 and fp32 (ONNX Runtime runs bf16 requests in fp32):

* output megapixels per second (median of ``--repeats`` timed calls after a warm-up; the network
  through :class:`gantools.runner.ImageRunner` on a fixed input, padding included; faces: the
  exported generator, latents -> images, batch 8);
* achieved GFLOP/s: FLOPs of one call counted by ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions, matrix products) on the torch network, divided by the time;
* the fraction of the peak: a 64->64 3x3 bf16 convolution on a (1, 64, 512, 512) tensor in torch
  at the same thread count, measured in the same run (before, between and after the networks;
  the median is the peak).

Times are wall-clock, and also per-thread CPU time (process CPU time / threads): on a shared
machine the second is closer to what the cores did, the first to what a user waits. Targets
(issue 18): each network reaches >= 60 % of the peak with its best backend, or >= 2x its torch
eager bf16 speed where that is below 30 % of the peak.

Accuracy: fp32 outputs of every backend within 1/255 (uint8 levels) of torch fp32 on the
benchmark images (Set5 LR for upscale, Set5 HR at long side 256 for styles, 8 seeds for faces);
bf16: upscale PSNR-Y on Set5 (shave = scale) of each backend within 0.05 dB of torch fp32; styles
and faces: PSNR of the bf16 output against the fp32 output.

The measured table (:data:`gantools.backends.table.MEASURED`, which ``auto`` uses once it is enabled) is printed from the measurements: per
architecture family and precision, backends by the geometric mean of their speed over the family.

    python bench/speed.py                      # -> bench/results/speed.md (about 10 min on 2 busy cores)
    python bench/speed.py --quick --out /tmp/speed.md
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sr import DATA, load_set, y_channel  # noqa: E402

import gantools  # noqa: E402
from gantools.backends import available  # noqa: E402
from gantools.backends.table import MEASURED  # noqa: E402

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("bf16", "fp32")
UPSCALE = (("fidelity x2", dict(model="fidelity", scale=2)), ("fidelity x4", dict(model="fidelity", scale=4)),
           ("photo x4", dict(model="photo", scale=4)), ("fast x4", dict(model="fast", scale=4)))
STYLES = ("starry_night", "the_scream", "wave", "candy", "monet")
FACES_BATCH = 8
NOTES = "## Reading"  #: a hand-written section of --out from this heading on survives a rerun


@dataclass
class Timing:
    wall: float  #: seconds per call (median)
    cpu: float  #: process CPU seconds per call / threads (median)
    peak_wall: float = 0.0  #: seconds of the peak convolution, timed right after each call (median)
    peak_cpu: float = 0.0


@dataclass
class Net:
    """One network: how to make a timed call per backend/precision, and its FLOPs per call."""

    label: str
    family: str
    pixels: int  #: output pixels per call
    flops: float = 0.0
    timings: dict[tuple[str, str], Timing] = field(default_factory=dict)
    accuracy: dict[tuple[str, str], float] = field(default_factory=dict)  #: fp32: max uint8 diff; bf16: dB
    reference_psnr: float | None = None  #: upscale: torch fp32 PSNR-Y on Set5


def clock(fn: Callable[[], Any], threads: int) -> tuple[float, float]:
    """(wall, process CPU / threads) seconds of one call of ``fn``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, (time.process_time() - c) / threads


def timed(fn: Callable[[], Any], repeats: int, threads: int) -> Timing:
    """Medians of ``fn``'s wall and per-thread CPU seconds after one warm-up call, each call paired
    with one peak convolution right after it (the load of a shared machine changes by the second:
    the fraction of peak compares the two under the same load)."""
    fn()
    calls = [clock(fn, threads) + clock(PEAK_CONV, threads) for _ in range(repeats)]
    return Timing(*(float(np.median([c[i] for c in calls])) for i in range(4)))


#: the peak: a 64->64 3x3 bf16 conv (channels_last) on a large tensor, torch
PEAK_SHAPE = (1, 64, 384, 384)
PEAK_FLOPS = 2 * 64 * 64 * 9 * PEAK_SHAPE[2] * PEAK_SHAPE[3]


def _peak_conv() -> Callable[[], Any]:
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(torch.bfloat16, memory_format=torch.channels_last)
    x = torch.rand(*PEAK_SHAPE, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)

    def call() -> Any:
        with torch.inference_mode():
            return conv(x)
    return call


PEAK_CONV = _peak_conv()


def conv_peak(threads: int, repeats: int) -> Timing:
    """Seconds of the peak convolution alone (median of ``repeats``)."""
    PEAK_CONV()
    calls = [clock(PEAK_CONV, threads) for _ in range(repeats)]
    return Timing(float(np.median([c[0] for c in calls])), float(np.median([c[1] for c in calls])))


def count_flops(fn: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


# -- image networks (through the runner) -------------------------------------------------------
def load(plugin: str, opts: dict, backend: str, precision: str, threads: int) -> Any:
    p = gantools.load(plugin, backend=backend, precision=precision, threads=threads, tile=0, **opts)
    p.ensure_setup()
    return p


def image_net(net: Net, plugin: str, opts: dict, size: tuple[int, int], args: argparse.Namespace) -> None:
    """Speed of every backend/precision of one image network on a random (1, 3, *size) input."""
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    for backend in BACKENDS:
        for precision in PRECISIONS:
            if not available(backend) or (backend == "onnxruntime" and precision == "bf16"):
                continue
            runner = load(plugin, opts, backend, precision, args.threads).runner
            run_precision = runner.resolve(np.uint8)
            with torch.inference_mode():
                if not net.flops:
                    net.flops = count_flops(lambda: load(plugin, opts, "torch", "fp32", args.threads).runner.whole(x, "fp32"))
                net.timings[backend, precision] = timed(lambda: runner.whole(x, run_precision), args.repeats,
                                                        args.threads)
            report(net, backend, precision)


def process_all(plugin: str, opts: dict, backend: str, precision: str, images: list[np.ndarray],
                threads: int) -> list[np.ndarray]:
    p = load(plugin, opts, backend, precision, threads)
    return [p.process(img) for img in images]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x.astype(np.int32) - y.astype(np.int32)).max()) for x, y in zip(a, b))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
    ys, yh = y_channel(sr)[shave:-shave, shave:-shave], y_channel(hr)[shave:-shave, shave:-shave]
    return psnr(ys, yh)


def upscale_accuracy(net: Net, opts: dict, threads: int) -> None:
    """fp32: max level difference to torch fp32 on Set5 LR; bf16: Set5 PSNR-Y minus torch fp32's."""
    scale = opts["scale"]
    items = load_set("Set5", scale)
    lrs = [lr for _, _, lr in items]
    ref = process_all("upscale", opts, "torch", "fp32", lrs, threads)
    net.reference_psnr = float(np.mean([psnr_y(o, hr, scale) for o, (_, hr, _) in zip(ref, items)]))
    for backend in BACKENDS:
        if not available(backend):
            continue
        out = ref if backend == "torch" else process_all("upscale", opts, backend, "fp32", lrs, threads)
        net.accuracy[backend, "fp32"] = max_diff(out, ref)
        if backend != "onnxruntime":
            out = process_all("upscale", opts, backend, "bf16", lrs, threads)
            net.accuracy[backend, "bf16"] = float(np.mean([psnr_y(o, hr, scale) for o, (_, hr, _) in zip(out, items)])
                                                  - net.reference_psnr)


def style_images() -> list[np.ndarray]:
    """Set5 HR photos at long side 256 (area downscale)."""
    out = []
    for p in sorted((DATA / "Set5").glob("*.png")):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        f = 256 / max(img.shape[:2])
        out.append(cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA))
    return out


def output_accuracy(net: Net, fp32: Callable[[str], list[np.ndarray]], bf16: Callable[[str], list[np.ndarray]]) -> None:
    """fp32: max level difference to torch fp32; bf16: PSNR of each backend's bf16 output vs torch fp32."""
    ref = fp32("torch")
    for backend in BACKENDS:
        if not available(backend):
            continue
        net.accuracy[backend, "fp32"] = max_diff(ref if backend == "torch" else fp32(backend), ref)
        if backend != "onnxruntime":
            net.accuracy[backend, "bf16"] = float(np.mean([psnr(a, b) for a, b in zip(bf16(backend), ref)]))


# -- the faces generator (exported with latent inputs) -------------------------------------------
def faces_net(net: Net, args: argparse.Namespace) -> None:
    """Speed and accuracy of the faces generator: torch eager vs its exported graph, batch 8."""
    from gantools.backends.graphs import FORMAT, cache_root
    from gantools.device import autocast
    from gantools.export import DEFAULT_OPSET, face_exportable, save_exportable
    from gantools.nn import detect_arch

    plugin = gantools.load("faces", precision="fp32", threads=args.threads)
    plugin.ensure_setup()
    ex = face_exportable(plugin.face)
    module = ex.module.eval()
    weights = hashlib.sha256(plugin.weights_path.read_bytes()).hexdigest()
    key = hashlib.sha256(f"{weights} {torch.__version__} {DEFAULT_OPSET} {FORMAT}".encode()).hexdigest()[:24]
    file = cache_root() / f"facegan-{key}-bench.onnx"
    if not file.exists():
        save_exportable(copy.deepcopy(ex), "facegan", detect_arch(plugin.face.G.state_dict()).config, file)
    gen = torch.Generator().manual_seed(8)
    inputs = (torch.randn(FACES_BATCH, plugin.face.z_dim, generator=gen),
              torch.randint(0, plugin.face.G.num_ages, (FACES_BATCH,), generator=gen),
              torch.randint(0, plugin.face.G.num_genders, (FACES_BATCH,), generator=gen),
              torch.full((FACES_BATCH,), 0.7))
    arrays = [t.numpy() for t in inputs]
    bf16_module = copy.deepcopy(module).to(memory_format=torch.channels_last)

    def torch_call(precision: str) -> Callable[[], np.ndarray]:
        m = bf16_module if precision == "bf16" else module

        def call() -> np.ndarray:
            with torch.inference_mode(), autocast(precision, "cpu"):
                return m(*inputs).float().numpy()
        return call

    def graph_call(backend: str, precision: str) -> Callable[[], np.ndarray]:
        if backend == "onnxruntime":
            from gantools.backends.ort_backend import compile_session

            run = compile_session(file, args.threads)
        else:
            from gantools.backends.openvino_backend import compile_model

            run = compile_model(file, precision, args.threads)
        return lambda: run(arrays)[0]

    calls = {}
    for backend in BACKENDS:
        for precision in PRECISIONS:
            if not available(backend) or (backend == "onnxruntime" and precision == "bf16"):
                continue
            calls[backend, precision] = torch_call(precision) if backend == "torch" else graph_call(backend, precision)
            net.timings[backend, precision] = timed(calls[backend, precision], args.repeats, args.threads)
            report(net, backend, precision)
    with torch.inference_mode():
        net.flops = count_flops(lambda: module(*inputs))
    to8 = lambda a: [np.clip(np.rint(img * 255), 0, 255).astype(np.uint8) for img in a]  # noqa: E731
    output_accuracy(net, lambda b: to8(calls[b, "fp32"]()), lambda b: to8(calls[b, "bf16"]()))


# -- report -------------------------------------------------------------------------------------
PEAKS: list[Timing] = []


def peak() -> Timing:
    return Timing(float(np.median([p.wall for p in PEAKS])), float(np.median([p.cpu for p in PEAKS])))


def report(net: Net, backend: str, precision: str) -> None:
    t = net.timings[backend, precision]
    print(f"{net.label:22s} {backend:12s} {precision}  {net.pixels / t.wall / 1e6:7.2f} MP/s wall  "
          f"{net.pixels / t.cpu / 1e6:7.2f} MP/s cpu", flush=True)


def gflops(net: Net, t: float) -> float:
    return net.flops / t / 1e9


def fraction(net: Net, timing: Timing, kind: str) -> float:
    """Achieved GFLOP/s over the peak's, both timed under the same load (see :func:`timed`)."""
    return gflops(net, getattr(timing, kind)) / (PEAK_FLOPS / getattr(timing, f"peak_{kind}") / 1e9)


def best(net: Net) -> tuple[tuple[str, str], Timing]:
    return min(net.timings.items(), key=lambda kv: kv[1].wall)


def target(net: Net, kind: str) -> tuple[bool, str]:
    """(met, why) for issue 18's speed target, by ``kind`` (wall or cpu) times."""
    (b, p), t = best(net)
    f = fraction(net, t, kind)
    eager = net.timings.get(("torch", "bf16"))
    if f >= 0.6:
        return True, f"{b} {p} at {f:.0%} of peak"
    if eager is not None and fraction(net, eager, kind) < 0.3:
        ratio = getattr(eager, kind) / getattr(t, kind)
        return ratio >= 2, f"{b} {p} at {f:.0%} of peak, {ratio:.2f}x torch eager bf16 ({fraction(net, eager, kind):.0%})"
    return False, f"{b} {p} at {f:.0%} of peak"


def auto_table(nets: list[Net]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Per (family, precision): backends by the geometric mean of their wall speed over the family
    (a bf16 request may run on ONNX Runtime, in fp32)."""
    table = {}
    for family in dict.fromkeys(n.family for n in nets):
        members = [n for n in nets if n.family == family]
        for precision in PRECISIONS:
            scores = {}
            for backend in BACKENDS:
                p = "fp32" if backend == "onnxruntime" else precision
                times = [n.timings.get((backend, p)) for n in members]
                if all(t is not None for t in times):
                    scores[backend] = float(np.exp(np.mean([np.log(n.pixels / t.wall) for n, t in zip(members, times)])))
            table[family, precision] = tuple(sorted(scores, key=scores.get, reverse=True))
    return table


def write(nets: list[Net], args: argparse.Namespace, loads: tuple, seconds: float) -> None:
    p = peak()
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    import onnxruntime

    from gantools.backends.openvino_backend import import_openvino

    openvino = import_openvino()

    lines = [
        "# Backend speed and accuracy",
        "",
        f"`python bench/speed.py{' --quick' if args.quick else ''}` on {cpu} ({os.cpu_count()} cores), {args.threads} "
        f"threads, torch {torch.__version__}, ONNX Runtime {onnxruntime.__version__}, OpenVINO "
        f"{openvino.__version__.split('-')[0]}; {seconds / 60:.1f} min. Load average {loads[0]:.1f} at the start, "
        f"{loads[1]:.1f} at the end (1-minute averages, which lag; on {os.cpu_count()} cores, above ~1 other work "
        "shared the machine and absolute numbers are lower and noisier); compare ratios within this run. "
        "Wall = median wall-clock time per call; "
        f"CPU = median process CPU time per call / {args.threads} threads (what the cores did while we had them).",
        "",
        f"Peak: 64->64 3x3 bf16 conv (channels_last) on {PEAK_SHAPE}, torch, {args.threads} threads. Timed right "
        "after every timed network call; the % of peak columns divide the network's GFLOP/s by the median of "
        "these paired peak measurements (the load changed by the second). Alone, at 4 points of the run: " + ", ".join(f"{PEAK_FLOPS / t.wall / 1e9:.0f}" for t in PEAKS)
        + f" GFLOP/s wall (median {PEAK_FLOPS / p.wall / 1e9:.0f}); "
        + ", ".join(f"{PEAK_FLOPS / t.cpu / 1e9:.0f}" for t in PEAKS) + f" GFLOP/s CPU (median {PEAK_FLOPS / p.cpu / 1e9:.0f}). "
        "(Idle, the issue measured 872 GFLOP/s on such a 2-core AVX512-BF16 machine.)",
        "",
        "Inputs: upscale 128x128 (x4) / 192x192 (x2), styles 256x256, faces a batch of 8 latents (64x64 each). "
        "FLOPs: convolutions and matrix products of one call (FlopCounterMode). ONNX Runtime has no bf16 "
        "convolution on the CPU: its rows are fp32 (and it serves bf16 requests in fp32).",
        "",
        "| network | kFLOP/px | backend | precision | MP/s wall | GFLOP/s wall | paired peak wall | % peak wall | "
        "MP/s CPU | GFLOP/s CPU | % peak CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in nets:
        for (b, pr), t in n.timings.items():
            lines.append(f"| {n.label} | {n.flops / n.pixels / 1e3:.1f} | {b} | {pr} | {n.pixels / t.wall / 1e6:.2f} | "
                         f"{gflops(n, t.wall):.0f} | {PEAK_FLOPS / t.peak_wall / 1e9:.0f} | {fraction(n, t, 'wall'):.0%} | "
                         f"{n.pixels / t.cpu / 1e6:.2f} | {gflops(n, t.cpu):.0f} | {fraction(n, t, 'cpu'):.0%} |")
    lines += ["", "Targets (best backend >= 60 % of peak, or >= 2x torch eager bf16 where eager is below 30 %):", "",
              "| network | best (wall) | met (wall) | met (CPU) | best vs torch eager bf16 (wall) |", "|---|---|---|---|---|"]
    for n in nets:
        ok_w, why_w = target(n, "wall")
        ok_c, why_c = target(n, "cpu")
        (b, pr), t = best(n)
        eager = n.timings.get(("torch", "bf16"))
        speedup = f"{eager.wall / t.wall:.2f}x" if eager else "-"
        lines.append(f"| {n.label} | {why_w} | {'yes' if ok_w else 'no'} | {'yes' if ok_c else 'no'} ({why_c}) | {speedup} |")
    lines += ["", "Accuracy. fp32: max difference to torch fp32 in 8-bit levels (target <= 1 = 1/255). bf16: upscale, "
              "Set5 PSNR-Y minus torch fp32's (target within 0.05 dB); styles and faces, PSNR (dB) of the bf16 output "
              "against torch fp32's.", "",
              "| network | " + " | ".join(f"{b} fp32" for b in BACKENDS) + " | torch bf16 | openvino bf16 | torch fp32 PSNR-Y |",
              "|---|" + "---|" * (len(BACKENDS) + 3)]
    for n in nets:
        cells = [f"{n.accuracy[b, 'fp32']:.0f}" if (b, "fp32") in n.accuracy else "-" for b in BACKENDS]
        fmt = "{:+.3f} dB" if n.reference_psnr is not None else "{:.1f} dB"
        cells += [fmt.format(n.accuracy[b, "bf16"]) if (b, "bf16") in n.accuracy else "-" for b in ("torch", "openvino")]
        cells.append(f"{n.reference_psnr:.2f}" if n.reference_psnr is not None else "-")
        lines.append(f"| {n.label} | " + " | ".join(cells) + " |")
    table = auto_table(nets)
    lines += ["", "`--backend auto` (gantools/backends/table.py, from this run: per family and precision, backends by the "
              "geometric mean of wall MP/s over the family's networks):", "", "```python", "MEASURED = {"]
    lines += [f"    {k!r}: {v!r}," for k, v in table.items()]
    lines += ["}", "```", ""]
    if table != {k: MEASURED.get(k) for k in table}:
        lines += ["Note: the table in gantools/backends/table.py differs from this run's.", ""]
    out = Path(args.out)
    old = out.read_text() if out.exists() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""  # the written reading of the numbers is kept
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n" + notes)
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fidelity x4, one style and faces only")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start, load0 = time.time(), os.getloadavg()[0]
    PEAKS.append(conv_peak(args.threads, args.repeats))
    nets: list[Net] = []
    upscale = [u for u in UPSCALE if not args.quick or u[0] == "fidelity x4"]
    for label, opts in upscale:
        size = (192, 192) if opts["scale"] == 2 else (128, 128)
        family = load("upscale", opts, "torch", "fp32", args.threads).runner.descriptor.backend_family
        net = Net(f"upscale {label}", family, size[0] * size[1] * opts["scale"] ** 2)
        image_net(net, "upscale", opts, size, args)
        if not args.no_accuracy:
            upscale_accuracy(net, opts, args.threads)
        nets.append(net)
    PEAKS.append(conv_peak(args.threads, args.repeats))
    images = style_images() if not args.no_accuracy else []
    for style in STYLES[:1] if args.quick else STYLES:
        net = Net(f"stylize {style}", "stylenet", 256 * 256)
        image_net(net, "stylize", {"style": style}, (256, 256), args)
        if not args.no_accuracy:
            output_accuracy(net, lambda b: process_all("stylize", {"style": style}, b, "fp32", images, args.threads),
                            lambda b: process_all("stylize", {"style": style}, b, "bf16", images, args.threads))
        nets.append(net)
    PEAKS.append(conv_peak(args.threads, args.repeats))
    net = Net("faces generator", "facegan", FACES_BATCH * 64 * 64)
    faces_net(net, args)
    nets.append(net)
    PEAKS.append(conv_peak(args.threads, args.repeats))
    write(nets, args, (load0, os.getloadavg()[0]), time.time() - start)


if __name__ == "__main__":
    main()
