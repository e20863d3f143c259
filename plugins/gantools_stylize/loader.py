"""Which weights ``stylize`` runs: a shipped style, a gantools export or a third-party checkpoint.

:func:`check` validates ``--style`` / ``--weights`` cheaply (at plugin construction); :func:`resolve`
reads them into a :class:`StyleWeights` (state dict plus architecture, at setup) or raises
:class:`~gantools.plugin.OptionError` with a message a user can act on.
Accepted architectures: ``stylenet`` (ours), ``stylize_pair`` (our two-generator export: its
``ab`` half is used), ``cyclegan`` (CycleGAN/pix2pix ResnetGenerator, ``latest_net_G*.pth``) and
``animegan2``. :func:`style_summary` reads the manifest only (no torch), for ``gantools info``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from gantools.plugin import OptionError

TASK = "stylize"
STYLE_ARCHS = ("stylenet", "cyclegan", "animegan2")
WHAT = "a style-transfer model"
TRAIN_HINT = ("train one with `gantools train stylize --style-images PAINTING --content PHOTOS --out runs/mine` "
              "and run it with --weights runs/mine/export.safetensors")


@dataclass
class StyleWeights:
    """A photo -> painting network to build: ``arch`` + ``config`` from ``gantools.nn``."""

    state: dict
    arch: str
    config: dict
    label: str
    meta: dict = field(default_factory=dict)


def shipped_styles() -> list[Any]:
    """Manifest entries of task ``stylize`` (``ShippedModel``), in manifest order."""
    from gantools.weights import shipped

    return shipped(TASK)


def style_summary() -> str:
    """``"starry_night (starry_night.jpg), monet (monet2photo/monet, domain)"`` or a hint; never raises."""
    try:
        models = shipped_styles()
    except Exception as exc:  # a broken manifest must not break `gantools list`
        return f"manifest unreadable ({type(exc).__name__})"
    if not models:
        return "none shipped yet (gantools train stylize)"
    parts = []
    for m in models:
        src = m.extra.get("source", "")
        extra = ", domain" if m.extra.get("mode") == "domain" else ""
        parts.append(f"{m.name} ({src}{extra})" if src else m.name)
    return ", ".join(parts)


def check(style: str | None, weights: str | None) -> None:
    """Cheap checks of ``--style`` / ``--weights`` (names and files; no weights are read)."""
    if style and weights:
        raise OptionError("option --weights replaces --style: give one of them")
    if weights:
        from gantools.checkpoint import check_task, check_weights_file, peek_metadata

        check_weights_file(weights)
        check_task(weights, peek_metadata(weights), TASK, WHAT)
        return
    _shipped_style(style)


def _shipped_style(style: str | None) -> Any:
    models = shipped_styles()
    known = ", ".join(m.name for m in models)
    if not models:
        raise OptionError(f"no styles are shipped with this gantools yet: {TRAIN_HINT}")
    if not style:
        raise OptionError(f"option --style: choose a style (shipped: {known}) or pass --weights FILE")
    found = [m for m in models if m.name == style]
    if not found:
        raise OptionError(f"option --style: unknown style {style!r} (shipped: {known})")
    return found[0]


def resolve(style: str | None, weights: str | None) -> StyleWeights:
    """Read the network for ``--style NAME`` or ``--weights FILE`` (exactly one of them)."""
    check(style, weights)
    if weights:
        return from_file(weights)
    try:
        path = _shipped_style(style).verify()
    except (OSError, ValueError) as exc:
        raise OptionError(f"style {style!r}: {exc}") from None
    return from_file(str(path), label=f"style {style}")


def from_file(path: str, label: str | None = None) -> StyleWeights:
    """Read ``path`` and check it holds a photo -> painting generator we can run (``OptionError``
    ``"<path>: <problem>"`` otherwise, from :func:`gantools.checkpoint.load_weights`)."""
    from gantools.checkpoint import EXPORT_FORMAT_PREFIX, load_weights

    label = label or path
    state, meta = load_weights(path, TASK, WHAT)
    if meta.get("format", "").startswith(EXPORT_FORMAT_PREFIX):
        return _from_export(path, state, meta, label)
    return _from_third_party(path, state, label)


def _from_export(path: str, state: dict, meta: dict, label: str) -> StyleWeights:
    arch = meta.get("arch", "")
    try:
        config = json.loads(meta.get("arch_config") or "{}")
    except json.JSONDecodeError:
        raise OptionError(f"{path}: export metadata 'arch_config' is not valid JSON") from None
    from gantools.nn.pair import PAIR_ARCH
    from gantools_stylize.pair import photo_to_painting

    if arch == PAIR_ARCH:
        state, arch, config = photo_to_painting(state, config)
    if arch not in STYLE_ARCHS:
        raise OptionError(f"{path}: architecture {arch!r} is not a style-transfer generator ({', '.join(STYLE_ARCHS)})")
    return StyleWeights(state, arch, config, label, dict(meta))


def _from_third_party(path: str, state: dict, label: str) -> StyleWeights:
    from gantools.nn.pair import PAIR_ARCH
    from gantools_stylize.pair import photo_to_painting
    from gantools.nn import UnknownArchitecture, detect_arch

    try:
        info = detect_arch(state)
    except UnknownArchitecture as exc:
        hint = _cyclegan_hint(state)
        raise OptionError(f"{path}: {hint or exc}") from None
    if info.arch == PAIR_ARCH:
        sub, arch, cfg = photo_to_painting(state, info.config)
        return StyleWeights(sub, arch, cfg, label)
    if info.arch not in STYLE_ARCHS:
        what = f"a x{info.scale} super-resolution network" if info.scale != 1 else "not a generator we can stylise with"
        raise OptionError(f"{path}: this is a {info.arch!r} checkpoint ({what}); stylize takes "
                          "gantools stylize exports, CycleGAN/pix2pix ResnetGenerator or AnimeGANv2 weights")
    return StyleWeights(state, info.arch, info.config, label)


def _cyclegan_hint(state: dict) -> str | None:
    """A precise message for a ResnetGenerator-like state dict that detection refused."""
    if "model.1.weight" not in state or not all(k.startswith("model.") for k in state):
        return None
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    convs = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k))})
    n = len(blocks)
    found = f"model.{blocks[0]}..model.{blocks[-1]}" if blocks else "none"
    return (
        f"looks like a CycleGAN/pix2pix ResnetGenerator, but its {n} residual block(s) ({found}) and "
        f"output conv (model.{convs[-1] if convs else '?'}) do not fit the resnet_Nblocks layout "
        f"(blocks model.10..model.{9 + n}, output conv model.{17 + n}; e.g. resnet_9blocks: model.10..18, "
        "model.26; resnet_6blocks: model.10..15, model.23): the file is damaged or from another generator"
    )


__all__ = ["STYLE_ARCHS", "StyleWeights", "check", "from_file", "resolve", "shipped_styles", "style_summary"]
