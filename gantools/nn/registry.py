"""Architecture registry: build networks by name and recognise checkpoints by their state dict.

Every family is an :class:`Architecture` (recognition and loading) kept apart from its
``nn.Module`` (the computation), as spandrel does. A family file defines both and registers the
architecture with :func:`register_arch`; :data:`ARCHS` is a :class:`gantools.registry.Registry`
with the same duplicate policy as plugins and training tasks. An architecture provides:

* ``detect(state_dict) -> dict | None``: the constructor config when the state dict belongs to
  this family, else ``None``. It reads key names and tensor shapes only, never values. It may
  raise :class:`UnsupportedVariant` for a checkpoint of the family that we cannot run.
* ``describe(config) -> dict``: the :class:`~gantools.nn.descriptor.ModelDescriptor` facts
  (``scale``, channels, ``size``, ``tiling``, ``bf16``, ``receptive_radius``) of a complete config.
* ``convert(state_dict) -> dict``: legacy key names/values rewritten into this layout.
* ``build(**config) -> nn.Module`` (default: ``module(**config)``).

Checkpoint wrappers (``params_ema``, ``state_dict``, ``module.`` ...) are removed in one place,
:func:`gantools.checkpoint.unwrap_state_dict`, which :func:`detect_arch` and :func:`load_arch`
apply, so they accept either a raw ``torch.load`` result or a flat state dict.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Mapping, TypeVar

from torch import Tensor, nn

from gantools.nn.descriptor import ModelDescriptor
from gantools.registry import NotRegistered, Registry


class UnknownArchitecture(ValueError):
    """No registered architecture recognises a state dict (message lists the families)."""


class UnsupportedVariant(UnknownArchitecture):
    """The state dict belongs to a known family, but to a variant this package cannot run."""


class ArchitectureNotFound(NotRegistered):
    """No architecture of that name (message lists the known ones)."""


class Architecture:
    """A network family: how to recognise, describe, convert and build it (see module docstring)."""

    id: ClassVar[str]
    module: ClassVar[Callable[..., nn.Module]]

    def detect(self, state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """Constructor config for ``state_dict``, or ``None`` (default: never detected)."""
        return None

    def describe(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """:class:`ModelDescriptor` facts for a complete ``config`` (default: the defaults)."""
        return {}

    def convert(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``state_dict`` in this implementation's key layout (default: unchanged)."""
        return dict(state_dict)

    def build(self, **config: Any) -> nn.Module:
        return self.module(**config)

    @property
    def detects(self) -> bool:
        return type(self).detect is not Architecture.detect


ARCHS: Registry[Architecture] = Registry("architecture", ArchitectureNotFound, identity=type)

A = TypeVar("A", bound=type[Architecture])


def register_arch(cls: A) -> A:
    """Class decorator: register an instance of the :class:`Architecture` subclass under ``cls.id``."""
    ARCHS.register(cls.id, cls(), source=f"{cls.__module__}.{cls.__qualname__}")
    return cls


def list_archs(pattern: str = "*") -> list[str]:
    """Registered architecture names matching the shell-style ``pattern``, sorted."""
    return ARCHS.names(pattern)


def full_config(name: str, config: Mapping[str, Any] | None = None) -> dict:
    """``config`` completed with the constructor defaults of ``name`` (unknown keys raise)."""
    params = inspect.signature(ARCHS.get(name).module).parameters
    config = dict(config or {})
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
    return ARCHS.get(name).build(**config)


def describe_arch(name: str, config: Mapping[str, Any] | None = None) -> ModelDescriptor:
    """The :class:`ModelDescriptor` (``model=None``) of ``name`` built with ``config``."""
    cfg = full_config(name, config)
    return ModelDescriptor(arch=name, config=cfg, **ARCHS.get(name).describe(cfg))


def _keys_preview(state_dict: Mapping[str, Any], n: int = 5) -> str:
    keys = list(state_dict)
    more = f", ... ({len(keys)} keys)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more if keys else "no keys"


def _unwrap(state_dict: Any) -> dict[str, Tensor]:
    from gantools.checkpoint import unwrap_state_dict

    return unwrap_state_dict(state_dict)


def detect_arch(state_dict: Mapping[str, Any]) -> ModelDescriptor:
    """Recognise the family and config of ``state_dict`` (a descriptor with ``model=None``).

    Raises :class:`UnsupportedVariant` when a family recognises it but cannot run it, and
    :class:`UnknownArchitecture` (listing the supported families and the first keys) when no
    family does, or when several do.
    """
    sd = _unwrap(state_dict)
    found: list[tuple[str, dict]] = []
    unsupported: list[str] = []
    for name, arch in ARCHS.items():
        try:
            cfg = arch.detect(sd)
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
    families = ", ".join(n for n, a in ARCHS.items() if a.detects)
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


def _descriptor_for(sd: dict[str, Tensor], name: str | None, config: Mapping[str, Any] | None) -> ModelDescriptor:
    if name is None:
        desc = detect_arch(sd)
        return describe_arch(desc.arch, {**desc.config, **config}) if config else desc
    if config is not None:
        return describe_arch(name, config)
    cfg = ARCHS.get(name).detect(sd)
    if cfg is None:
        raise UnknownArchitecture(f"state dict is not a {name!r} checkpoint (keys: {_keys_preview(sd)})")
    return describe_arch(name, cfg)


def load_arch(
    state_dict: Mapping[str, Any],
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> ModelDescriptor:
    """Build the network for ``state_dict``, load it strictly and return its descriptor.

    Without ``name`` the family and config are detected (``config`` then overrides detected
    values, e.g. an activation type detection cannot see). With ``name`` and no ``config`` that
    family's detector supplies the config. ``descriptor.model`` is in eval mode on the CPU. A
    state dict that does not fit raises ``ValueError`` with a one-line summary.
    """
    sd = _unwrap(state_dict)
    desc = _descriptor_for(sd, name, config)
    arch = ARCHS.get(desc.arch)
    sd = arch.convert(sd)
    model = arch.build(**desc.config)
    problem = mismatch_summary(model, sd)
    if problem:
        cfg = ", ".join(f"{k}={v!r}" for k, v in desc.config.items())
        raise ValueError(f"state dict does not fit {desc.arch}({cfg}): {problem}")
    model.load_state_dict(sd, strict=True)
    desc.model = model.eval()
    return desc


__all__ = [
    "ARCHS", "Architecture", "ArchitectureNotFound", "UnknownArchitecture", "UnsupportedVariant",
    "create_arch", "describe_arch", "detect_arch", "full_config", "list_archs", "load_arch",
    "mismatch_summary", "register_arch",
]
