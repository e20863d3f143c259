"""The ``torch`` backend: the module itself, eager, under bf16 autocast where asked (the identity)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

from gantools.device import autocast

if TYPE_CHECKING:
    from torch import Tensor

    from gantools.nn.descriptor import ModelDescriptor


class TorchNetwork:
    """The descriptor's module at one precision (:class:`gantools.backends.base.Network`)."""

    def __init__(self, descriptor: ModelDescriptor, precision: str, device: Any) -> None:
        self.descriptor, self.precision, self.device = descriptor, precision, device

    def prepare(self, x: Tensor) -> Tensor:
        """channels_last for bf16 on the CPU (the layout of the module's weights then)."""
        import torch

        if self.precision == "bf16" and self.device.type == "cpu":
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def __call__(self, x: Tensor) -> Tensor:
        with autocast(self.precision, self.device):
            return self.descriptor.model(x).float()

    @contextlib.contextmanager
    def frozen(self, small: Tensor) -> Iterator[Callable[[Tensor], Tensor]]:
        from gantools.nn.layers.norm import frozen_norm_stats

        with frozen_norm_stats(self.descriptor.model, small, run=self):
            yield self


class TorchBackend:
    """See the module docstring."""

    name = "torch"

    def __init__(self, descriptor: ModelDescriptor, device: Any) -> None:
        self.descriptor, self.device = descriptor, device

    def bind(self, precision: str) -> TorchNetwork:
        return TorchNetwork(self.descriptor, precision, self.device)


__all__ = ["TorchBackend", "TorchNetwork"]
