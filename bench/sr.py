"""Super-resolution benchmark: quality (PSNR/SSIM on Y), speed and peak memory, side by side.

Protocol (the SR literature's): HR cropped to a multiple of the scale; LR = Pillow bicubic
downscale; PSNR and SSIM on Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (R, G, B in
0..255), ``scale`` pixels shaved from each border; Set5 and Set14 from ../shared/data/sr/bench.
Methods: bicubic (Pillow), OpenCV dnn_superres FSRCNN and ESPCN (peer models in
../shared/peers, run by bench/sr_peers.py under an interpreter with opencv-contrib), and the
gantools models: shipped ones (``upscale --model``) and any ``--weights`` files.

    python bench/sr.py --peer-python .venv-bench/bin/python            # writes bench/results/sr.md
    python bench/sr.py --weights runs/sr/export.safetensors --out /tmp/sr.md --no-memory
    python bench/sr.py --realworld      # only the real-world x4 section of sr.md (bench/sr_realworld.py)
    python bench/sr.py --realworld --scale 2      # only the real-world x2 section

``--realworld`` scores degraded held-out photos (PSNR-Y vs the clean original, NIQE, texture ratio,
PSNR-Y to Real-ESRGAN x4plus's output, output MP/s) for bicubic, the shipped fidelity and photo
models, the official Real-ESRGAN x4plus when pulled (``gantools models pull realesrgan``), OpenCV
FSRCNN (peer interpreter) and one bf16 row per ``--weights`` file, then judges photo and each
``--weights`` row against x4plus (the distillation targets); it rewrites only its own section of
``--out``, and the bicubic-protocol table above keeps that section when it is rewritten.
``--realworld --scale 2`` writes the x2 section beside it: the same photos and pipeline with a 2x
downscale, the shipped x2 models (fidelity; photo once shipped), x4plus's output area-downscaled by 2
as the teacher (the distillation target of ``gantools train upscale --mode distill``), FSRCNN x2 and the
x2 ``--weights`` files (others skipped with a note).

    python bench/sr.py --realworld --weights runs/distill/export.safetensors --realesrgan-limit 5 --out /tmp/rw.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from kornia.metrics import ssim
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sr" / "bench"
PEERS = ROOT.parent / "shared" / "peers" / "opencv-dnn-superres"
REALWORLD_HEADING = "## Real-world"  # bench/sr_realworld.py's sections of sr.md (x4, x2), kept by _write


def y_channel(bgr: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [16, 235] as float64, from a BGR uint8 image."""
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr_ssim_y(sr: np.ndarray, hr: np.ndarray, shave: int) -> tuple[float, float]:
    ys, yh = y_channel(sr), y_channel(hr)
    if shave:
        ys, yh = ys[shave:-shave, shave:-shave], yh[shave:-shave, shave:-shave]
    mse = np.mean((ys - yh) ** 2)
    psnr = 10 * np.log10(255.0**2 / mse)
    t = lambda a: torch.from_numpy(a).float()[None, None]  # noqa: E731
    s = ssim(t(ys), t(yh), 11, max_val=255.0, padding="valid").mean().item()
    return float(psnr), float(s)


def load_set(name: str, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR BGR cropped to a multiple of scale, LR BGR by Pillow bicubic)."""
    out = []
    for p in sorted((DATA / name).glob("*.png")):
        rgb = np.asarray(Image.open(p).convert("RGB"))
        h, w = rgb.shape[0] - rgb.shape[0] % scale, rgb.shape[1] - rgb.shape[1] % scale
        rgb = rgb[:h, :w]
        lr = np.asarray(Image.fromarray(rgb).resize((w // scale, h // scale), Image.BICUBIC))
        out.append((p.name, np.ascontiguousarray(rgb[:, :, ::-1]), np.ascontiguousarray(lr[:, :, ::-1])))
    return out


def bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    h, w = lr.shape[:2]
    rgb = Image.fromarray(np.ascontiguousarray(lr[:, :, ::-1])).resize((w * scale, h * scale), Image.BICUBIC)
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def speed(fn, img: np.ndarray, repeats: int) -> float:
    """Output megapixels per second of ``fn`` on ``img`` (after one warm-up call)."""
    out = fn(img)
    t = time.perf_counter()
    for _ in range(repeats):
        out = fn(img)
    dt = (time.perf_counter() - t) / repeats
    return out.shape[0] * out.shape[1] / dt / 1e6


def peak_memory(spec: dict, path: str, threads: int) -> float:
    """Peak RSS (MB) of a fresh process upscaling ``path`` with the gantools plugin ``spec``."""
    code = (
        "import json,resource,sys,cv2,gantools;"
        "spec=json.loads(sys.argv[1]);p=gantools.load('upscale',**spec);"
        "img=cv2.imread(sys.argv[2]);out=p.process(img);"
        "print(json.dumps({'peak_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,'out_mb':out.nbytes/2**20}))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([sys.executable, "-c", code, json.dumps(spec), path], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    return json.loads(res.stdout)


#: precisions benchmarked per shipped model name (fast is narrow: it runs fp32, see gantools/nn/srvgg.py)
PRECISIONS = {"fidelity": ["fp32", "bf16"], "fast": ["fp32"]}


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, computed from this run's rows (x4)."""
    by = {r["method"]: r for r in rows if r["scale"] == 4}
    fast = next((r for m, r in by.items() if m.startswith("gantools fast x4")), None)
    fsrcnn = by.get("OpenCV FSRCNN")
    out = []
    if fast and fsrcnn and "Set5" in fast:
        ratio = fast["mp_s"] / fsrcnn["mp_s"]
        ok = fast["Set5"][0] >= 31.0 and ratio >= 1.0
        out.append(f"- `fast` x4: Set5 {fast['Set5'][0]:.2f} dB (target >= 31.0) at {fast['mp_s']:.1f} vs FSRCNN "
                   f"{fsrcnn['mp_s']:.1f} MP/s = {ratio:.2f}x (target >= 1.0x): {'met' if ok else 'NOT met'}.")
    fid = by.get("gantools fidelity x4 (bf16)")
    if fid and fsrcnn:
        out.append(f"- `fidelity` x4 (bf16): Set5 {fid['Set5'][0]:.2f} dB at {fid['mp_s'] / fsrcnn['mp_s']:.2f}x FSRCNN's MP/s.")
    return ["", "Targets (this run):", ""] + out if out else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="4,2")
    ap.add_argument("--weights", nargs="*", default=[], help="extra gantools/third-party weights to compare")
    ap.add_argument("--no-shipped", action="store_true", help="skip shipped models")
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-bench" / "bin" / "python"),
                    help="interpreter with opencv-contrib-python-headless (for FSRCNN/ESPCN)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true", help="skip the 4000x3000 peak-memory runs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sr.md"))
    ap.add_argument("--realworld", action="store_true", help="run only the real-world table (its own section)")
    ap.add_argument("--scale", type=int, choices=(2, 4), default=4, help="real-world table: x4 (default) or x2")
    ap.add_argument("--realesrgan-limit", type=int, default=None,
                    help="real-world table: images per set for Real-ESRGAN x4plus (slow on CPU; default all)")
    args = ap.parse_args()
    if args.scale != 4 and not args.realworld:
        ap.error("--scale is for --realworld; the bicubic-protocol table takes --scales")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.realworld:
        realworld(args)
        return
    import gantools
    from gantools.weights import shipped

    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="gantools-srbench-"))
    rng = np.random.default_rng(0)
    speed_lr = cv2.GaussianBlur((rng.random((256, 256, 3)) * 255).astype(np.uint8), (0, 0), 2)
    big = tmp / "big.png"
    cv2.imwrite(str(big), cv2.resize(speed_lr, (4000, 3000), interpolation=cv2.INTER_CUBIC))
    for scale in [int(s) for s in args.scales.split(",")]:
        sets = {name: load_set(name, scale) for name in ("Set5", "Set14")}
        methods: dict[str, tuple] = {"bicubic (Pillow)": (lambda im, s=scale: bicubic_up(im, s), None)}
        specs: list[tuple[str, dict]] = []
        if not args.no_shipped:
            for m in shipped("upscale", scale=scale):
                for prec in PRECISIONS.get(m.name, ["bf16"]):
                    specs.append((f"gantools {m.name} x{scale} ({prec})", {"model": m.name, "scale": scale, "precision": prec, "threads": args.threads}))
        for w in args.weights:
            for prec in ("fp32", "bf16"):
                specs.append((f"{Path(w).parent.name or w} ({prec})", {"weights": w, "precision": prec, "threads": args.threads}))
        for label, spec in specs:
            try:
                plugin = gantools.load("upscale", **spec)
            except Exception as exc:  # e.g. --weights of another scale
                print(f"skip {label}: {exc}", file=sys.stderr)
                continue
            if plugin.scale != scale:
                continue
            methods[label] = (plugin.process, spec)
        peer = _run_peers(args, scale, sets, tmp, speed_lr, big)
        for label, (fn, spec) in methods.items():
            row = {"scale": scale, "method": label}
            for name, items in sets.items():
                scores = [psnr_ssim_y(fn(lr), hr, scale) for _, hr, lr in items]
                row[name] = tuple(np.mean(scores, axis=0))
            row["mp_s"] = speed(fn, speed_lr, args.repeats)
            if spec is not None and not args.no_memory and scale == 4:
                row.update(peak_memory(spec, str(big), args.threads))
            rows.append(row)
            _print_row(row)
        for algo, res in peer.items():
            row = {"scale": scale, "method": f"OpenCV {algo.upper()}", "mp_s": res["mp_per_s"]}
            if "peak_mb" in res:
                row["peak_mb"] = res["peak_mb"]
            for name, items in sets.items():
                scores = [psnr_ssim_y(cv2.imread(str(tmp / f"x{scale}" / algo / f"{name}_{n}")), hr, scale) for n, hr, _ in items]
                row[name] = tuple(np.mean(scores, axis=0))
            rows.append(row)
            _print_row(row)
    _write(rows, args)


def _threads(n: int, kind: str = "") -> str:
    """``"1 thread"``, ``"2 CPU threads"``: the thread count as the tables' intros say it."""
    return f"{n} {kind}thread{'s' if n != 1 else ''}"


def _teacher_name(scale: int) -> str:
    """The teacher's short name in the real-world table's column and target lines."""
    return "x4plus" if scale == 4 else f"x4plus /{4 // scale}"


def realworld(args) -> None:
    """The real-world section of ``args.scale`` (see bench/sr_realworld.py): run, print, write into ``args.out``."""
    import platform

    import sr_realworld as rw
    from niqe import pristine_params

    scale, short = args.scale, _teacher_name(args.scale)
    items = [(name, n, hr) for name in ("Set5", "Set14") for n, hr, _ in load_set(name, scale)]
    lrs = rw.degraded(items, scale)
    notes: list[str] = []
    methods, teacher, candidates, limits = _rw_methods(args, lrs, notes)
    rows = rw.run(methods, items, lrs, psnr_ssim_y, methods["bicubic (Pillow)"], limits, pristine_params(), teacher)
    keys = [(s, n) for s, n, _ in items]
    text = [rw.heading(scale), "", rw_intro(args, platform.processor() or platform.machine()), "",
            *rw.table(rows, keys, short)]
    for label, limit in limits.items():
        sub = [k for k in keys if k in next(r for r in rows if r.method == label).scores]
        if len(sub) < len(keys):
            text += ["", f"Every method on the {len(sub)} images {label} ran on (first {limit} of each set):", "",
                     *rw.table(rows, sub, short)]
    judged = rw.targets(rows, candidates, teacher, short) if teacher else []
    if judged:
        text += ["", f"Targets (this run; each gantools row against {teacher} on the images both ran on: NIQE and "
                     f"texture ratio no higher, PSNR-Y no lower, output MP/s >= {rw.MIN_SPEEDUP:g}x, strictly better "
                     "on at least one of the three):", "", *judged]
    elif candidates:
        notes.append("Targets not judged: Real-ESRGAN x4plus did not run.")
    else:
        notes.append(f"Targets not judged: no candidate row (no gantools photo x{scale}, no `--weights` of x{scale}).")
    text += ["", *notes] if notes else []
    out = Path(args.out)
    rw.write_section(out, "\n".join(text) + "\n", scale)
    print("\n".join(text))
    print(f"wrote {out} (section {rw.heading(scale)!r})")


def _rw_methods(args, lrs: dict, notes: list[str]) -> tuple[dict, str | None, list[str], dict[str, int]]:
    """Real-world methods ``{label: fn}`` at ``args.scale`` in table order (bicubic, shipped fidelity and photo
    where shipped at that scale, Real-ESRGAN x4plus when pulled (x2: its output area-downscaled by 2), OpenCV
    FSRCNN on ``lrs`` when the peer interpreter exists, one row per ``--weights`` file of that scale; gantools rows
    bf16 with ``args.threads``), the teacher's label (None when not pulled), the labels judged against it (photo
    and the ``--weights`` rows) and per-method image limits; skipped methods add a line to ``notes``."""
    import gantools
    import sr_realworld as rw
    from gantools.weights import shipped

    def ready(**spec):  # weights loaded before the clock starts
        plugin = gantools.load("upscale", precision="bf16", threads=args.threads, **spec)
        plugin.ensure_setup()
        return plugin

    scale = args.scale
    methods = {"bicubic (Pillow)": lambda im: bicubic_up(im, scale)}
    names, missing = rw.gantools_models(scale, {m.name for m in shipped("upscale", scale=scale)})
    for name in names:
        methods[f"gantools {name} x{scale} (bf16)"] = ready(model=name, scale=scale).process
    notes += missing
    candidates = [f"gantools {m} x{scale} (bf16)" for m in rw.JUDGED_MODELS if m in names]
    teacher, limits = _rw_teacher(ready, scale, methods, notes), {}
    if teacher and args.realesrgan_limit is not None:
        limits[teacher] = args.realesrgan_limit
    with tempfile.TemporaryDirectory(prefix="gantools-srbench-rw-") as tmp:
        fsrcnn = _rw_fsrcnn(args, lrs, Path(tmp), notes)
    if fsrcnn is not None:
        methods["OpenCV FSRCNN"] = fsrcnn
    for w in args.weights:
        label = f"{Path(w).parent.name}/{Path(w).name} (bf16)"
        try:
            plugin = ready(weights=w)
        except Exception as exc:  # unreadable file, unknown architecture, ...
            notes.append(f"{label} skipped: {exc}")
            print(f"skip {label}: {exc}", file=sys.stderr)
            continue
        if plugin.scale != scale:
            notes.append(f"{label} skipped: x{plugin.scale}, this table is x{scale}.")
            print(f"skip {label}: x{plugin.scale}", file=sys.stderr)
            continue
        methods[label] = plugin.process
        candidates.append(label)
    return methods, teacher, candidates, limits


def _rw_teacher(ready, scale: int, methods: dict, notes: list[str]) -> str | None:
    """Add Real-ESRGAN x4plus (loaded by ``ready``) to ``methods`` as the teacher and return its label; at x2 its
    output is area-downscaled by 2 (:func:`sr_realworld.reduced_teacher`). None (and a note) when not pulled."""
    import sr_realworld as rw
    from gantools import models

    try:
        models.path(models.find("upscale", name="realesrgan", scale=4)[0])
    except models.NotInstalled as exc:
        notes.append(f"Real-ESRGAN x4plus skipped: {exc}.")
        print(f"skip Real-ESRGAN x4plus: {exc}", file=sys.stderr)
        return None
    plugin = ready(model="realesrgan")
    if scale == 4:
        label, fn = "Real-ESRGAN x4plus (official, ncnn files; bf16)", plugin.process
    else:
        label = f"Real-ESRGAN x4plus + area /{4 // scale} (official, ncnn files; bf16)"
        fn = rw.reduced_teacher(plugin, scale)
    methods[label] = fn
    return label


def _rw_fsrcnn(args, lrs: dict, tmp: Path, notes: list[str]):
    """OpenCV FSRCNN at ``args.scale`` on the degraded inputs, in the peer interpreter (bench/sr_peers.py,
    per-image wall times), as :class:`sr_realworld.Precomputed`; None (and a note) when the interpreter is missing."""
    import sr_realworld as rw

    if not Path(args.peer_python).exists():
        notes.append(f"OpenCV FSRCNN skipped: no peer interpreter {args.peer_python} "
                     "(a venv with opencv-contrib-python-headless).")
        print(f"skip OpenCV FSRCNN: {args.peer_python} not found", file=sys.stderr)
        return None
    (tmp / "lr").mkdir()
    names = {}
    for (s, n), lr in lrs.items():
        names[s, n] = f"{s}_{Path(n).stem}.png"
        cv2.imwrite(str(tmp / "lr" / names[s, n]), lr)
    job = {"models": str(PEERS), "scale": args.scale, "threads": args.threads, "out": str(tmp), "algos": ["fsrcnn"],
           "timed": True, "inputs": [str(tmp / "lr" / f) for f in names.values()]}
    res = subprocess.run([args.peer_python, str(ROOT / "bench" / "sr_peers.py")], input=json.dumps(job),
                         capture_output=True, text=True)
    if res.returncode:
        why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        notes.append(f"OpenCV FSRCNN skipped: the peer failed: {why}")
        print(f"skip OpenCV FSRCNN: {why}", file=sys.stderr)
        return None
    seconds = json.loads(res.stdout)["fsrcnn"]["seconds"]
    return rw.Precomputed({k: (cv2.imread(str(tmp / "fsrcnn" / f)), seconds[f]) for k, f in names.items()})


def _shown(path: str) -> str:
    """``path`` relative to the repository when inside it, else as given."""
    p = Path(path).absolute()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else path


def rw_intro(args, cpu: str) -> str:
    """The real-world section's first paragraph at ``args.scale``: protocol, metrics, machine."""
    import sr_realworld as rw

    scale, short = args.scale, _teacher_name(args.scale)
    command = "--realworld" if scale == 4 else f"--realworld --scale {scale}"
    same = "" if scale == 4 else " (blur, noise and JPEG as in the x4 table; only the downscale follows the scale)"
    reduced = "" if scale == 4 else (f" area-downscaled by {4 // scale} (cv2.INTER_AREA by gantools_upscale.distill, "
                                     f"the x{scale} target of `gantools train upscale --mode distill`)")
    return (f"`python bench/sr.py {command}` on {cpu}, {_threads(args.threads)}, torch {torch.__version__}. "
            f"Set5 + Set14 (never trained on), HR cropped to a multiple of {scale}, degraded by one fixed pipeline{same}: "
            f"Gaussian blur sigma {rw.BLUR_SIGMA}, {scale}x area downscale, Gaussian noise sigma {rw.NOISE_SIGMA}/255 "
            f"(seed 1000 + image index), JPEG q{rw.JPEG_Q}. PSNR-Y (dB) against the clean original, 4 px shaved; NIQE "
            "(Mittal et al. 2013, bench/niqe.py with BasicSR 1.4.2's pristine parameters; lower is more natural; 4 px "
            "shaved); texture ratio: sliced Wasserstein distance (64 directions) between 8x8 patches (stride 4) of "
            "band-pass luminance (grey minus Gaussian blur sigma 1.5) of the output and of the clean photo, over the "
            "same for bicubic (below 1: closer to the photo's texture than bicubic). PSNR-Y to "
            f"{short}: PSNR-Y (4 px shaved) between the method's output and Real-ESRGAN x4plus's output{reduced} on the "
            "same image, mean over the images x4plus ran on (how closely a distilled student follows its teacher). "
            "gantools rows (shipped models and `--weights` files, labelled folder/file) run bf16 in this process; "
            f"OpenCV FSRCNN x{scale} (dnn_superres) runs in `{_shown(args.peer_python)}` "
            f"via bench/sr_peers.py with the same threads. Output MP/s: output pixels / wall time of the upscale calls "
            f"over the table's images ({_threads(args.threads, 'CPU ')}, weights loaded and FSRCNN warmed up before the clock "
            f"starts; load average at the end {os.getloadavg()[0]:.1f} on a shared machine: compare speeds within one "
            "run). Means over images.")


def _run_peers(args, scale: int, sets: dict, tmp: Path, speed_lr: np.ndarray, big: Path) -> dict:
    if not Path(args.peer_python).exists():
        print(f"skip OpenCV peers: {args.peer_python} not found (make a venv with opencv-contrib-python-headless)", file=sys.stderr)
        return {}
    lr_dir = tmp / f"x{scale}" / "lr"
    lr_dir.mkdir(parents=True, exist_ok=True)
    inputs = []
    for name, items in sets.items():
        for n, _, lr in items:
            p = lr_dir / f"{name}_{n}"
            cv2.imwrite(str(p), lr)
            inputs.append(str(p))
    speed_path = tmp / "speed.png"
    cv2.imwrite(str(speed_path), speed_lr)
    job = {"models": str(PEERS), "scale": scale, "threads": args.threads, "inputs": inputs, "out": str(tmp / f"x{scale}"),
           "speed_input": str(speed_path), "repeats": args.repeats,
           "memory_input": str(big) if (scale == 4 and not args.no_memory) else None}
    res = subprocess.run([args.peer_python, str(ROOT / "bench" / "sr_peers.py")], input=json.dumps(job),
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def _fmt(row: dict, key: str) -> str:
    v = row.get(key)
    return f"{v[0]:.2f} / {v[1]:.4f}" if v else "-"


def _print_row(row: dict) -> None:
    mem = f"{row['peak_mb']:.0f} MB" if "peak_mb" in row else "-"
    print(f"x{row['scale']} {row['method']:40s} Set5 {_fmt(row, 'Set5')}  Set14 {_fmt(row, 'Set14')}  {row['mp_s']:.1f} MP/s  {mem}", flush=True)


def _write(rows: list[dict], args) -> None:
    import platform

    lines = [
        "# Super-resolution benchmark",
        "",
        f"`python bench/sr.py` on {platform.processor() or platform.machine()}, {_threads(args.threads)}, torch {torch.__version__}, "
        f"OpenCV peers via `{Path(args.peer_python).name}`. PSNR (dB) / SSIM on Y, `scale` px shaved; LR by Pillow bicubic. "
        "Speed: output megapixels per second upscaling a 256x256 image (plugin call, conversion included). "
        "Peak memory: max RSS of a fresh process upscaling a 4000x3000 image x4 (output alone: 549 MB). "
        f"Load average at the end: {os.getloadavg()[0]:.1f} (2 cores; compare speeds within this run).",
        "",
        "| scale | method | Set5 PSNR / SSIM | Set14 PSNR / SSIM | output MP/s | peak RSS 4000x3000 x4 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem = f"{r['peak_mb']:.0f} MB" if "peak_mb" in r else "-"
        lines.append(f"| x{r['scale']} | {r['method']} | {_fmt(r, 'Set5')} | {_fmt(r, 'Set14')} | {r['mp_s']:.1f} | {mem} |")
    lines += targets(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    old = Path(args.out).read_text() if Path(args.out).exists() else ""
    kept = old[old.index(REALWORLD_HEADING):] if REALWORLD_HEADING in old else ""  # the --realworld section
    Path(args.out).write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
