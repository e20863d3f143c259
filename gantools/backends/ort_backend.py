"""The ``onnxruntime`` backend: the cached graph in ONNX Runtime's CPU provider, always fp32
(ONNX Runtime has no bf16 convolutions on the CPU, so a bf16 request runs fp32)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from gantools.backends.graphs import GraphBackend, Run


def compile_session(file: Path, threads: int) -> Run:
    """A function running the ONNX file in an ONNX Runtime CPU session with ``threads`` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return session.run(None, dict(zip(names, arrays)))

    return run


class OrtBackend(GraphBackend):
    """See the module docstring."""

    name = "onnxruntime"

    def precision(self, precision: str) -> str:
        return "fp32"

    def compile(self, file: Path, precision: str, threads: int) -> Run:
        return compile_session(file, threads)


__all__ = ["OrtBackend", "compile_session"]
