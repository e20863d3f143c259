"""The measured table behind ``--backend auto``: per architecture family and precision, the
backends in order of measured speed (``bench/speed.py``; numbers in ``bench/results/speed.md``).

Measured on the 2-core AVX512-BF16 machine gantools is developed on (shared, loaded: compare
within one run). The precision is the one the runner resolved (``--precision``); a bf16 request
served by ONNX Runtime runs fp32. A family or precision not measured runs on torch; other
devices always run torch. ``facegan`` is measured on its exported generator (latents -> images);
the faces plugin runs its synthesis network by this row (:mod:`gantools_faces.backend`).
"""

from __future__ import annotations

#: (architecture, precision) -> backends, fastest first (bench/results/speed.md, geometric mean
#: of output MP/s over the family's shipped networks)
MEASURED: dict[tuple[str, str], tuple[str, ...]] = {
    ("srvgg", "bf16"): ("onnxruntime", "openvino", "torch"),
    ("srvgg", "fp32"): ("torch", "openvino", "onnxruntime"),
    ("srvgg-narrow", "bf16"): ("torch", "openvino", "onnxruntime"),
    ("srvgg-narrow", "fp32"): ("torch", "openvino", "onnxruntime"),
    ("stylenet", "bf16"): ("onnxruntime", "openvino", "torch"),
    ("stylenet", "fp32"): ("onnxruntime", "openvino", "torch"),
    ("facegan", "bf16"): ("onnxruntime", "openvino", "torch"),
    ("facegan", "fp32"): ("onnxruntime", "openvino", "torch"),
}


#: what ``auto`` uses: the measured order. (It was torch-only for a while after the README's main job
#: hung once with OpenVINO. The likely cause, removed since: OpenVINO's import-time telemetry forks a
#: ``multiprocessing`` child, and it was imported from a worker thread while the other one ran; see
#: :mod:`gantools.backends.openvino_backend`. The hang was not reproduced in 11 fresh-cache runs.)
AUTO: dict[tuple[str, str], tuple[str, ...]] = MEASURED


def choices(arch: str, precision: str) -> tuple[str, ...]:
    """The measured order for ``(arch, precision)``; ``("torch",)`` when not measured."""
    return AUTO.get((arch, precision), ("torch",))


__all__ = ["AUTO", "MEASURED", "choices"]
