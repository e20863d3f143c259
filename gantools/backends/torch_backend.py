"""The ``torch`` backend: the module itself, eager, under bf16 autocast where asked (the identity)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

from gantools.device import autocast

if TYPE_CHECKING:
    from torch import Tensor

    from gantools.nn.descriptor import ModelDescriptor


def uses_channels_last(descriptor: ModelDescriptor, precision: str, device: Any) -> bool:
    """Whether the torch backend runs ``descriptor`` at ``precision`` on ``device`` in the
    channels_last layout: on the CPU, for bf16 and for architectures that ask for it."""
    return device.type == "cpu" and (precision == "bf16" or descriptor.channels_last)


class TorchNetwork:
    """The descriptor's module at one precision (:class:`gantools.backends.base.Network`)."""

    def __init__(self, descriptor: ModelDescriptor, precision: str, device: Any) -> None:
        self.descriptor, self.precision, self.device = descriptor, precision, device

    def prepare(self, x: Tensor) -> Tensor:
        """channels_last on the CPU for bf16, or where the descriptor asks for it (the layout of the
        module's weights then, :func:`uses_channels_last`)."""
        import torch

        if uses_channels_last(self.descriptor, self.precision, self.device):
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


__all__ = ["TorchBackend", "TorchNetwork", "uses_channels_last"]
