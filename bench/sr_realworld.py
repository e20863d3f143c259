"""Real-world x4 table of ``bench/sr.py --realworld``: degraded held-out photos, judged like the field.

Inputs: Set5 + Set14 (../shared/data/sr/bench, never trained on), HR cropped to a multiple of 4,
degraded by one fixed pipeline with a fixed seed per image (:func:`degrade_fixed`: the primitives of
``gantools_upscale.degrade``, with fixed parameters). Columns, per method and averaged per image:

- PSNR-Y (dB) against the clean original (BT.601 Y, 4 px shaved), as in the bicubic table;
- NIQE (:mod:`niqe`, Mittal et al. with BasicSR's pristine parameters; lower is more natural);
- texture ratio: sliced Wasserstein distance between 8x8 patches of band-pass luminance (grey minus
  its Gaussian blur, sigma 1.5) of the output and of the clean photo, divided by the same distance
  for bicubic (:func:`texture_ratio`; below 1: texture statistics closer to the photo's than bicubic);
- output MP/s: output pixels over the method's wall time on these images (conversion included).

Real-ESRGAN x4plus (the official model, pulled by ``gantools models pull realesrgan``) is skipped
with a note when not pulled; it is slow on CPU (16.7M parameters), so ``--realesrgan-limit`` caps
how many images of each set it runs on, and a second table compares every method on those images.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

import niqe as niqe_mod

SCALE, SHAVE, PATCH, STRIDE, DIRECTIONS = 4, 4, 8, 4, 64
HEADING = "## Real-world x4: degraded held-out photos"
BLUR_SIGMA, NOISE_SIGMA, JPEG_Q = 1.2, 5.0, 75


def degrade_fixed(hr_bgr: np.ndarray, seed: int) -> np.ndarray:
    """Blur (isotropic Gaussian, sigma 1.2), 4x area downscale, Gaussian noise (sigma 5/255, seeded), JPEG q75."""
    from gantools_upscale.degrade import gaussian_kernel, jpeg

    rgb = cv2.cvtColor(hr_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    img = cv2.filter2D(rgb, -1, gaussian_kernel(13, BLUR_SIGMA, BLUR_SIGMA, 0.0), borderType=cv2.BORDER_REFLECT_101)
    h, w = img.shape[:2]
    img = cv2.resize(img, (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    img = np.clip(img + rng.normal(0.0, NOISE_SIGMA / 255.0, img.shape).astype(np.float32), 0.0, 1.0)
    img = jpeg(img, rng, (JPEG_Q, JPEG_Q))
    return cv2.cvtColor(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def band_patches(bgr: np.ndarray) -> np.ndarray:
    """``(n, 64)`` 8x8 patches (stride 4, border shaved) of grey minus its Gaussian blur (sigma 1.5)."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)[SHAVE:-SHAVE, SHAVE:-SHAVE]
    band = grey - cv2.GaussianBlur(grey, (0, 0), 1.5)
    win = np.lib.stride_tricks.sliding_window_view(band, (PATCH, PATCH))[::STRIDE, ::STRIDE]
    return win.reshape(-1, PATCH * PATCH)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int = DIRECTIONS, seed: int = 0) -> float:
    """Mean over fixed random unit directions of the 1-D Wasserstein-1 distance of the projections (equal counts)."""
    if len(a) != len(b):
        raise ValueError(f"sliced Wasserstein needs equal sample counts, got {len(a)} and {len(b)}")
    d = np.random.default_rng(seed).normal(size=(a.shape[1], directions))
    d /= np.linalg.norm(d, axis=0, keepdims=True)
    pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def texture_ratio(out: np.ndarray, hr: np.ndarray, bicubic: np.ndarray) -> float:
    """SWD(output, photo) / SWD(bicubic, photo) on band-pass luminance patches."""
    ref = band_patches(hr)
    return sliced_wasserstein(band_patches(out), ref) / sliced_wasserstein(band_patches(bicubic), ref)


@dataclass
class Row:
    """One method: per-image scores ``{(set, image): (psnr, niqe, texture)}`` and its timing."""

    method: str
    scores: dict[tuple[str, str], tuple[float, float, float]] = field(default_factory=dict)
    pixels: int = 0
    seconds: float = 0.0

    def mean(self, keys: list[tuple[str, str]]) -> tuple[float, float, float] | None:
        got = [self.scores[k] for k in keys if k in self.scores]
        return tuple(np.mean(got, axis=0)) if got else None  # type: ignore[return-value]


Method = Callable[[np.ndarray], np.ndarray]


def run(methods: dict[str, Method], items: list[tuple[str, str, np.ndarray]], psnr_y: Callable, bicubic: Method,
        limits: dict[str, int], params: dict) -> list[Row]:
    """Score every method on ``items`` ``(set, image, HR BGR)``; ``limits[method]`` caps images per set."""
    lrs = {(s, n): degrade_fixed(hr, seed=1000 + i) for i, (s, n, hr) in enumerate(items)}
    bicubics = {k: bicubic(lr) for k, lr in lrs.items()}
    rows = []
    for label, fn in methods.items():
        row, seen = Row(label), {}
        for s, n, hr in items:
            seen[s] = seen.get(s, 0) + 1
            if seen[s] > limits.get(label, len(items)):
                continue
            t = time.perf_counter()
            out = fn(lrs[s, n])
            row.seconds += time.perf_counter() - t
            row.pixels += out.shape[0] * out.shape[1]
            row.scores[s, n] = (psnr_y(out, hr, SHAVE)[0], niqe_mod.niqe(out, params, SHAVE),
                                texture_ratio(out, hr, bicubics[s, n]))
            print(f"  {label}: {s}/{n} PSNR-Y {row.scores[s, n][0]:.2f} NIQE {row.scores[s, n][1]:.2f} "
                  f"texture {row.scores[s, n][2]:.3f}", flush=True)
        rows.append(row)
    original = Row("clean original (reference)")
    original.scores = {(s, n): (float("nan"), niqe_mod.niqe(hr, params, SHAVE), 0.0) for s, n, hr in items}
    return rows + [original]


def table(rows: list[Row], keys: list[tuple[str, str]]) -> list[str]:
    """Markdown lines of one table: per set PSNR-Y / NIQE / texture, then output MP/s."""
    sets = sorted({s for s, _ in keys}, key=lambda s: ("Set5", "Set14").index(s) if s in ("Set5", "Set14") else 9)
    head = "| method | " + " | ".join(f"{s} PSNR-Y / NIQE / texture" for s in sets) + " | output MP/s |"
    lines = [head, "|---" * (len(sets) + 2) + "|"]
    for r in rows:
        cells = []
        for s in sets:
            m = r.mean([k for k in keys if k[0] == s])
            n = sum(1 for k in keys if k[0] == s and k in r.scores)
            psnr = "-" if m is None or np.isnan(m[0]) else f"{m[0]:.2f}"
            note = "" if n == sum(1 for k in keys if k[0] == s) else f" ({n} images)"
            cells.append("-" if m is None else f"{psnr} / {m[1]:.2f} / {m[2]:.3f}{note}")
        speed = f"{r.pixels / r.seconds / 1e6:.3g}" if r.seconds else "-"
        lines.append(f"| {r.method} | " + " | ".join(cells) + f" | {speed} |")
    return lines


def write_section(path: Path, text: str) -> None:
    """Put ``text`` (starting with :data:`HEADING`) into ``path``, replacing an older copy, keeping the rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(HEADING) + r".*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new.lstrip("\n"), encoding="utf-8")
