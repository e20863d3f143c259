"""The ``openvino`` backend: the cached graph compiled by OpenVINO's CPU plugin.

bf16 is OpenVINO's ``INFERENCE_PRECISION_HINT=bf16`` (the plugin picks bf16 kernels on CPUs with
AVX512-BF16 or AMX and keeps the rest in f32); fp32 is ``f32`` (set explicitly: on such CPUs the
plugin's default is bf16). Compiled models are cached by OpenVINO in ``cache_dir() / "openvino"``.

OpenVINO is imported without its model-conversion tools (``openvino.tools.ovc``, which gantools
does not use): importing those sends a telemetry event from a ``multiprocessing`` child forked
at import time (``openvino_telemetry``, 3 s timeout, then SIGTERM). Forked from a process whose
other threads hold locks, such a child can deadlock, and Python's exit then waits for it forever:
the README's main job hung that way. The import happens once, in the thread that builds the
backend (the main thread of a batch), before any image runs.
"""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gantools.backends.graphs import GraphBackend, Run


def import_openvino() -> Any:
    """``openvino``, imported without ``openvino.tools.ovc`` (see the module docstring); a later
    ``import openvino.tools.ovc`` by the application still works."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    tools = "openvino.tools.ovc"
    blocked = tools not in sys.modules
    if blocked:
        sys.modules[tools] = None  # type: ignore[assignment]  # openvino's __init__ catches the ImportError
    try:
        import openvino
    finally:
        if blocked and sys.modules.get(tools, 0) is None:
            del sys.modules[tools]
    return openvino


@functools.lru_cache(maxsize=1)
def core() -> Any:
    """The process's ``openvino.Core``, with compiled-model caching in gantools' cache folder."""
    ov = import_openvino()

    from gantools.models import cache_dir

    c = ov.Core()
    c.set_property({"CACHE_DIR": str(cache_dir() / "openvino")})
    return c


def compile_model(file: Path, precision: str, threads: int) -> Run:
    """A function running the ONNX file compiled for OpenVINO's CPU plugin at ``precision``."""
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    model = core().compile_model(str(file), "CPU", config)
    local = threading.local()  # one infer request per thread (a batch may run images in parallel)
    lock = threading.Lock()  # one call into the model at a time: with one stream OpenVINO runs one
    # inference at a time anyway, and no two threads then wait on each other inside OpenVINO

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        with lock:
            request = getattr(local, "request", None)
            if request is None:
                request = local.request = model.create_infer_request()
            return list(request.infer(dict(enumerate(arrays))).to_tuple())  # copies (share_outputs=False)

    return run


class OpenVinoBackend(GraphBackend):
    """See the module docstring."""

    name = "openvino"

    def __init__(self, desc: Any) -> None:
        core()  # import and set up OpenVINO here, in the thread building the backend
        super().__init__(desc)

    def compile(self, file: Path, precision: str, threads: int) -> Run:
        return compile_model(file, precision, threads)


__all__ = ["OpenVinoBackend", "compile_model", "core", "import_openvino"]
