"""Real-world tables of ``bench/sr.py --realworld [--scale 2]``: degraded held-out photos, judged like the field.

Inputs: Set5 + Set14 (../shared/data/sr/bench, never trained on), HR cropped to a multiple of the scale,
degraded by one fixed pipeline with a fixed seed per image (:func:`degrade_fixed`: the primitives of
``gantools_upscale.degrade``, with fixed parameters; the same blur, noise and JPEG at every scale, only
the area downscale follows the scale). Columns, per method and averaged per image:

- PSNR-Y (dB) against the clean original (BT.601 Y, 4 px shaved), as in the bicubic table;
- NIQE (:mod:`niqe`, Mittal et al. with BasicSR's pristine parameters; lower is more natural);
- texture ratio: sliced Wasserstein distance between 8x8 patches of band-pass luminance (grey minus
  its Gaussian blur, sigma 1.5) of the output and of the clean photo, divided by the same distance
  for bicubic (:func:`texture_ratio`; below 1: texture statistics closer to the photo's than bicubic);
- PSNR-Y to the teacher (Real-ESRGAN x4plus; at x2 its output area-downscaled by 2, :func:`reduced_teacher`,
  the target of ``gantools train upscale --mode distill``): PSNR-Y between the method's output and the teacher's
  output on the same image, over the images the teacher ran on (the teacher's outputs stay in memory);
- output MP/s: output pixels over the method's wall time on these images (conversion included).

Real-ESRGAN x4plus (the official model, pulled by ``gantools models pull realesrgan``) is skipped
with a note when not pulled; it is slow on CPU (16.7M parameters), so ``--realesrgan-limit`` caps
how many images of each set it runs on, and a second table compares every method on those images.
A method run elsewhere (OpenCV FSRCNN in the peer interpreter, bench/sr_peers.py) comes in as
:class:`Precomputed` outputs with its own per-image wall times. :func:`targets` judges candidate
rows against the teacher on the images both ran on (the issue's distillation targets). Each scale has its
own section of sr.md (:func:`heading`, :func:`write_section`).
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

SCALE, SHAVE, PATCH, STRIDE, DIRECTIONS = 4, 4, 8, 4, 64  # SCALE: the default; SHAVE: 4 px at every scale
BLUR_SIGMA, NOISE_SIGMA, JPEG_Q = 1.2, 5.0, 75
#: the shipped gantools models each table scores (those not shipped at its scale are left out with a note)
GANTOOLS_MODELS = ("fidelity", "photo")
#: of those, the ones judged against the teacher
JUDGED_MODELS = ("photo",)


def heading(scale: int = SCALE) -> str:
    """The sr.md section heading of the ``scale`` table (``## Real-world x4: ...``)."""
    return f"## Real-world x{scale}: degraded held-out photos"



def degrade_fixed(hr_bgr: np.ndarray, seed: int, scale: int = SCALE) -> np.ndarray:
    """Blur (isotropic Gaussian, sigma 1.2), ``scale`` x area downscale, Gaussian noise (sigma 5/255, seeded),
    JPEG q75; the LR is ``(h // scale, w // scale)``."""
    from gantools_upscale.degrade import gaussian_kernel, jpeg

    rgb = cv2.cvtColor(hr_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    img = cv2.filter2D(rgb, -1, gaussian_kernel(13, BLUR_SIGMA, BLUR_SIGMA, 0.0), borderType=cv2.BORDER_REFLECT_101)
    h, w = img.shape[:2]
    img = cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
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


Key = tuple[str, str]  # (set, image)


@dataclass
class Row:
    """One method: per-image ``scores[key] = (psnr, niqe, texture)``, PSNR-Y of its output to the teacher's
    output (``to_teacher``, only images the teacher ran on) and ``times[key] = (output pixels, seconds)``."""

    method: str
    scores: dict[Key, tuple[float, float, float]] = field(default_factory=dict)
    to_teacher: dict[Key, float] = field(default_factory=dict)
    times: dict[Key, tuple[int, float]] = field(default_factory=dict)

    def mean(self, keys: list[Key]) -> tuple[float, float, float] | None:
        got = [self.scores[k] for k in keys if k in self.scores]
        return tuple(np.mean(got, axis=0)) if got else None  # type: ignore[return-value]

    def mp_s(self, keys: list[Key]) -> float | None:
        """Output megapixels per second over the timed images among ``keys`` (None when none was timed)."""
        got = [self.times[k] for k in keys if k in self.times]
        seconds = sum(t for _, t in got)
        return sum(p for p, _ in got) / seconds / 1e6 if got and seconds > 0 else None


@dataclass
class Precomputed:
    """A method run outside this process: ``outputs[key] = (output BGR, seconds it took)``."""

    outputs: dict[Key, tuple[np.ndarray, float]]


Method = Callable[[np.ndarray], np.ndarray]


def degraded(items: list[tuple[str, str, np.ndarray]], scale: int = SCALE) -> dict[Key, np.ndarray]:
    """The LR input of every item ``(set, image, HR BGR)``: :func:`degrade_fixed` at ``scale``, seed 1000 + index."""
    return {(s, n): degrade_fixed(hr, seed=1000 + i, scale=scale) for i, (s, n, hr) in enumerate(items)}


def reduced_teacher(plugin, scale: int) -> Method:
    """BGR -> BGR: ``plugin`` (an upscaler of scale >= ``scale``, e.g. Real-ESRGAN x4plus) with its output
    area-downscaled to ``scale`` x the input, by the distillation trainer's own reduction
    (``gantools_upscale.distill.teacher_output``): the x2 teacher of ``--mode distill``."""
    from gantools_upscale.distill import teacher_output

    return lambda lr: teacher_output(plugin, lr, scale)


def gantools_models(scale: int, shipped: set[str]) -> tuple[list[str], list[str]]:
    """Of :data:`GANTOOLS_MODELS`, those in ``shipped`` (the names shipped at ``scale``), in order, and a note for
    each left out (the table omits its row)."""
    names = [m for m in GANTOOLS_MODELS if m in shipped]
    notes = [f"gantools {m} x{scale}: not shipped (no x{scale} `{m}` in gantools.weights.shipped), row omitted."
             for m in GANTOOLS_MODELS if m not in shipped]
    return names, notes


def run(methods: dict[str, Method | Precomputed], items: list[tuple[str, str, np.ndarray]], lrs: dict[Key, np.ndarray],
        psnr_y: Callable, bicubic: Method, limits: dict[str, int], params: dict, teacher: str | None = None) -> list[Row]:
    """Score every method on ``items`` ``(set, image, HR BGR)`` from ``lrs`` (:func:`degraded`).

    ``limits[method]`` caps images per set. The ``teacher`` method (when given and present) runs first and
    its outputs are kept for every other method's ``to_teacher``. Rows come back in ``methods`` order,
    then the clean original (NIQE only)."""
    bicubics = {k: bicubic(lr) for k, lr in lrs.items()}
    order = sorted(methods, key=lambda m: m != teacher)
    reference: dict[Key, np.ndarray] = {}
    rows = {}
    for label in order:
        rows[label], outputs = _score(label, methods[label], items, lrs, psnr_y, bicubics,
                                      limits.get(label, len(items)), params, reference)
        if label == teacher:
            reference = outputs
    original = Row("clean original (reference)")
    original.scores = {(s, n): (float("nan"), niqe_mod.niqe(hr, params, SHAVE), 0.0) for s, n, hr in items}
    return [rows[m] for m in methods] + [original]


def _score(label: str, fn: Method | Precomputed, items: list, lrs: dict, psnr_y: Callable, bicubics: dict, limit: int,
           params: dict, reference: dict[Key, np.ndarray]) -> tuple[Row, dict[Key, np.ndarray]]:
    """One method's row and its outputs (for the caller to keep as the teacher's, or drop)."""
    row, seen, outputs = Row(label), {}, {}
    for s, n, hr in items:
        seen[s] = seen.get(s, 0) + 1
        if seen[s] > limit:
            continue
        if isinstance(fn, Precomputed):
            if (s, n) not in fn.outputs:
                continue
            out, seconds = fn.outputs[s, n]
        else:
            t = time.perf_counter()
            out = fn(lrs[s, n])
            seconds = time.perf_counter() - t
        row.times[s, n] = (out.shape[0] * out.shape[1], seconds)
        row.scores[s, n] = (psnr_y(out, hr, SHAVE)[0], niqe_mod.niqe(out, params, SHAVE),
                            texture_ratio(out, hr, bicubics[s, n]))
        if (s, n) in reference:
            row.to_teacher[s, n] = psnr_y(out, reference[s, n], SHAVE)[0]
        outputs[s, n] = out
        extra = f" to teacher {row.to_teacher[s, n]:.2f}" if (s, n) in row.to_teacher else ""
        print(f"  {label}: {s}/{n} PSNR-Y {row.scores[s, n][0]:.2f} NIQE {row.scores[s, n][1]:.2f} "
              f"texture {row.scores[s, n][2]:.3f}{extra}", flush=True)
    return row, outputs


def table(rows: list[Row], keys: list[Key], teacher_name: str = "x4plus") -> list[str]:
    """Markdown lines of one table: per set PSNR-Y / NIQE / texture, then mean PSNR-Y to the teacher's outputs
    (when any row has one; over the images among ``keys`` the teacher ran on) and output MP/s over ``keys``."""
    sets = sorted({s for s, _ in keys}, key=lambda s: ("Set5", "Set14").index(s) if s in ("Set5", "Set14") else 9)
    with_teacher = any(k in r.to_teacher for r in rows for k in keys)
    head = "| method | " + " | ".join(f"{s} PSNR-Y / NIQE / texture" for s in sets)
    head += f" | PSNR-Y to {teacher_name} |" if with_teacher else " |"
    lines = [head + " output MP/s |", "|---" * (len(sets) + 2 + with_teacher) + "|"]
    for r in rows:
        cells = []
        for s in sets:
            m = r.mean([k for k in keys if k[0] == s])
            n = sum(1 for k in keys if k[0] == s and k in r.scores)
            psnr = "-" if m is None or np.isnan(m[0]) else f"{m[0]:.2f}"
            note = "" if n == sum(1 for k in keys if k[0] == s) else f" ({n} images)"
            cells.append("-" if m is None else f"{psnr} / {m[1]:.2f} / {m[2]:.3f}{note}")
        if with_teacher:
            got = [r.to_teacher[k] for k in keys if k in r.to_teacher]
            cells.append(f"{np.mean(got):.2f}" if got else "-")
        speed = r.mp_s(keys)
        lines.append(f"| {r.method} | " + " | ".join(cells) + f" | {'-' if speed is None else f'{speed:.3g}'} |")
    return lines


#: the issue's bar for a distilled student against its teacher: at least this many times the teacher's MP/s
MIN_SPEEDUP = 10.0


def targets(rows: list[Row], candidates: list[str], teacher: str, teacher_name: str = "x4plus") -> list[str]:
    """Markdown bullets: each candidate row against the teacher row on the images both ran on.

    Met when NIQE <= the teacher's, texture ratio <= the teacher's, PSNR-Y >= the teacher's (means over those
    images), output MP/s over those images >= :data:`MIN_SPEEDUP` x the teacher's, and strictly better on at
    least one of NIQE, texture, PSNR-Y. Candidates or a teacher absent from ``rows`` are left out."""
    by = {r.method: r for r in rows}
    ref = by.get(teacher)
    out = []
    for label in candidates:
        row = by.get(label)
        keys = [k for k in (ref.scores if ref else {}) if row and k in row.scores]
        if not keys:
            continue
        (p, q, t), (tp, tq, tt) = row.mean(keys), ref.mean(keys)
        speed, tspeed = row.mp_s(keys), ref.mp_s(keys)
        ratio = speed / tspeed if speed and tspeed else float("nan")
        checks = {"NIQE": q <= tq, "texture": t <= tt, "PSNR-Y": p >= tp, "speed": ratio >= MIN_SPEEDUP}
        beats = [name for name, better in (("NIQE", q < tq), ("texture", t < tt), ("PSNR-Y", p > tp)) if better]
        met = all(checks.values()) and bool(beats)
        yes = lambda ok: "yes" if ok else "no"  # noqa: E731
        out.append(
            f"- `{label}` vs {teacher_name} on the {len(keys)} images both ran on: NIQE {q:.2f} vs {tq:.2f} "
            f"(<=: {yes(checks['NIQE'])}), texture {t:.3f} vs {tt:.3f} (<=: {yes(checks['texture'])}), "
            f"PSNR-Y {p:.2f} vs {tp:.2f} dB (>=: {yes(checks['PSNR-Y'])}), output MP/s "
            f"{_g(speed)} vs {_g(tspeed)} = {ratio:.3g}x (>= {MIN_SPEEDUP:g}x: {yes(checks['speed'])}); "
            f"beats it on {', '.join(beats) if beats else 'none'}: {'met' if met else 'NOT met'}.")
    return out


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def write_section(path: Path, text: str, scale: int = SCALE) -> None:
    """Put ``text`` (starting with :func:`heading` of ``scale``) into ``path``, replacing an older copy of that
    section only (up to the next ``## `` heading), keeping the rest (other scales' sections included)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(heading(scale)) + r".*?(?=^## |\Z)", re.S | re.M)
    section = lambda m: text.rstrip("\n") + ("\n\n" if m.end() < len(old) else "\n")  # noqa: E731 (blank line kept)
    new = pattern.sub(section, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new.lstrip("\n"), encoding="utf-8")
