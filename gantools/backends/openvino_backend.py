"""The ``openvino`` backend: the cached graph compiled by OpenVINO's CPU plugin.

bf16 is OpenVINO's ``INFERENCE_PRECISION_HINT=bf16`` (the plugin picks bf16 kernels on CPUs with
AVX512-BF16 or AMX and keeps the rest in f32); fp32 is ``f32`` (set explicitly: on such CPUs the
plugin's default is bf16). Compiled models are cached by OpenVINO in ``cache_dir() / "openvino"``.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gantools.backends.graphs import GraphBackend, Run


@functools.lru_cache(maxsize=1)
def core() -> Any:
    """The process's ``openvino.Core``, with compiled-model caching in gantools' cache folder."""
    import openvino as ov

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

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = model.create_infer_request()
        return list(request.infer(dict(enumerate(arrays))).to_tuple())  # copies (share_outputs=False)

    return run


class OpenVinoBackend(GraphBackend):
    """See the module docstring."""

    name = "openvino"

    def compile(self, file: Path, precision: str, threads: int) -> Run:
        return compile_model(file, precision, threads)


__all__ = ["OpenVinoBackend", "compile_model", "core"]
