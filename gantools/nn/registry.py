"""Architecture registry: build networks by name and recognise checkpoints by their state dict.

Every architecture family registers itself with :func:`register_arch`. The registered object is
a class (or factory) that may also provide:

* ``detect(state_dict) -> dict | None`` (classmethod/staticmethod): the constructor config when
  the state dict belongs to this family, else ``None``. It reads key names and tensor shapes
  only, never values. It may raise :class:`UnsupportedVariant` for a checkpoint that is of the
  family but of a variant we cannot run (the message says which and why).
* ``describe(config) -> dict``: ``scale``, ``in_channels``, ``out_channels``, ``size_multiple``,
  ``tiling``, ``bf16`` and optionally ``min_size`` for a given (complete) config.
* ``convert(state_dict) -> dict``: rewrite legacy key names/values into this implementation's
  layout (e.g. old ESRGAN names, pre-0.4 InstanceNorm buffers); called by :func:`load_arch`.

Checkpoint wrappers (``params_ema``, ``state_dict``, ``module.`` ...) are removed in one place,
:func:`gantools.checkpoint.unwrap_state_dict`, which :func:`detect_arch` and :func:`load_arch`
apply, so they accept either a raw ``torch.load`` result or a flat state dict.
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import Tensor, nn

_ARCHS: dict[str, Any] = {}
_INFO_KEYS = ("scale", "in_channels", "out_channels", "size_multiple", "tiling", "bf16")


class UnknownArchitecture(ValueError):
    """No registered architecture recognises a state dict (message lists the families)."""


class UnsupportedVariant(UnknownArchitecture):
    """The state dict belongs to a known family, but to a variant this package cannot run."""


@dataclass
class ArchInfo:
    """What a network is and how to feed it.

    ``scale`` is output size / input size; ``size_multiple`` the factor input height and width
    must be a multiple of (callers pad, then crop); ``min_size`` the smallest input side;
    ``tiling`` whether tile-by-tile inference gives seam-free results (for instance-norm nets
    only with frozen statistics, see :mod:`gantools.nn.stylenet`); ``bf16`` whether bf16
    autocast is safe for it. ``config`` is the complete constructor config.
    """

    name: str
    config: dict = field(default_factory=dict)
    scale: int = 1
    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    tiling: bool = False
    bf16: bool = False
    min_size: int = 1


def register_arch(name: str) -> Callable[[Any], Any]:
    """Decorator registering a class or factory under ``name`` (see the module docstring)."""

    def decorator(obj: Any) -> Any:
        if not callable(obj):
            raise TypeError(f"register_arch({name!r}) needs a class or factory, got {obj!r}")
        old = _ARCHS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (obj.__module__, obj.__qualname__):
            raise ValueError(f"architecture {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        _ARCHS[name] = obj
        return obj

    return decorator


def list_archs(pattern: str = "*") -> list[str]:
    """Registered architecture names matching the shell-style ``pattern``, sorted."""
    return sorted(n for n in _ARCHS if fnmatch.fnmatch(n, pattern))


def _get(name: str) -> Any:
    try:
        return _ARCHS[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r} (known: {', '.join(list_archs()) or 'none'})") from None


def full_config(name: str, config: Mapping[str, Any] | None = None) -> dict:
    """``config`` completed with the constructor defaults of ``name`` (unknown keys raise)."""
    obj = _get(name)
    config = dict(config or {})
    params = inspect.signature(obj).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(config) - set(params))
        if unknown:
            raise TypeError(f"architecture {name!r} has no option(s) {', '.join(unknown)}")
    out = {k: p.default for k, p in params.items()
           if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}
    out.update(config)
    return out


def create_arch(name: str, **config: Any) -> nn.Module:
    """Build architecture ``name`` with ``config`` (missing options take their defaults)."""
    return _get(name)(**config)


def describe_arch(name: str, config: Mapping[str, Any] | None = None) -> ArchInfo:
    """The :class:`ArchInfo` of ``name`` built with ``config`` (no model is built)."""
    obj = _get(name)
    cfg = full_config(name, config)
    described = obj.describe(cfg) if hasattr(obj, "describe") else {}
    known = {k: described[k] for k in (*_INFO_KEYS, "min_size") if k in described}
    return ArchInfo(name=name, config=cfg, **known)


def _keys_preview(state_dict: Mapping[str, Any], n: int = 5) -> str:
    keys = list(state_dict)
    more = f", ... ({len(keys)} keys)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more if keys else "no keys"


def _unwrap(state_dict: Any) -> dict[str, Tensor]:
    from gantools.checkpoint import unwrap_state_dict

    return unwrap_state_dict(state_dict)


def detect_arch(state_dict: Mapping[str, Any]) -> ArchInfo:
    """Recognise the family and config of ``state_dict``.

    Raises :class:`UnsupportedVariant` when a family recognises it but cannot run it, and
    :class:`UnknownArchitecture` (listing the supported families and the first keys) when no
    family does.
    """
    sd = _unwrap(state_dict)
    found: list[tuple[str, dict]] = []
    unsupported: list[str] = []
    for name in list_archs():
        detect = getattr(_ARCHS[name], "detect", None)
        if detect is None:
            continue
        try:
            cfg = detect(sd)
        except UnsupportedVariant as exc:
            unsupported.append(str(exc))
            continue
        if cfg is not None:
            found.append((name, cfg))
    if len(found) > 1:
        names = ", ".join(n for n, _ in found)
        raise UnknownArchitecture(f"state dict is ambiguous: it matches {names}; pass name= explicitly")
    if found:
        return describe_arch(*found[0])
    if unsupported:
        raise UnsupportedVariant("; ".join(unsupported))
    families = ", ".join(n for n in list_archs() if hasattr(_ARCHS[n], "detect"))
    raise UnknownArchitecture(
        f"unknown architecture: no supported family ({families}) matches this state dict "
        f"(keys: {_keys_preview(sd)})"
    )


def _shape(t: Any) -> str:
    return "[" + ",".join(map(str, getattr(t, "shape", ()))) + "]"


def mismatch_summary(model: nn.Module, state_dict: Mapping[str, Tensor], n: int = 3) -> str:
    """One line describing how ``state_dict`` does not fit ``model`` ('' when it fits)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {_shape(state_dict[k])} vs model {_shape(v)}"
              for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = ", ..." if len(items) > n else ""
            parts.append(f"{len(items)} {label} ({', '.join(items[:n])}{more})")
    return "; ".join(parts)


def load_arch(
    state_dict: Mapping[str, Any],
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, ArchInfo]:
    """Build the network for ``state_dict`` and load it strictly; returns ``(model, info)``.

    Without ``name`` the family and config are detected (``config`` then overrides detected
    values, e.g. an activation type detection cannot see). With ``name`` and no ``config`` that
    family's detector supplies the config. The model is returned in eval mode on CPU. A state
    dict that does not fit raises ``ValueError`` with a one-line summary.
    """
    sd = _unwrap(state_dict)
    if name is None:
        info = detect_arch(sd)
        if config:
            info = describe_arch(info.name, {**info.config, **config})
    elif config is None:
        detect = getattr(_get(name), "detect", None)
        cfg = detect(sd) if detect is not None else None
        if cfg is None:
            raise UnknownArchitecture(f"state dict is not a {name!r} checkpoint (keys: {_keys_preview(sd)})")
        info = describe_arch(name, cfg)
    else:
        info = describe_arch(name, config)
    obj = _ARCHS[info.name]
    if hasattr(obj, "convert"):
        sd = obj.convert(sd)
    model = create_arch(info.name, **info.config)
    problem = mismatch_summary(model, sd)
    if problem:
        cfg = ", ".join(f"{k}={v!r}" for k, v in info.config.items())
        raise ValueError(f"state dict does not fit {info.name}({cfg}): {problem}")
    model.load_state_dict(sd, strict=True)
    return model.eval(), info


__all__ = [
    "ArchInfo", "UnknownArchitecture", "UnsupportedVariant", "create_arch", "describe_arch",
    "detect_arch", "full_config", "list_archs", "load_arch", "mismatch_summary", "register_arch",
]
