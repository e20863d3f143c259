"""Container modules that let the one-G/one-D engine train generator and discriminator pairs.

:class:`GeneratorPair` holds ``ab`` (photo -> painting, the one users run) and ``ba`` (painting ->
photo, used for cycle losses only). Its ``forward`` is ``ab``, so the container *is* a usable
photo -> painting network: it is registered in :mod:`gantools.nn` as ``stylize_pair`` and an
export of it (keys ``ab.*`` and ``ba.*``) loads with ``load_arch(state, "stylize_pair", config)``
or, keeping only ``ab.*``, as a plain ``stylenet`` (see :func:`photo_to_painting`).

:class:`DiscriminatorPair` holds ``painting`` (real = paintings) and ``photo`` (real = photos; absent
in painting mode).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from gantools.nn import create_arch, describe_arch, register_arch
from gantools.nn.stylenet import NormStatsMixin

PAIR_ARCH = "stylize_pair"


@register_arch(PAIR_ARCH)
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

    @staticmethod
    def detect(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """A pair of stylenets: keys ``ab.*`` (and ``ba.*``) that each detect as ``stylenet``."""
        from gantools.nn.stylenet import StyleNet

        if not state_dict or not all(k.startswith(("ab.", "ba.")) for k in state_dict):
            return None
        ab = {k[3:]: v for k, v in state_dict.items() if k.startswith("ab.")}
        cfg = StyleNet.detect(ab)
        if cfg is None:
            return None
        return dict(generator="stylenet", generator_config=cfg, reverse=any(k.startswith("ba.") for k in state_dict))

    @staticmethod
    def describe(config: Mapping[str, Any]) -> dict[str, Any]:
        info = describe_arch(config["generator"], config.get("generator_config") or {})
        return dict(scale=info.scale, in_channels=info.in_channels, out_channels=info.out_channels,
                    size_multiple=info.size_multiple, tiling=info.tiling, bf16=info.bf16, min_size=info.min_size)


class DiscriminatorPair(nn.Module):
    """``painting`` discriminator (always) and ``photo`` discriminator (domain mode only)."""

    def __init__(self, painting: nn.Module, photo: nn.Module | None = None) -> None:
        super().__init__()
        self.painting = painting
        self.photo = photo

    def forward(self, x: Tensor) -> Tensor:
        return self.painting(x)


def photo_to_painting(state_dict: Mapping[str, Tensor], config: Mapping[str, Any]) -> tuple[dict[str, Tensor], str, dict]:
    """``(state_dict, arch, config)`` of the ``ab`` generator inside a ``stylize_pair`` export."""
    sub = {k[3:]: v for k, v in state_dict.items() if k.startswith("ab.")}
    if not sub:
        raise ValueError("stylize_pair weights hold no 'ab.*' (photo -> painting) generator")
    return sub, str(config.get("generator", "stylenet")), dict(config.get("generator_config") or {})


def slim_export(src: str, dst: str) -> str:
    """Rewrite a ``stylize_pair`` export as a plain photo -> painting export (half the size).

    Metadata is kept; ``arch``/``arch_config`` describe the ``ab`` generator. Returns ``dst``.
    A non-pair export is copied unchanged (tensors re-saved).
    """
    import json

    from gantools.train.export import read_export, save_safetensors

    state, meta = read_export(src)
    if meta.get("arch") == PAIR_ARCH:
        state, arch, cfg = photo_to_painting(state, json.loads(meta.get("arch_config", "{}")))
        meta = {**meta, "arch": arch, "arch_config": json.dumps(cfg, sort_keys=True)}
    save_safetensors(dst, state, meta)
    return dst


def _main(argv: list[str] | None = None) -> int:
    """``python -m gantools_stylize.pair SRC DST``: see :func:`slim_export`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m gantools_stylize.pair EXPORT.safetensors SLIM.safetensors", file=sys.stderr)
        return 2
    slim_export(args[0], args[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


__all__ = ["PAIR_ARCH", "DiscriminatorPair", "GeneratorPair", "photo_to_painting", "slim_export"]
