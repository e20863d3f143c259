"""The backend protocol: what :class:`~gantools.runner.ImageRunner` asks of a backend.

A :class:`Backend` is bound to one precision (``bf16``/``fp32``, already resolved by the runner)
and gives a :class:`Network`: the network on a padded (N, C, H, W) float tensor, returning the
raw (unclamped) float32 output of size (H*scale, W*scale), plus :meth:`Network.frozen` for
instance-norm networks tiled with statistics frozen from a downscaled whole image. Everything
around it (padding, tiling, blending, clamping, finite checks, progress) stays in the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ContextManager, Protocol

if TYPE_CHECKING:
    from torch import Tensor

    from gantools.nn.descriptor import ModelDescriptor


class Network(Protocol):
    """A network at one precision (see the module docstring)."""

    def prepare(self, x: Tensor) -> Tensor:
        """``x`` (the whole input, before tiling) in the memory layout this network runs fastest on."""
        ...

    def __call__(self, x: Tensor) -> Tensor:
        """The raw float32 output on ``x`` (N, C, H, W), H and W as the descriptor requires."""
        ...

    def frozen(self, small: Tensor) -> ContextManager[Callable[[Tensor], Tensor]]:
        """Capture every instance norm's statistics on ``small`` (a downscaled whole image, batch 1)
        and yield the network with those statistics frozen, for tiles of the full image."""
        ...


class Backend(Protocol):
    """An inference backend for one loaded network: ``name`` and :meth:`bind`."""

    name: str

    def bind(self, precision: str) -> Network:
        """The network at ``precision`` (``bf16`` or ``fp32``; a backend may run bf16 as fp32)."""
        ...


def create_backend(name: str, descriptor: ModelDescriptor, device: Any) -> Backend:
    """Backend ``name`` (``torch``, ``onnxruntime`` or ``openvino``, already resolved) for the
    loaded network of ``descriptor`` on ``device``; graph backends export (or find in the cache)
    the network's graph here, so an unexportable network fails at set-up (``ExportError``)."""
    if name == "torch":
        from gantools.backends.torch_backend import TorchBackend

        return TorchBackend(descriptor, device)
    if name == "onnxruntime":
        from gantools.backends.ort_backend import OrtBackend

        return OrtBackend(descriptor)
    if name == "openvino":
        from gantools.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(descriptor)
    raise ValueError(f"unknown backend {name!r}")


__all__ = ["Backend", "Network", "create_backend"]
