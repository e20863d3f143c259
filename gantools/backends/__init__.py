"""Inference backends for the networks an :class:`~gantools.runner.ImageRunner` runs.

``--backend auto|torch|openvino|onnxruntime`` (``backend=`` in the Python API):

* ``torch``: the module itself, eager (bf16 autocast + channels_last where the precision says).
* ``onnxruntime``, ``openvino``: the network exported to ONNX once (:mod:`gantools.backends.graphs`:
  an on-disk cache in ``cache_dir() / "graphs"`` keyed by a sha256 of the loaded weights, the
  architecture, the opset and the graph precision, so changed weights give a new export) and run
  by ONNX Runtime (always fp32: it has no bf16 convolutions on the CPU) or OpenVINO (bf16 through
  ``INFERENCE_PRECISION_HINT`` where the precision resolves to bf16, else f32). CPU only. They
  need the ``export`` extra (``pip install 'gantools[export]'``).
* ``auto``: the backend the table :data:`gantools.backends.table.AUTO` names for the network's
  architecture family and precision, the first of its list that is installed; torch on other
  devices and for families not listed (the order ``bench/speed.py`` measured). The environment variable
  ``GANTOOLS_BACKEND`` (a backend name) replaces ``auto``'s choice (the test suite sets ``torch``:
  most tests make new random networks, each of which a graph backend would export first).

The runner keeps doing everything else (tiling, padding, frozen instance-norm statistics,
progress, finite checks); a backend only evaluates the network on a padded tensor. This module
imports neither torch nor the extras: :func:`check_backend` only looks the packages up.
"""

from __future__ import annotations

import importlib.util
import os

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
EXTRA = "export"
#: the packages each backend imports (exporting needs onnx and onnxscript, the check ONNX Runtime)
NEEDS = {"torch": (), "onnxruntime": ("onnx", "onnxscript", "onnxruntime"),
         "openvino": ("onnx", "onnxscript", "onnxruntime", "openvino")}


class BackendUnavailable(ValueError):
    """A backend that cannot run here (extra not installed, device not supported): one line."""


def missing(name: str) -> list[str]:
    """The packages backend ``name`` needs that are not installed (no import)."""
    return [pkg for pkg in NEEDS.get(name, ()) if importlib.util.find_spec(pkg) is None]


def available(name: str) -> bool:
    """True when backend ``name`` (not ``auto``) can be imported here."""
    return name in NEEDS and not missing(name)


def check_backend(name: str) -> None:
    """``BackendUnavailable`` (naming ``--backend`` and the extra) unless ``name`` is one of
    :data:`BACKENDS` and installed; ``auto`` is always fine. No package is imported."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"option --backend: {name!r} is not one of {', '.join(BACKENDS)}")
    lacking = missing(name)
    if lacking:
        raise BackendUnavailable(f"option --backend: {name} needs the {EXTRA} extra ({', '.join(lacking)} "
                                 f"not installed): pip install 'gantools[{EXTRA}]'")


def resolve_backend(name: str, arch: str, precision: str, device: str = "cpu") -> str:
    """The backend that runs: ``name`` itself, or for ``auto`` ``$GANTOOLS_BACKEND`` when set (on the
    CPU), else the first installed entry of the measured table for ``(arch, precision)``
    (``torch`` off the CPU or when nothing is listed).
    ``BackendUnavailable`` for a CPU-only backend on another device."""
    from gantools.backends.table import choices

    cpu = str(device) == "cpu"
    if name == "auto":
        forced = os.environ.get("GANTOOLS_BACKEND") or "auto"
        if forced not in BACKENDS:
            raise BackendUnavailable(f"GANTOOLS_BACKEND={forced!r} is not one of {', '.join(BACKENDS)}")
        if forced != "auto" and (cpu or forced == "torch"):
            name = forced
    if name != "auto":
        check_backend(name)
        if name != "torch" and not cpu:
            raise BackendUnavailable(f"option --backend: {name} runs on the CPU only (device {device}); "
                                     "use --device cpu or --backend torch")
        return name
    if not cpu:
        return "torch"
    return next((b for b in choices(arch, precision) if available(b)), "torch")


__all__ = ["BACKENDS", "BackendUnavailable", "available", "check_backend", "missing", "resolve_backend"]
