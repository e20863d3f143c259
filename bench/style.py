"""Style-transfer benchmark: content kept, style taken on; a Reinhard colour baseline beside.

For every shipped style (``stylize --style``) or every ``--weights`` file, over three photo sets:

* ``held-out``: the content photos that ``gantools train stylize`` never trains on
  (:mod:`gantools_stylize.split`: about 1 in 5 of monet2photo/photo, T91 and BSD200 by a hash of
  the file name, ``--per-folder`` of each spread evenly over the sorted names, plus all of Set5 and
  Set14: landscapes, people, animals, buildings, close-ups, text);
* ``held-out night``: the same photos made night-like by :func:`night` (documented transform);
* ``train``: ``--train-per-folder`` training photos of each folder, for comparison.

Numbers (``gantools_stylize.metrics``):

* content SSIM: luminance at 1/4 of the input size, input vs output (kornia.metrics.ssim);
* colour / texture ratio, per image: sliced Wasserstein distance between the 8x8 patch
  distributions of the output and the style image(s) (long side 256 and 128), divided by the same
  distance for the untouched input; colour = RGB patches, texture = band-pass luminance patches.
  Lower is closer to the style; 1 = no closer than the photo;
* pooled colour / texture: all outputs' patches together vs all inputs' (``pooled_ratio``: 16384
  patches per scale, same positions for inputs and outputs, mean of 3 seeds). For a domain style
  (a folder of paintings) this is the measure; its floor, N paintings of the folder held out and
  measured against the rest the same way, is printed beside it;
* the same numbers for a Reinhard colour transfer (Lab mean/std) on the held-out photos;
* with ``--speed``: output megapixels per second, fp32 and bf16, at ``--threads`` (default 1);
* training (item 4's timings): steps, images seen, wall-clock minutes and torch threads of the
  model's run, from its export's metadata (exports since 2026-12-07 record them; a shipped model
  that continued training shows its manifest's summed steps and the last run's minutes).

Targets on held-out photos, every shipped style: content SSIM >= 0.5, colour ratio <= 0.6, texture
ratio <= 0.6; domain styles: pooled colour <= 0.5, pooled texture <= 0.4. The style image of a
model is found from its ``source`` under ``../shared/data/style`` or given with ``--style-image``.

    python bench/style.py                                     # shipped styles -> bench/results/style.md
    python bench/style.py --per-folder 12 --train-per-folder 8   # the subset measured on 2 busy cores
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
TRAIN_FOLDERS = ("style/monet2photo/photo", "sr/train/T91", "sr/train/BSD200")
BENCH_FOLDERS = ("sr/bench/Set5", "sr/bench/Set14")
STYLE_ROOT = DATA / "style"
TARGETS = {"ssim": 0.5, "color": 0.6, "texture": 0.6}
POOLED_TARGETS = {"color": 0.5, "texture": 0.4}
NIGHT_TINT_BGR = (1.15, 0.9, 0.8)
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class Model:
    """One stylize network to benchmark."""

    label: str
    options: dict
    source: str
    mode: str
    reference: Row | None = None  # domain styles: how the folder's own paintings score
    meta: dict | None = None  # the weights' export metadata (steps, images_seen, wall_seconds, threads)


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
    n: int = 0

    def passes(self) -> bool:
        return self.ssim >= TARGETS["ssim"] and self.color <= TARGETS["color"] and self.texture <= TARGETS["texture"]


@dataclass
class Result:
    """One model's rows per photo set, and the Reinhard baseline on the first set."""

    model: Model
    rows: dict[str, Row]
    base: Row

    def passes(self) -> bool:
        """Targets on the first (held-out) set; pooled ones too for a domain style."""
        row = next(iter(self.rows.values()))
        pooled = self.model.mode != "domain" or (row.pooled_color <= POOLED_TARGETS["color"]
                                                 and row.pooled_texture <= POOLED_TARGETS["texture"])
        return row.passes() and pooled


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
    from gantools.checkpoint import peek_metadata, read_state_dict

    if args.weights:
        out = []
        for w in args.weights:
            meta = peek_metadata(w) or read_state_dict(w)[1]  # the header only, for a safetensors export
            label = f"{meta.get('style', Path(w).stem)} ({Path(w).name})"
            out.append(Model(label, {"weights": w}, meta.get("source", ""), meta.get("mode", "?"), meta=meta))
        return out
    from gantools.weights import shipped

    models = [Model(m.name, {"style": m.name}, str(m.extra.get("source", "")), str(m.extra.get("mode", "painting")),
                    meta={**(peek_metadata(m.path) or {}), **{k: str(m.extra[k]) for k in ("steps", "images_seen") if k in m.extra}})
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


def real_paintings(inputs: list[torch.Tensor], style: list[torch.Tensor]) -> Row:
    """How the domain's own paintings score: ``len(inputs)`` paintings spread over the folder, each
    measured against the rest of the folder (per image: divided by photo ``k``'s distance to the
    rest; pooled: the held-out paintings together vs the photos together)."""
    from gantools_stylize.metrics import pooled_ratio, style_ratio

    picks = set(np.linspace(0, len(style) - 1, len(inputs)).round().astype(int).tolist())
    held = [style[i] for i in sorted(picks)]
    rest = [s for i, s in enumerate(style) if i not in picks]
    per = {kind: float(np.mean([style_ratio(i, h, rest, kind, seed=k) for k, (i, h) in enumerate(zip(inputs, held))]))
           for kind in ("color", "texture")}
    row = Row(f"{len(held)} paintings of the folder, vs the other {len(rest)}", float("nan"), per["color"],
              per["texture"])
    row.pooled_color, row.pooled_texture = (_pooled_floor(inputs, held, rest, k) for k in ("color", "texture"))
    return row


def _pooled_floor(inputs: list[torch.Tensor], held: list[torch.Tensor], rest: list[torch.Tensor], kind: str) -> float:
    """distance(held paintings, rest) / distance(photos, rest), as ``pooled_ratio`` (sizes differ, so
    the two sets are sampled independently)."""
    from gantools_stylize.metrics import POOLED_PATCHES, POOLED_SEEDS, patches, projections, sliced_wasserstein

    ratios = []
    for seed in POOLED_SEEDS:
        b = patches(rest, kind, seed + 1, POOLED_PATCHES)
        proj = projections(b.shape[1], seed=seed)
        ratios.append(sliced_wasserstein(patches(held, kind, seed, POOLED_PATCHES), b, proj)
                      / sliced_wasserstein(patches(inputs, kind, seed, POOLED_PATCHES), b, proj))
    return float(np.mean(ratios))


def night(bgr: np.ndarray) -> np.ndarray:
    """A documented night-like version of a photo: RGB in [0, 1] -> ``x ** 2.2 * 0.5``, then a blue
    tint (R x0.8, G x0.9, B x1.15), clipped (darker, crushed shadows, cool cast)."""
    x = (bgr.astype(np.float32) / 255.0) ** 2.2 * 0.5 * np.array(NIGHT_TINT_BGR, np.float32)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def pick(names: list[str], n: int) -> list[str]:
    """``n`` names spread evenly over ``names`` (all for ``n`` = 0)."""
    if not n or n >= len(names):
        return names
    return [names[i] for i in np.linspace(0, len(names) - 1, n).round().astype(int)]


def photo_sets(args: argparse.Namespace) -> dict[str, list[Path]]:
    """The photo sets to measure: ``held-out`` (the split of ``gantools_stylize.split`` over the
    training folders, plus Set5 + Set14), ``held-out night`` (the same, through :func:`night`) and
    ``train`` (training photos, for comparison); or the one folder given with ``--photos``."""
    if args.photos:
        return {Path(args.photos).name: images_in(Path(args.photos))[: args.max_photos or None]}
    from gantools_stylize.split import split

    folders = {f: [p.name for p in images_in(DATA / f)] for f in TRAIN_FOLDERS}
    train, held = split([n for names in folders.values() for n in names], args.holdout)
    held_set, train_set = set(held), set(train)
    sets: dict[str, list[Path]] = {"held-out": [], "train": []}
    for f, names in folders.items():
        sets["held-out"] += [DATA / f / n for n in pick([n for n in names if n in held_set], args.per_folder)]
        sets["train"] += [DATA / f / n for n in pick([n for n in names if n in train_set], args.train_per_folder)]
    for f in BENCH_FOLDERS:
        sets["held-out"] += images_in(DATA / f)
    if not sets["held-out"]:
        raise SystemExit(f"error: no photos under {DATA} (the data lives in ../shared/data)")
    sets["held-out night"] = list(sets["held-out"])
    return sets


def measure(plugin, paths: list[Path], style: list[torch.Tensor], label: str, dark: bool) -> tuple[Row, list, list]:
    """Per-image and pooled numbers of ``plugin`` over ``paths``; also returns (inputs, outputs)."""
    from gantools_stylize.metrics import pooled_ratio

    photos = [night(read(p)) if dark else read(p) for p in paths]
    inputs = [to_tensor(p) for p in photos]
    outputs = [to_tensor(plugin.process(p)) for p in photos]
    row = evaluate(outputs, inputs, style, label)
    row.n = len(paths)
    row.pooled_color, row.pooled_texture = (pooled_ratio(inputs, outputs, style, k) for k in ("color", "texture"))
    return row, inputs, outputs


def run(args: argparse.Namespace) -> list[Result]:
    from gantools_stylize import Stylize
    from gantools_stylize.color import reinhard
    from gantools_stylize.metrics import pooled_ratio

    sets = photo_sets(args)
    results = []
    for model in models_from_args(args):
        style_paths = [Path(p) for p in args.style_image] if args.style_image else find_style(model.source)
        style = [to_tensor(read(p)) for p in style_paths]
        plugin = Stylize(threads=args.threads, precision="fp32", **model.options)
        rows, first = {}, None
        for name, paths in sets.items():
            rows[name], inputs, outputs = measure(plugin, paths, style, model.label, dark="night" in name)
            first = first or inputs
            print(f"{model.label} [{name}, {len(paths)}]: SSIM {rows[name].ssim:.3f} colour {rows[name].color:.3f} "
                  f"texture {rows[name].texture:.3f} pooled {rows[name].pooled_color:.3f} "
                  f"{rows[name].pooled_texture:.3f}", file=sys.stderr)
        matched = [reinhard(i, style) for i in first]
        base = evaluate(matched, first, style, "Reinhard (Lab mean/std)")
        base.pooled_color, base.pooled_texture = (pooled_ratio(first, matched, style, k) for k in ("color", "texture"))
        if args.speed:
            img = cv2.resize(read(sets[next(iter(sets))][0]), (args.speed_size, args.speed_size * 3 // 4),
                             interpolation=cv2.INTER_AREA)
            rows[next(iter(sets))].mp_fp32 = speed(plugin, img, args.repeats)
            rows[next(iter(sets))].mp_bf16 = speed(Stylize(threads=args.threads, precision="bf16", **model.options),
                                                   img, args.repeats)
        if model.mode == "domain":
            model.reference = real_paintings(first, style)
        results.append(Result(model, rows, base))
    return results


def fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(results: list[Result], args: argparse.Namespace) -> str:
    sets = {name: len(row_set) for name, row_set in photo_sets(args).items()}
    lines = [
        "# Style transfer benchmark",
        "",
        "Photo sets: " + ", ".join(f"{k} ({v} photos)" for k, v in sets.items()) + ". "
        f"Targets on held-out photos: content SSIM >= {TARGETS['ssim']}, colour ratio <= {TARGETS['color']}, "
        f"texture ratio <= {TARGETS['texture']}; domain styles also pooled colour <= {POOLED_TARGETS['color']}, "
        f"pooled texture <= {POOLED_TARGETS['texture']} (ratios: sliced Wasserstein distance of 8x8 patches to "
        "the style image(s), output / input; lower = closer to the style; pooled = all outputs' patches vs all "
        "inputs' patches, 16384 per scale, mean of 3 seeds).",
        "",
        "| style | mode | photos | n | content SSIM | colour | texture | pooled colour | pooled texture | targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for name, row in res.rows.items():
            verdict = ("pass" if res.passes() else "FAIL") if name == "held-out" else ""
            lines.append(f"| {res.model.label} | {res.model.mode} | {name} | {row.n} | {fmt(row.ssim)} | {fmt(row.color)} "
                         f"| {fmt(row.texture)} | {fmt(row.pooled_color)} | {fmt(row.pooled_texture)} | {verdict} |")
        b = res.base
        lines.append(f"| {res.model.label} | baseline | Reinhard, {next(iter(res.rows))} | {next(iter(res.rows.values())).n} "
                     f"| {fmt(b.ssim)} | {fmt(b.color)} | {fmt(b.texture)} | {fmt(b.pooled_color)} "
                     f"| {fmt(b.pooled_texture)} | |")
        if res.model.reference is not None:
            r = res.model.reference
            lines.append(f"| {res.model.label} | floor | {r.label} | - | - | {fmt(r.color)} | {fmt(r.texture)} "
                         f"| {fmt(r.pooled_color)} | {fmt(r.pooled_texture)} | |")
    lines += ["", "## Speed", ""]
    speeds = [(res.model.label, row) for res in results for row in res.rows.values() if row.mp_fp32 is not None]
    if speeds:
        lines += ["| style | MP/s fp32 | MP/s bf16 |", "|---|---|---|"]
        lines += [f"| {label} | {fmt(r.mp_fp32, 2)} | {fmt(r.mp_bf16, 2)} |" for label, r in speeds]
    else:
        lines.append("Not measured this session (run with `--speed`).")
    lines += ["", "## Training (item 4's timings)", "",
              "| style | steps | images seen | wall-clock min (last run) | threads |", "|---|---|---|---|---|"]
    for res in results:
        m = res.model.meta or {}
        wall = f"{int(m['wall_seconds']) / 60:.0f}" if m.get("wall_seconds") else "-"
        lines.append(f"| {res.model.label} | {m.get('steps', '-')} | {m.get('images_seen', '-')} | {wall} "
                     f"| {m.get('threads', '-')} |")
    lines += ["", f"Command: `python bench/style.py {' '.join(sys.argv[1:])}`", ""]
    return "\n".join(lines)


def print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("style", "photos", "n", "SSIM", "colour", "texture", "pooled colour", "pooled texture", "targets",
                  title="stylize benchmark")
    for res in results:
        for name, row in res.rows.items():
            table.add_row(res.model.label, name, str(row.n), fmt(row.ssim), fmt(row.color), fmt(row.texture),
                          fmt(row.pooled_color), fmt(row.pooled_texture),
                          ("pass" if res.passes() else "FAIL") if name == "held-out" else "")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", help="benchmark these exports/checkpoints instead of the shipped styles")
    ap.add_argument("--style-image", nargs="+", help="style image(s) to compare with (default: from the model's source)")
    ap.add_argument("--photos", help="one folder of test photos instead of the held-out / night / train sets")
    ap.add_argument("--max-photos", type=int, default=0, help="with --photos: only the first N photos (0 = all)")
    ap.add_argument("--holdout", type=int, default=5, help="the split's 1-in-N (as gantools train stylize --holdout)")
    ap.add_argument("--per-folder", type=int, default=0,
                    help="held-out photos per training folder, spread evenly (0 = all); Set5 + Set14 always whole")
    ap.add_argument("--train-per-folder", type=int, default=8, help="training photos per folder for comparison")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-size", type=int, default=512, help="width of the speed-test image (4:3)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--speed", action="store_true", help="also measure MP/s (item 4)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "style.md"), help="markdown report path")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = run(args)
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results, args))
    print(f"wrote {out}", file=sys.stderr)
    return 0 if all(res.passes() for res in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
