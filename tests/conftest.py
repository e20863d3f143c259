"""Fixtures shared by several test modules (kept minimal: each module owns its helpers)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterator

import pytest

# --backend auto would export each new (random) test network to ONNX before its first image (seconds
# each): the suite runs torch unless a test says otherwise (tests/test_backends.py). Subprocesses inherit it.
os.environ.setdefault("GANTOOLS_BACKEND", "torch")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One embedded Ray per test module (shut down after it, so its idle processes do not load the
    rest of the suite; 2 CPUs, no GPUs, small object store, no dashboard,
    no worker logs), started on first use and shut down at the end; skips without Ray installed.
    The Ray engine uses an initialised Ray as it is and leaves it running."""
    ray = pytest.importorskip("ray")
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths live under it
    # workers at the driver's priority: Ray nices them to 15 by default, and on a busy machine
    # they then starve behind the load (the module stalled under two busy loops)
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=100 * 2**20, _temp_dir=temp, _system_config={"worker_niceness": 0})
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def graph_exports(monkeypatch) -> list[str]:
    """The graph variants exported from now on (``gantools.backends.graphs.export`` wrapped)."""
    import gantools.backends.graphs as graphs

    done: list[str] = []
    real = graphs.export

    def counting(g: Any, variant: str, file: Any) -> None:
        done.append(variant)
        real(g, variant, file)

    monkeypatch.setattr(graphs, "export", counting)
    return done
