"""DDP training (gantools.train.ddp): 2 gloo processes with global batch B == one process with batch B.

The toy-task ranks are started with torch.multiprocessing (spawn), as torchrun would: WORLD_SIZE,
RANK, MASTER_ADDR and MASTER_PORT in the environment. One test runs the real command line under
torchrun (``--standalone``: a free port of its own). The ranks write only to the run directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest
import torch

import toy_task  # noqa: F401 - registers the "toy" task
from gantools.cli import main
from gantools.train.api import make_config, run_training
from gantools.train.rundir import RunDir

BATCH = 8


def _config(out: Path, steps: int):
    return make_config("toy", out=str(out), steps=steps, seed=5, threads=1, workers=1, batch_size=BATCH,
                       options={"width": 16}, log_every=1)


def _rank(rank: int, world: int, port: int, out: str, steps: int) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import toy_task  # noqa: F401 - registers "toy" in the spawned process

    run_training(_config(Path(out), steps), log=lambda text: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    state = RunDir(str(out)).load_checkpoint()
    return {f"{part}.{k}": v for part in ("G", "D", "G_ema") for k, v in state[part].items()}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(out), 3), nprocs=2, join=True)
    return out


def test_two_ranks_match_one_process(ddp_run: Path, tmp_path: Path) -> None:
    run_training(_config(tmp_path / "single", 3), log=lambda text: None)
    single, parallel = _weights(tmp_path / "single"), _weights(ddp_run)
    assert single.keys() == parallel.keys()
    for key in single:
        torch.testing.assert_close(parallel[key], single[key], rtol=1e-4, atol=1e-5, msg=key)
    state = RunDir(str(ddp_run)).load_checkpoint()
    assert (state["step"], state["images_seen"]) == (3, 3 * BATCH)


def test_written_once_by_rank_zero(ddp_run: Path) -> None:
    run = RunDir(str(ddp_run))
    assert [p.name for p in run.checkpoints()] == ["ckpt-00000003.pt"]
    assert run.export_path.exists()
    metrics = [p for p in ddp_run.rglob("*.jsonl")] + [p for p in ddp_run.rglob("*.csv")]
    for path in metrics:  # one row per step: rank 1 logged nothing
        assert len([line for line in path.read_text().splitlines() if line.strip()]) <= 3 + 1


def test_resume_with_another_world_size(ddp_run: Path, tmp_path: Path) -> None:
    run_training(_config(ddp_run, 4), resume=True, log=lambda text: None)  # 2 ranks -> 1 process
    run_training(_config(tmp_path / "single", 4), log=lambda text: None)
    single, resumed = _weights(tmp_path / "single"), _weights(ddp_run)
    for key in single:
        torch.testing.assert_close(resumed[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


#: upscale in photo mode (G, a spectral-norm D, R1 at step 0), as small as it goes; global batch 4
TINY_UPSCALE = ["--mode", "photo", "--scale", "2", "--patch", "8", "--num-feat", "8", "--num-conv", "1",
                "--d-feat", "8", "--batch-size", "4", "--workers", "1", "--threads", "1", "--log-every", "1",
                "--device", "cpu", "--precision", "fp32"]


def _losses(out: Path) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if k.startswith(("step", "images_seen", "g_", "d_"))} for row in rows]


def test_torchrun_command_line(tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 2 -m gantools train upscale``: rank 0 alone reports and writes
    (one checkpoint, one sample grid, one metrics row per step with the global batch's losses,
    the export), as one process with the same global batch would; resumed by one process, it
    continues as the one-process run does."""
    import cv2

    data, run, single = tmp_path / "data", tmp_path / "run", tmp_path / "single"
    data.mkdir()
    rng = np.random.default_rng(3)
    for i in range(6):
        cv2.imwrite(str(data / f"{i}.png"), cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), np.uint8), (5, 5), 0))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "gantools", "train", "upscale", "--data", str(data), "--out", str(run), *TINY_UPSCALE,
               "--steps", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stderr.count("steps: step 3, 12 images seen") == 1, result.stderr  # rank 1 is quiet
    written = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert written == ["checkpoints/ckpt-00000003.pt", "config.json", "export.safetensors", "metrics.jsonl",
                       "samples/step00000003.png"]
    # one process: the same 3 steps (the same weights and metrics), then both resumed to step 4
    resume = ["--resume", "--steps", "4", "--threads", "1", "--quiet"]
    threads = torch.get_num_threads()
    try:
        assert main(["train", "upscale", "--data", str(data), "--out", str(single), *TINY_UPSCALE,
                     "--steps", "3", "--quiet"]) == 0
        _assert_same_run(run, single)
        assert main(["train", "upscale", "--out", str(run), *resume]) == 0  # 2 processes -> 1
        assert main(["train", "upscale", "--out", str(single), *resume]) == 0
    finally:
        torch.set_num_threads(threads)
    assert [p.name for p in RunDir(str(run)).checkpoints()] == ["ckpt-00000003.pt", "ckpt-00000004.pt"]
    _assert_same_run(run, single)


def _assert_same_run(run: Path, single: Path) -> None:
    """The same weights (within float tolerance) and the same metrics rows (timings aside)."""
    got, want = _weights(run), _weights(single)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)
    got_rows, want_rows = _losses(run), _losses(single)
    assert [r["step"] for r in got_rows] == [r["step"] for r in want_rows]
    for row, expected in zip(got_rows, want_rows):
        assert row.keys() == expected.keys()
        for key in expected:
            assert row[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (row["step"], key)
