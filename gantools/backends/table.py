"""The measured table behind ``--backend auto``: per architecture family and precision, the
backends in order of measured speed (``bench/speed.py``; numbers in ``bench/results/speed.md``).

Measured on the 2-core AVX512-BF16 machine gantools is developed on (shared, loaded: compare
within one run). The precision is the one the runner resolved (``--precision``); a bf16 request
served by ONNX Runtime runs fp32. A family or precision not measured runs on torch; other
devices always run torch. ``facegan`` is measured on its exported generator (latents -> images);
the faces plugin itself runs torch.
"""

from __future__ import annotations

#: (architecture, precision) -> backends, fastest first (bench/results/speed.md, geometric mean
#: of output MP/s over the family's shipped networks)
MEASURED: dict[tuple[str, str], tuple[str, ...]] = {
    ("srvgg", "bf16"): ("openvino", "onnxruntime", "torch"),
    ("srvgg", "fp32"): ("openvino", "onnxruntime", "torch"),
    ("stylenet", "bf16"): ("onnxruntime", "openvino", "torch"),
    ("stylenet", "fp32"): ("openvino", "onnxruntime", "torch"),
    ("facegan", "bf16"): ("onnxruntime", "openvino", "torch"),
    ("facegan", "fp32"): ("openvino", "onnxruntime", "torch"),
}


#: what ``auto`` uses: empty for now, so ``auto`` is torch. With the graph backends the README's main
#: job (``gantools run upscale examples/ -o out/``, two images at a time) hung intermittently on
#: 2026-12-07: both compute threads waiting for the GIL inside OpenVINO's ``InferRequest.infer``,
#: beside openvino_telemetry's forked sender. Until that is understood the graph backends are
#: opt-in (``--backend``, ``GANTOOLS_BACKEND``); :data:`MEASURED` is the order to restore.
AUTO: dict[tuple[str, str], tuple[str, ...]] = {}


def choices(arch: str, precision: str) -> tuple[str, ...]:
    """The measured order for ``(arch, precision)``; ``("torch",)`` when not measured."""
    return AUTO.get((arch, precision), ("torch",))


__all__ = ["AUTO", "MEASURED", "choices"]
