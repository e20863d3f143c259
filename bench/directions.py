"""Which latent directions make more distinct edits: GANSpace PCA or SeFa (:mod:`gantools.latent`)?

For each method, the ``--k`` strongest directions are applied to ``--seeds`` seeds at -1 and +1
standard deviation; ``D = image(+1) - image(-1)`` (float pixels, 0..255) is one edit. Measured:

* change / std: mean ``|D| / 2`` over pixels, directions and seeds (levels per unit step);
* mean |cos|: for each seed, the mean ``|cos(D_i, D_j)|`` over pairs of directions ``i < j``,
  averaged over seeds (0 = edits change unrelated pixels, 1 = the same edit);
* max |cos|: the largest pair value (a direction that repeats another);
* effective edits: the participation ratio of the edits' Gram matrix, per seed (``k`` for ``k``
  orthogonal edits of one size, 1 for one edit repeated): the number that decides the default;
* seconds to find the directions (4,096 mapped latents included).

More change per step and lower |cos| mean more distinct edits; the effective number combines both.

    python bench/directions.py                                   # shipped faces model -> bench/results/directions.md
    python bench/directions.py --weights runs/faces/export.safetensors --out /tmp/directions.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gantools
from gantools.latent import METHODS, SAMPLES, Directions, find_directions

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    method: str
    change: float
    mean_cos: float
    max_cos: float
    effective: float
    seconds: float
    per_direction: list[float]
    scales: list[float]


def edits(gen: object, seed: int, dirs: Directions) -> np.ndarray:
    """``(k, pixels)`` float: image(+1 std) - image(-1 std) of each direction around ``seed``."""
    w = gen.seed_w(seed)
    k = len(dirs.vectors)
    ws = np.stack([w + dirs.offset(i, a) for i in range(k) for a in (-1.0, 1.0)])
    imgs = np.stack(gen.render_w(ws)).astype(np.float64).reshape(k, 2, -1)
    return imgs[:, 1] - imgs[:, 0]


def measure(gen: object, method: str, k: int, seeds: range) -> Row:
    t0 = time.perf_counter()
    dirs = find_directions(gen, k, method)
    seconds = time.perf_counter() - t0
    change, cos, eff = np.zeros((len(seeds), k)), [], []
    for n, seed in enumerate(seeds):
        d = edits(gen, seed, dirs)
        change[n] = np.abs(d).mean(1) / 2
        unit = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        cos.append(np.abs(unit @ unit.T)[np.triu_indices(k, 1)])
        eff.append(effective_count(d))
    cos_all = np.stack(cos)
    return Row(method, float(change.mean()), float(cos_all.mean()), float(cos_all.max()), float(np.mean(eff)),
               seconds, change.mean(0).tolist(), dirs.scales.tolist())


def effective_count(d: np.ndarray) -> float:
    """Participation ratio ``(sum l)^2 / sum l^2`` of the eigenvalues ``l`` of the edits' Gram matrix
    ``D D^T``: ``k`` for ``k`` orthogonal edits of equal size, 1 when they are all one edit (or one
    edit dwarfs the others)."""
    g = d @ d.T
    return float(np.trace(g) ** 2 / np.sum(g * g))


def markdown(rows: list[Row], args: argparse.Namespace, model: str) -> str:
    best = pick(rows)
    lines = [
        "# Latent directions: GANSpace PCA vs SeFa",
        "",
        f"`python bench/directions.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` | "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC | model {model} | fp32, 1 thread",
        "",
        f"{args.k} strongest directions of each method; edits D = image(+1 std) - image(-1 std) around seeds "
        f"0..{args.seeds - 1} (truncation 1.0, labels drawn as `gantools generate` draws them); scales from "
        f"{SAMPLES} mapped latents. change / std = mean |D| / 2 in pixel levels (0..255); |cos| = cosine "
        "similarity of the edits of two directions on the same seed (lower = more distinct); effective edits = "
        "participation ratio of the edits' Gram matrix (counts both size and overlap); seconds = wall time "
        "(sampling included), indicative only on a shared machine.",
        "",
        "| method | change / std | mean \\|cos\\| | max \\|cos\\| | effective edits | seconds to find |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.method} | {r.change:.2f} | {r.mean_cos:.3f} | {r.max_cos:.3f} | {r.effective:.2f} | "
              f"{r.seconds:.2f} |" for r in rows]
    lines += ["", "Per direction (0 = strongest): change / std, and the direction's std in W", "",
              "| method | " + " | ".join(str(i) for i in range(args.k)) + " |", "|---|" + "---|" * args.k]
    for r in rows:
        lines.append(f"| {r.method} change | " + " | ".join(f"{x:.2f}" for x in r.per_direction) + " |")
        lines.append(f"| {r.method} std | " + " | ".join(f"{x:.2f}" for x in r.scales) + " |")
    others = ", ".join(f"{r.method} {r.effective:.2f}" for r in rows if r is not best)
    lines += ["", f"Default of `gantools generate --directions`: **{best.method}**, the most distinct edits by "
              f"the effective number of edits ({best.effective:.2f} of {args.k}; {others}). Mean |cos| alone "
              f"favours {min(rows, key=lambda r: r.mean_cos).method}, change / std alone "
              f"{max(rows, key=lambda r: r.change).method}.", ""]
    return "\n".join(lines)


def pick(rows: list[Row]) -> Row:
    """The method with the most distinct edits: the highest effective number of edits (it counts
    both how large the edits are and how little they overlap)."""
    return max(rows, key=lambda r: r.effective)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="faces export (default: the shipped model)")
    ap.add_argument("--k", type=int, default=8, help="directions per method")
    ap.add_argument("--seeds", type=int, default=16, help="seeds 0..N-1")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "directions.md"), help="markdown report path")
    args = ap.parse_args(argv)
    gen = gantools.load("faces", weights=args.weights, precision="fp32", threads=1)
    gen.ensure_setup()
    rows = [measure(gen, m, args.k, range(args.seeds)) for m in METHODS]
    print(f"{'method':8} {'change/std':>10} {'mean|cos|':>10} {'max|cos|':>9} {'effective':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r.method:8} {r.change:10.2f} {r.mean_cos:10.3f} {r.max_cos:9.3f} {r.effective:9.2f} {r.seconds:8.2f}")
    model = f"`{args.weights}`" if args.weights else "shipped `faces` default (`weights/faces-64.safetensors`)"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, args, model))
    print(f"wrote {out}; default: {pick(rows).method}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
