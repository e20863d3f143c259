"""Batch inference, local runner vs the Ray engine (embedded Ray with 1 and 2 actors).

The same folder of synthetic images goes through each engine into a fresh folder; the table gives
images/s of the run (from the summary: planning to last write, Ray's start excluded and reported
apart) and the per-image overhead of Ray over the local runner, measured with ``resize`` (almost no
compute) as ``(ray seconds - local seconds) / images``.

    python bench/distributed.py                      # writes bench/results/distributed.md
    python bench/distributed.py --images 16 --size 96
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import gantools
import gantools.distributed as distributed

ROOT = Path(__file__).resolve().parents[1]
#: (label, plugin, options)
WORKLOADS = [("resize x2 (overhead)", "resize", {"scale": 2}),
             ("upscale fidelity x2", "upscale", {"model": "fidelity", "scale": 2})]


def make_inputs(folder: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def measure(tmp: Path, inputs: Path, name: str, options: dict, engine: str, actors: int) -> float:
    """Seconds of one run into a fresh folder (the summary's time)."""
    out = tmp / f"{name}-{engine}-{actors}-{time.monotonic_ns()}"
    if engine == "local":
        summary = gantools.run(name, inputs, out, progress="off", **options)
    else:
        summary = distributed.run(name, inputs, out, progress="off", actors=actors, batch_size=4, **options)
    assert summary.failed == 0 and summary.done > 0, summary.line()
    return summary.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "distributed.md"))
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_inputs(tmp / "in", args.images, args.size)
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - t0
        rows = []
        try:
            for label, name, options in WORKLOADS:
                runs = {"local": measure(tmp, tmp / "in", name, options, "local", 1)}
                for actors in (1, 2):
                    runs[f"ray x{actors}"] = measure(tmp, tmp / "in", name, options, "ray", actors)
                rows.append((label, runs))
        finally:
            ray.shutdown()
    write_report(Path(args.out), args, rows, ray_start)


def write_report(path: Path, args: argparse.Namespace, rows: list, ray_start: float) -> None:
    n = args.images
    lines = [
        "# Batch inference: local runner vs Ray engine",
        "",
        f"{n} synthetic {args.size}x{args.size} PNGs; `python bench/distributed.py --images {n} --size {args.size}`.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs while "
        "measured (the numbers are noisy; compare within a row). Embedded Ray "
        f"(`ray.init` took {ray_start:.1f} s, not in the table); each actor reserves an equal share of the CPUs.",
        "",
        "| workload | local img/s | Ray 1 actor img/s | Ray 2 actors img/s |",
        "|---|---|---|---|",
    ]
    for label, runs in rows:
        lines.append(f"| {label} | " + " | ".join(f"{n / runs[k]:.2f} ({runs[k]:.1f} s)"
                                                  for k in ("local", "ray x1", "ray x2")) + " |")
    label, runs = rows[0]
    per_image = {k: (runs[k] - runs["local"]) / n * 1000 for k in ("ray x1", "ray x2")}
    lines += ["", f"Per-image overhead of the Ray engine ({label}): "
              f"{per_image['ray x1']:.0f} ms with 1 actor, {per_image['ray x2']:.0f} ms with 2 actors "
              "(mostly the fixed start of each run - Ray Data's pipeline, the actors and their plugin set-up, "
              "several seconds here - spread over the images; not measured apart).", ""]
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
