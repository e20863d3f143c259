"""DDP training (gantools.train.ddp): 2 gloo processes with global batch B == one process with batch B.

The ranks are started with torch.multiprocessing (spawn), as torchrun would: WORLD_SIZE, RANK,
MASTER_ADDR and MASTER_PORT in the environment. They write only to the run directory.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

import toy_task  # noqa: F401 - registers the "toy" task
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
