"""Peer side of bench/sr.py: run OpenCV dnn_superres models (FSRCNN, ESPCN) on LR images.

Runs under an interpreter that has ``opencv-contrib-python-headless`` (which must not share an
environment with gantools' ``opencv-python-headless``). Reads a JSON job on stdin::

    {"models": "DIR", "scale": 4, "threads": 2, "inputs": ["lr1.png", ...], "out": "DIR",
     "speed_input": "lr.png", "repeats": 5, "memory_input": "big.png" | null,
     "algos": ["fsrcnn"], "timed": false}

writes ``OUT/<model>/<name>`` images and prints a JSON result: per model, output megapixels
per second on the speed input (when given) and, when asked, peak RSS (MB) upscaling the memory
input in a fresh process. ``algos`` (default: all of :data:`PEERS`) picks the models; with
``"timed": true`` each model also reports ``seconds``: ``{input file name: wall time of its
upsample call}`` (image already read; one untimed warm-up call on the first input first, as the
gantools rows load their weights before the clock starts).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import cv2

PEERS = {"fsrcnn": "FSRCNN", "espcn": "ESPCN"}


def make(models: str, algo: str, scale: int):
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(os.path.join(models, f"{PEERS[algo]}_x{scale}.pb"))
    sr.setModel(algo, scale)
    return sr


def memory_child(models: str, algo: str, scale: int, path: str, threads: int) -> None:
    cv2.setNumThreads(threads)
    sr = make(models, algo, scale)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    out = sr.upsample(img)
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "shape": out.shape}))


def upsample_all(sr, inputs: list[str], outdir: str) -> dict[str, float]:
    """Upscale every input into ``outdir`` (same file name); per file name, the upsample call's wall time."""
    seconds = {}
    for i, path in enumerate(inputs):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if i == 0:
            sr.upsample(img)  # warm-up: the network is set up on the first call
        t = time.perf_counter()
        out = sr.upsample(img)
        seconds[os.path.basename(path)] = time.perf_counter() - t
        cv2.imwrite(os.path.join(outdir, os.path.basename(path)), out)
    return seconds


def mp_per_s(sr, img, repeats: int) -> float:
    """Output megapixels per second upsampling ``img`` (after one warm-up call)."""
    out = sr.upsample(img)
    t = time.perf_counter()
    for _ in range(repeats):
        out = sr.upsample(img)
    return out.shape[0] * out.shape[1] / ((time.perf_counter() - t) / repeats) / 1e6


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory":
        memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
        return
    job = json.load(sys.stdin)
    cv2.setNumThreads(job["threads"])
    result = {}
    for algo in job.get("algos") or PEERS:
        sr = make(job["models"], algo, job["scale"])
        outdir = os.path.join(job["out"], algo)
        os.makedirs(outdir, exist_ok=True)
        seconds = upsample_all(sr, job["inputs"], outdir)
        row = {"seconds": seconds} if job.get("timed") else {}
        if job.get("speed_input"):
            row["mp_per_s"] = mp_per_s(sr, cv2.imread(job["speed_input"], cv2.IMREAD_COLOR), job["repeats"])
        if job.get("memory_input"):
            cmd = [sys.executable, __file__, "--memory", job["models"], algo, str(job["scale"]), job["memory_input"], str(job["threads"])]
            row.update(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
        result[algo] = row
    print(json.dumps(result))


if __name__ == "__main__":
    main()
