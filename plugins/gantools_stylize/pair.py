"""Exports of ``stylize_pair`` networks (:mod:`gantools.nn.pair`) as plain photo -> painting nets.

:func:`photo_to_painting` takes the ``ab.*`` half of a pair's state dict (a plain ``stylenet``);
:func:`slim_export` rewrites a pair export as such a half-size export
(``python -m gantools_stylize.pair SRC DST``).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor

from gantools.nn.pair import PAIR_ARCH


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


__all__ = ["photo_to_painting", "slim_export"]
