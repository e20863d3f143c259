"""Style-transfer benchmark: content kept, style taken on, speed; a Reinhard colour baseline beside.

For every shipped style (``stylize --style``) or every ``--weights`` file, over photos that are
not training photos (default ``../shared/data/sr/bench/Set14``; training uses
``style/monet2photo/photo`` and ``sr/train``):

* content SSIM: luminance at 1/4 of the input size, input vs output (kornia.metrics.ssim);
* colour / texture ratio: sliced Wasserstein distance between the 8x8 patch distributions of
  the output and the style image(s) (patches sampled at long side 256 and 128, 4096 per image and
  scale, 128 random projections, fixed seeds), divided by the same distance for the untouched
  input; colour = RGB patches, texture = band-pass luminance patches (luminance minus its
  Gaussian blur, sigma 2). Lower is closer to the style; 1 = no closer than the photo;
* the same numbers for a Reinhard colour transfer (Lab mean/std) from the style image(s);
* output megapixels per second, fp32 and bf16, at ``--threads`` (default 1).

Targets for every shipped style: content SSIM >= 0.5, colour ratio <= 0.6, texture ratio <= 0.6.
The style image of a model is found from its ``source`` (manifest or export metadata) under
``../shared/data/style`` or given with ``--style-image``.

    python bench/style.py                                     # shipped styles -> bench/results/style.md
    python bench/style.py --weights runs/mine/export.safetensors --out /tmp/style.md
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = DATA / "sr" / "bench" / "Set14"
STYLE_ROOT = DATA / "style"
TARGETS = {"ssim": 0.5, "color": 0.6, "texture": 0.6}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class Model:
    """One stylize network to benchmark."""

    label: str
    options: dict
    source: str
    mode: str
    reference: Row | None = None  # domain styles: how the folder's own paintings score


@dataclass
class Row:
    label: str
    ssim: float
    color: float
    texture: float
    mp_fp32: float | None = None
    mp_bf16: float | None = None
    pooled_color: float | None = None
    pooled_texture: float | None = None

    def passes(self) -> bool:
        return self.ssim >= TARGETS["ssim"] and self.color <= TARGETS["color"] and self.texture <= TARGETS["texture"]


def to_tensor(bgr: np.ndarray) -> torch.Tensor:
    from gantools.tensor import convert

    return convert.to_tensor(bgr, bgr_to_rgb=True)


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"error: cannot read {path}")
    return img


def images_in(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def find_style(source: str) -> list[Path]:
    """Style image files for a model's ``source`` (comma-separated names, a file or a folder)."""
    found: list[Path] = []
    for part in (s.strip() for s in source.split(",") if s.strip()):
        p = Path(part)
        candidates = [p, STYLE_ROOT / part, STYLE_ROOT / "paintings" / part]
        candidates += sorted(STYLE_ROOT.rglob(Path(part).name))
        hit = next((c for c in candidates if c.exists()), None)
        if hit is None:
            raise SystemExit(f"error: style source {part!r} not found under {STYLE_ROOT}; pass --style-image")
        found += images_in(hit)
    return found


def models_from_args(args: argparse.Namespace) -> list[Model]:
    if args.weights:
        from gantools.checkpoint import read_state_dict

        out = []
        for w in args.weights:
            _, meta = read_state_dict(w)
            label = f"{meta.get('style', Path(w).stem)} ({Path(w).name})"
            out.append(Model(label, {"weights": w}, meta.get("source", ""), meta.get("mode", "?")))
        return out
    from gantools.weights import shipped

    models = [Model(m.name, {"style": m.name}, str(m.extra.get("source", "")), str(m.extra.get("mode", "painting")))
              for m in shipped("stylize")]
    if not models:
        raise SystemExit("error: no shipped styles yet; benchmark exports with --weights FILE")
    return models


def speed(plugin, img: np.ndarray, repeats: int) -> float:
    """Output megapixels per second (after one warm-up call). With one torch thread the clock is
    this thread's CPU time, so other processes on a shared machine do not distort it."""
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    plugin.process(img)
    t = clock()
    for _ in range(repeats):
        plugin.process(img)
    return img.shape[0] * img.shape[1] * repeats / (clock() - t) / 1e6


def evaluate(outputs: list[torch.Tensor], inputs: list[torch.Tensor], style: list[torch.Tensor], label: str) -> Row:
    from gantools_stylize.metrics import content_ssim, style_ratio

    ssims = [content_ssim(i, o) for i, o in zip(inputs, outputs)]
    color = [style_ratio(i, o, style, "color", seed=k) for k, (i, o) in enumerate(zip(inputs, outputs))]
    texture = [style_ratio(i, o, style, "texture", seed=k) for k, (i, o) in enumerate(zip(inputs, outputs))]
    return Row(label, float(np.mean(ssims)), float(np.mean(color)), float(np.mean(texture)))


def pool(row: Row, outputs: list[torch.Tensor], inputs: list[torch.Tensor], style: list[torch.Tensor]) -> Row:
    """Add the pooled ratios: all outputs' patches together vs all inputs' patches together."""
    from gantools_stylize.metrics import style_distance

    row.pooled_color, row.pooled_texture = (style_distance(outputs, style, k) / style_distance(inputs, style, k)
                                            for k in ("color", "texture"))
    return row


def real_paintings(inputs: list[torch.Tensor], style: list[torch.Tensor]) -> Row:
    """How the domain's own paintings score: ``len(inputs)`` paintings spread over the folder, each
    measured against the rest of the folder (per image: divided by photo ``k``'s distance to the
    rest; pooled: the held-out paintings together vs the photos together)."""
    from gantools_stylize.metrics import style_ratio

    picks = set(np.linspace(0, len(style) - 1, len(inputs)).round().astype(int).tolist())
    held = [style[i] for i in sorted(picks)]
    rest = [s for i, s in enumerate(style) if i not in picks]
    per = {kind: float(np.mean([style_ratio(i, h, rest, kind, seed=k) for k, (i, h) in enumerate(zip(inputs, held))]))
           for kind in ("color", "texture")}
    return pool(Row(f"{len(held)} paintings of the folder, vs the other {len(rest)}", float("nan"), per["color"],
                    per["texture"]), held, inputs, rest)


def run(args: argparse.Namespace) -> list[tuple[Model, Row, Row]]:
    from gantools_stylize import Stylize
    from gantools_stylize.color import reinhard

    photo_paths = images_in(Path(args.photos))[: args.max_photos or None]
    if not photo_paths:
        raise SystemExit(f"error: no photos in {args.photos} (the data lives in ../shared/data)")
    photos = [read(p) for p in photo_paths]
    inputs = [to_tensor(p) for p in photos]
    speed_img = cv2.resize(photos[0], (args.speed_size, args.speed_size * 3 // 4), interpolation=cv2.INTER_AREA)
    results = []
    for model in models_from_args(args):
        style_paths = [Path(p) for p in args.style_image] if args.style_image else find_style(model.source)
        style = [to_tensor(read(p)) for p in style_paths]
        plugin = Stylize(threads=args.threads, precision="fp32", **model.options)
        outputs = [to_tensor(plugin.process(p)) for p in photos]
        row = evaluate(outputs, inputs, style, model.label)
        if not args.no_speed:
            row.mp_fp32 = speed(plugin, speed_img, args.repeats)
            row.mp_bf16 = speed(Stylize(threads=args.threads, precision="bf16", **model.options), speed_img, args.repeats)
        matched = [reinhard(i, style) for i in inputs]
        base = evaluate(matched, inputs, style, "Reinhard (Lab mean/std)")
        if model.mode == "domain":  # a folder of paintings: add pooled ratios and how its own paintings score
            pool(row, outputs, inputs, style)
            pool(base, matched, inputs, style)
            model.reference = real_paintings(inputs, style)
        results.append((model, row, base))
        print(f"{model.label}: SSIM {row.ssim:.3f} colour {row.color:.3f} texture {row.texture:.3f} | "
              f"Reinhard SSIM {base.ssim:.3f} colour {base.color:.3f} texture {base.texture:.3f}", file=sys.stderr)
    return results


def fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(results: list[tuple[Model, Row, Row]], args: argparse.Namespace) -> str:
    n_photos = len(images_in(Path(args.photos))[: args.max_photos or None])
    lines = [
        "# Style transfer benchmark",
        "",
        f"Photos: {Path(args.photos).name} ({n_photos} images, none used in training). "
        f"Targets: content SSIM >= {TARGETS['ssim']}, colour ratio <= {TARGETS['color']}, "
        f"texture ratio <= {TARGETS['texture']} (ratios: sliced Wasserstein distance of 8x8 patches to the "
        "style image, output / input; lower = closer to the style). Speed: output megapixels per second, "
        f"{args.threads} thread(s), {args.speed_size}x{args.speed_size * 3 // 4} input.",
        "",
        "| style | mode | source | content SSIM | colour ratio | texture ratio | Reinhard SSIM | Reinhard colour "
        "| Reinhard texture | MP/s fp32 | MP/s bf16 | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, row, base in results:
        lines.append(
            f"| {model.label} | {model.mode} | {model.source} | {fmt(row.ssim)} | {fmt(row.color)} | {fmt(row.texture)} "
            f"| {fmt(base.ssim)} | {fmt(base.color)} | {fmt(base.texture)} | {fmt(row.mp_fp32, 2)} "
            f"| {fmt(row.mp_bf16, 2)} | {'pass' if row.passes() else 'FAIL'} |"
        )
    domain = [(m, row, base) for m, row, base in results if m.reference is not None]
    if domain:
        lines += [
            "",
            "Domain styles are compared with a whole folder of paintings. Per image (the table above) each "
            "output's patches are measured against the folder's; pooled puts all outputs' patches together "
            "(and all inputs' for the divisor). The folder's own paintings, held out and measured the same "
            "way, show what a real painting of the domain scores.",
            "",
            "| style | rows | colour per image | texture per image | colour pooled | texture pooled |",
            "|---|---|---|---|---|---|",
        ]
        for m, row, base in domain:
            for r in (row, base, m.reference):
                name = "output" if r is row else r.label
                lines.append(f"| {m.label} | {name} | {fmt(r.color)} | {fmt(r.texture)} | {fmt(r.pooled_color)} "
                             f"| {fmt(r.pooled_texture)} |")
    lines += ["", f"Command: `python bench/style.py {' '.join(sys.argv[1:])}`", ""]
    return "\n".join(lines)


def print_table(results: list[tuple[Model, Row, Row]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("style", "SSIM", "colour", "texture", "Reinhard SSIM", "R. colour", "R. texture",
                  "MP/s fp32", "MP/s bf16", "targets", title="stylize benchmark")
    for model, row, base in results:
        table.add_row(model.label, fmt(row.ssim), fmt(row.color), fmt(row.texture), fmt(base.ssim), fmt(base.color),
                      fmt(base.texture), fmt(row.mp_fp32, 2), fmt(row.mp_bf16, 2), "pass" if row.passes() else "FAIL")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", help="benchmark these exports/checkpoints instead of the shipped styles")
    ap.add_argument("--style-image", nargs="+", help="style image(s) to compare with (default: from the model's source)")
    ap.add_argument("--photos", default=str(PHOTOS), help="folder of test photos (not training photos)")
    ap.add_argument("--max-photos", type=int, default=0, help="use only the first N photos (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-size", type=int, default=512, help="width of the speed-test image (4:3)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "style.md"), help="markdown report path")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = run(args)
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results, args))
    print(f"wrote {out}", file=sys.stderr)
    return 0 if all(row.passes() for _, row, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
