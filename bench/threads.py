"""Images/s of ``gantools run`` by ``(--jobs, --threads)``, on an idle and on a contended CPU.

Issue 15, item 5: with one other busy process, 30 images of 512x512 took 83 s with torch's
default thread count and 30 s with ``--threads 1``. This bench runs the real command line on
synthetic 512x512 charts (made here with :mod:`gantools.charts`; nothing from ../shared) for
``resize --scale 2`` and ``upscale --model fidelity``, with ``(jobs, threads)`` in
``(1, 2) (1, 1) (2, 1)`` and ``auto``, first as idle as the machine allows, then with one
busy process (a Python busy loop started and killed here). Configurations alternate in rounds
(so load that drifts during the bench hits all of them alike) and the median of the rounds is
reported, with the 1-minute load average before each condition. Every configuration must write
byte-identical files (checked). Images/s is the summary's (``--json``): start-up and model
loading are excluded.

    python bench/threads.py                    # writes bench/results/threads.md
    python bench/threads.py --count 30 --upscale-count 10 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gantools.threads import cpu_cores, load_average, plan_threads
from gantools.charts import make_chart
from gantools.image import encode_image, write_image

ROOT = Path(__file__).resolve().parents[1]
CONFIGS: tuple[tuple[str, str], ...] = (("1", "2"), ("1", "1"), ("2", "1"), ("auto", ""))
PLUGINS: dict[str, list[str]] = {
    "resize": ["resize", "--scale", "2"],
    "upscale": ["upscale", "--model", "fidelity"],
}


def make_inputs(folder: Path, count: int, side: int = 512) -> None:
    """``count`` distinct colour charts of ``side`` x ``side`` (scene, bars, lines; shifted)."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ("scene", "bars", "lines")
    charts = {k: make_chart(k, side) for k in kinds}
    for i in range(count):
        image = np.roll(charts[kinds[i % 3]], shift=(17 * i, 29 * i), axis=(0, 1))
        write_image(folder / f"chart_{i:03d}.png", encode_image(image, "png"))


def run_once(plugin: str, inputs: Path, out: Path, jobs: str, threads: str) -> dict:
    """One ``gantools run``; returns its JSON summary plus the hashes of its outputs."""
    summary = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "gantools", "run", *PLUGINS[plugin], str(inputs), "-o", str(out),
           "--overwrite", "-q", "--json", str(summary), "--jobs", jobs, "--device", "cpu"]
    if threads:
        cmd += ["--threads", threads]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    data = json.loads(summary.read_text())
    data["hashes"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    return data


def measure(plugin: str, inputs: Path, work: Path, rounds: int) -> dict[str, dict]:
    """Median images/s per configuration over ``rounds`` alternating rounds; checks the outputs."""
    rates: dict[str, list[float]] = {}
    hashes: dict[str, dict] = {}
    for r in range(rounds):
        for jobs, threads in CONFIGS:
            key = f"{jobs},{threads or 'auto'}"
            data = run_once(plugin, inputs, work / f"{plugin}-{jobs}-{threads or 'a'}-{r}", jobs, threads)
            rates.setdefault(key, []).append(data["images_per_second"])
            hashes[key] = data["hashes"]
            print(f"  {plugin} jobs={jobs} threads={threads or 'auto'} round {r}: "
                  f"{data['images_per_second']:.3f} images/s ({data['done']} in {data['seconds']:.1f} s)", flush=True)
    reference = next(iter(hashes.values()))
    if any(h != reference for h in hashes.values()):
        raise RuntimeError(f"{plugin}: outputs differ between configurations")
    return {key: {"median": statistics.median(v), "all": v} for key, v in rates.items()}


def busy_loop() -> subprocess.Popen:
    """One busy process (a Python loop) on this machine; the caller kills it."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def auto_choice(count: int, load: float | None) -> str:
    """What ``--jobs auto`` picks for ``count`` images at this load, as ``jobs x threads``."""
    plan = plan_threads(count, cores=cpu_cores(), load=load)
    return f"{plan.jobs} x {plan.threads or 'default'}"


def table(results: dict, counts: dict[str, int]) -> list[str]:
    head = "| plugin (images) | condition | load before | jobs 1 x threads 2 | 1 x 1 | 2 x 1 | auto (picked) |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for (plugin, condition), (load, rates, picked) in results.items():
        base = rates["1,2"]["median"]
        cells = []
        for jobs, threads in CONFIGS:
            rate = rates[f"{jobs},{threads or 'auto'}"]["median"]
            cells.append(f"{rate:.3g} ({rate / base:.2f}x)")
        cells[-1] += f" [{picked}]"
        lines.append(f"| {plugin} ({counts[plugin]}) | {condition} | {load:.2f} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30, help="images for resize")
    parser.add_argument("--upscale-count", type=int, default=10, help="images for upscale (1-thread x4 is slow)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plugins", nargs="+", default=list(PLUGINS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "threads.md"))
    args = parser.parse_args()
    counts = {"resize": args.count, "upscale": args.upscale_count}
    results: dict = {}
    started = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for plugin in args.plugins:
            make_inputs(work / f"in-{plugin}", counts[plugin])
        for condition in ("idle", "one busy process"):
            busy = busy_loop() if condition != "idle" else None
            try:
                if busy is not None:
                    time.sleep(20)  # let the load average see it
                for plugin in args.plugins:
                    load = load_average() or 0.0
                    print(f"{plugin}, {condition}, load {load:.2f}", flush=True)
                    rates = measure(plugin, work / f"in-{plugin}", work, args.rounds)
                    results[(plugin, condition)] = (load, rates, auto_choice(counts[plugin], load))
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    import torch

    lines = [
        "# Threads: images in parallel vs threads per image",
        "",
        f"`python bench/threads.py --count {args.count} --upscale-count {args.upscale_count} --rounds {args.rounds}`, "
        f"{started}, {cpu_cores()} CPUs ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"Python {platform.python_version()}. Synthetic 512x512 charts; `resize --scale 2` and "
        "`upscale --model fidelity` (x4) through the command line, PNG in and out; images/s from the run's "
        "summary (start-up and model loading excluded), median of the rounds, ratio to `--jobs 1 --threads 2` "
        "in brackets. Columns are `--jobs x --threads`; `auto` shows what it picked. Every configuration "
        "wrote byte-identical files.",
        "",
        *table(results, counts),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
