"""Container modules that let the one-G/one-D engine train generator and discriminator pairs.

:class:`GeneratorPair` holds ``ab`` (photo -> painting, the one users run) and ``ba`` (painting ->
photo, used for cycle losses only). Its ``forward`` is ``ab``, so the container *is* a usable
photo -> painting network, registered as ``stylize_pair``: an export of it (keys ``ab.*`` and
``ba.*``) loads with ``load_arch(state, "stylize_pair", config)`` or is detected, and its
descriptor is that of the ``ab`` generator.

:class:`DiscriminatorPair` (``stylize_discriminator_pair``) holds ``painting`` (real = paintings)
and ``photo`` (real = photos; absent in painting mode).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from gantools.nn.layers.norm import NormStatsMixin
from gantools.nn.registry import ARCHS, Architecture, create_arch, describe_arch, register_arch

PAIR_ARCH = "stylize_pair"


class GeneratorPair(NormStatsMixin, nn.Module):
    """Two generators of architecture ``generator`` built with ``generator_config``.

    ``forward(x) == ab(x)``. ``reverse=False`` builds no ``ba`` (then it is a thin wrapper).
    """

    def __init__(self, generator: str = "stylenet", generator_config: Mapping[str, Any] | None = None,
                 reverse: bool = True) -> None:
        super().__init__()
        cfg = dict(generator_config or {})
        self.ab = create_arch(generator, **cfg)
        self.ba = create_arch(generator, **cfg) if reverse else None

    def forward(self, x: Tensor) -> Tensor:
        return self.ab(x)


class DiscriminatorPair(nn.Module):
    """``painting`` discriminator (always) and ``photo`` discriminator (domain mode only)."""

    def __init__(self, painting: nn.Module, photo: nn.Module | None = None) -> None:
        super().__init__()
        self.painting = painting
        self.photo = photo

    def forward(self, x: Tensor) -> Tensor:
        return self.painting(x)


@register_arch
class GeneratorPairArch(Architecture):
    """Exports of ``gantools train stylize``'s two-generator mode (keys ``ab.*``, ``ba.*``)."""

    id = PAIR_ARCH
    module = GeneratorPair

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """A pair of stylenets: keys ``ab.*`` (and ``ba.*``) that each detect as ``stylenet``."""
        if not state_dict or not all(k.startswith(("ab.", "ba.")) for k in state_dict):
            return None
        ab = {k[3:]: v for k, v in state_dict.items() if k.startswith("ab.")}
        cfg = ARCHS.get("stylenet").detect(ab)
        if cfg is None:
            return None
        return dict(generator="stylenet", generator_config=cfg, reverse=any(k.startswith("ba.") for k in state_dict))

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        inner = describe_arch(config["generator"], config.get("generator_config") or {})
        return dict(scale=inner.scale, in_channels=inner.in_channels, out_channels=inner.out_channels,
                    size=inner.size, tiling=inner.tiling, bf16=inner.bf16, receptive_radius=inner.receptive_radius)


@register_arch
class DiscriminatorPairArch(Architecture):
    """The discriminators of ``stylize_pair`` training (built from two registered ones)."""

    id = "stylize_discriminator_pair"
    module = DiscriminatorPair


__all__ = ["PAIR_ARCH", "DiscriminatorPair", "GeneratorPair"]
