"""Training speed, fp32 vs bf16, of the SR, style and face networks through the real engine.

Each task trains for ``--steps`` steps from the same seed on the real data in ../shared/data,
once in fp32 and once in bf16 (+ channels_last); the table gives steps/s and images/s of the
training step (data loading excluded: it runs ahead in worker threads) and the mean generator
loss of both runs over the last half of the steps (bf16 must not diverge from fp32).

    python bench/train_speed.py                # writes bench/results/train_speed.md
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from gantools.train.api import make_config, run_training

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

#: task -> (engine settings, task options)
TASKS: dict[str, tuple[dict, dict]] = {
    "upscale": ({"data": [str(DATA / "sr" / "train")]}, {"scale": 4, "num_feat": 64, "num_conv": 12}),
    "upscale-photo": ({"data": [str(DATA / "sr" / "train")]}, {"scale": 4, "mode": "photo", "num_feat": 64, "num_conv": 12}),
    "stylize": ({}, {"style_images": [str(DATA / "style" / "paintings" / "starry_night.jpg")],
                     "content": [str(DATA / "style" / "monet2photo" / "photo")]}),
    "faces": ({"data": [str(DATA / "faces")]}, {}),
}


def measure(task: str, precision: str, steps: int, threads: int) -> dict:
    engine, opts = TASKS[task]
    name = task.split("-")[0]
    with tempfile.TemporaryDirectory() as out:
        cfg = make_config(name, out=out, steps=steps, precision=precision, threads=threads, seed=1,
                          log_every=1, sample_every=10**9, checkpoint_every=10**9, checkpoint_minutes=10**6,
                          task_options=opts, **engine)
        res = run_training(cfg, log=lambda m: None)
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    warm = rows[2:]  # first steps include one-off allocation and kernel selection
    g_keys = [k for k in rows[0] if k.startswith("g_")]
    half = rows[len(rows) // 2 :]
    return {
        "images_per_s": float(np.mean([r["images_per_s"] for r in warm])),
        "steps_per_s": float(np.mean([r["images_per_s"] for r in warm])) / cfg.batch_size,
        "batch": cfg.batch_size,
        "g_loss": float(np.mean([sum(r[k] for k in g_keys) for r in half])),
        "g_loss_std": float(np.std([sum(r[k] for k in g_keys) for r in half])),
        "steps": res.step,
    }


def cpu_description() -> str:
    """CPU model and which bf16 instructions it has (AMX, AVX512-BF16 or none), from /proc/cpuinfo."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    kind = "AMX" if "amx_bf16" in flags else "AVX512-BF16, no AMX" if "avx512_bf16" in flags else "no bf16 instructions"
    return f"{model} ({kind})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_speed.md"))
    args = ap.parse_args()
    lines = [
        "# Training speed: fp32 vs bf16",
        "",
        f"`python bench/train_speed.py --steps {args.steps} --threads {args.threads}` on "
        f"{cpu_description()}, torch {torch.__version__}. Steps/s of the training step "
        "(G and D forward/backward, optimiser, EMA; data loading runs ahead in threads). "
        "Loss: mean total generator loss over the second half of the steps (± std), same seed and batches.",
        "",
        "| network | batch | fp32 steps/s | bf16 steps/s | speed-up | fp32 G loss | bf16 G loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks.split(","):
        fp32 = measure(task, "fp32", args.steps, args.threads)
        bf16 = measure(task, "bf16", args.steps, args.threads)
        row = (f"| {task} | {fp32['batch']} | {fp32['steps_per_s']:.2f} | {bf16['steps_per_s']:.2f} | "
               f"{bf16['steps_per_s'] / fp32['steps_per_s']:.2f}x | {fp32['g_loss']:.4f} ± {fp32['g_loss_std']:.4f} | "
               f"{bf16['g_loss']:.4f} ± {bf16['g_loss_std']:.4f} |")
        print(row, flush=True)
        lines.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
