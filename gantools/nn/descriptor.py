"""What a network is and how to feed it: the :class:`ModelDescriptor` an architecture returns.

The architecture (:class:`gantools.nn.registry.Architecture`) is the one owner of these facts:
scale, channels, size requirements, how the network may be tiled, whether bf16 autocast is safe
for it and how far its receptive field reaches. Plugins and runners read them from here and
never restate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


class Tiling(str, Enum):
    """How tile-by-tile inference relates to whole-image inference for a network.

    ``SUPPORTED``: tiles with enough context reproduce the whole image (convolutional nets).
    ``INTERNAL``: only with frozen normalisation statistics computed once on the whole image
    (instance-norm nets; see :mod:`gantools.nn.layers.norm`).
    ``DISCOURAGED``: tiles change the result (group norm, global layers): run whole.
    """

    SUPPORTED = "supported"
    INTERNAL = "internal"
    DISCOURAGED = "discouraged"


@dataclass(frozen=True)
class SizeRequirements:
    """Input height and width must be at least ``minimum`` and, when ``pad``, multiples of
    ``multiple`` (callers pad at the bottom/right, then crop the output).

    ``pad=False``: the network takes any size of at least ``minimum`` and returns at least the
    scaled size (a strided encoder with a transposed or resize decoder): callers crop the output
    and never pad to the multiple, so no padding enters normalisation statistics; ``multiple``
    then only aligns tile boundaries with the strides.
    """

    multiple: int = 1
    minimum: int = 1
    pad: bool = True


@dataclass
class ModelDescriptor:
    """A network of a registered architecture and everything a caller needs to run it.

    ``arch`` is the registered architecture name and ``config`` its complete constructor config.
    ``scale`` is output size / input size. ``receptive_radius`` is the number of input pixels on
    each side that influence one output pixel (``None``: unbounded or unknown). ``model`` is the
    loaded ``nn.Module`` in eval mode on the CPU, or ``None`` for a descriptor that only
    describes (from :func:`gantools.nn.registry.detect_arch` / ``describe_arch``). On the CPU the
    torch backend runs bf16 in the channels_last layout, and fp32 too where ``channels_last`` is set
    (an architecture measured faster in it).
    """

    arch: str
    config: dict[str, Any] = field(default_factory=dict)
    scale: int = 1
    in_channels: int = 3
    out_channels: int = 3
    size: SizeRequirements = SizeRequirements()
    tiling: Tiling = Tiling.DISCOURAGED
    bf16: bool = False
    receptive_radius: int | None = None
    model: nn.Module | None = None
    family: str = ""
    channels_last: bool = False

    @property
    def backend_family(self) -> str:
        """The row of the backend table (:mod:`gantools.backends.table`) this network runs by:
        ``family`` where the architecture sets one (configurations of one architecture whose
        fastest backend differs), else ``arch``."""
        return self.family or self.arch


__all__ = ["ModelDescriptor", "SizeRequirements", "Tiling"]
