"""Plugin registry: every plugin, built-in or third-party, comes from an entry point.

Plugin packages declare an entry point in the group ``gantools.plugins`` whose value is a
module (importing it registers its plugins with the :func:`register_plugin` decorator) or a
``module:Class``. The built-in plugins are ordinary such packages (``gantools_upscale``,
``gantools_stylize``, ... in the repository's ``plugins/`` source root), declared in gantools'
own ``pyproject.toml``: the registry has no special path for them. Discovery never imports torch and never loads
weights; a third-party entry point that fails to import is recorded as broken with its error and
everything else keeps working.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from gantools.plugin import PLATFORM_OPTIONS, Descriptor, OptionError, Plugin

ENTRY_POINT_GROUP = "gantools.plugins"


class PluginNotFound(KeyError):
    """No plugin of that name (message lists the known ones)."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class RegistrationError(ValueError):
    """A plugin class whose descriptor breaks the contract."""


@dataclass
class Entry:
    """One row of the registry: a plugin class, or a broken third-party entry point."""

    name: str
    source: str
    cls: type[Plugin] | None = None
    error: str | None = None

    @property
    def descriptor(self) -> Descriptor | None:
        return self.cls.descriptor if self.cls is not None else None

    @property
    def ok(self) -> bool:
        return self.cls is not None


_entries: dict[str, Entry] = {}
_discovered = False
_current_source = "gantools"


def register_plugin(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: validate ``cls.descriptor`` and add the class to the registry."""
    desc = getattr(cls, "descriptor", None)
    if not isinstance(desc, Descriptor):
        raise RegistrationError(f"{cls.__qualname__} has no Descriptor in .descriptor")
    if not issubclass(cls, Plugin):
        raise RegistrationError(f"{cls.__qualname__} must subclass gantools.Plugin")
    if not desc.name.replace("-", "").replace("_", "").isalnum():
        raise RegistrationError(f"plugin name {desc.name!r} must be alphanumeric (with - or _)")
    seen: set[str] = set()
    for opt in desc.options:
        if opt.name in PLATFORM_OPTIONS:
            raise RegistrationError(
                f"plugin {desc.name!r}: option --{opt.name.replace('_', '-')} clashes with a platform option"
            )
        if not opt.name.isidentifier():
            raise RegistrationError(f"plugin {desc.name!r}: option name {opt.name!r} must be a Python identifier")
        if opt.name in seen:
            raise RegistrationError(f"plugin {desc.name!r}: option {opt.name!r} declared twice")
        if opt.type not in (int, float, str, bool):
            raise RegistrationError(f"plugin {desc.name!r}: option {opt.name!r} has unsupported type")
        seen.add(opt.name)
    existing = _entries.get(desc.name)
    if existing is not None and existing.cls is not None and existing.cls is not cls:
        if existing.cls.__module__ != cls.__module__ or existing.cls.__qualname__ != cls.__qualname__:
            raise RegistrationError(f"plugin name {desc.name!r} is already registered by {existing.source}")
    _entries[desc.name] = Entry(desc.name, _current_source, cls)
    return cls


def _import_entry_points() -> None:
    global _current_source
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        source = f"{ep.dist.name if ep.dist else 'entry point'} ({ep.value})"
        _current_source = source
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Plugin) and obj.descriptor.name not in _entries:
                register_plugin(obj)
        except Exception as exc:  # a broken third-party plugin must not break gantools
            if ep.name not in _entries:
                _entries[ep.name] = Entry(ep.name, source, error=f"{type(exc).__name__}: {exc}")
        finally:
            _current_source = "gantools"


def discover(refresh: bool = False) -> None:
    """Import every ``gantools.plugins`` entry point (once)."""
    global _discovered
    if _discovered and not refresh:
        return
    _discovered = True
    _import_entry_points()


def list_plugins(pattern: str = "*", *, include_broken: bool = True) -> list[Entry]:
    """Registry entries whose name matches the shell-style ``pattern``, sorted by name."""
    discover()
    rows = [e for n, e in sorted(_entries.items()) if fnmatch.fnmatch(n, pattern)]
    return [e for e in rows if include_broken or e.ok]


def get_plugin_class(name: str) -> type[Plugin]:
    """The plugin class registered as ``name``; raises :class:`PluginNotFound` or ``ImportError``."""
    discover()
    entry = _entries.get(name)
    if entry is None:
        known = ", ".join(sorted(n for n, e in _entries.items() if e.ok)) or "none"
        raise PluginNotFound(f"unknown plugin {name!r} (known: {known})")
    if entry.cls is None:
        raise ImportError(f"plugin {name!r} from {entry.source} failed to import: {entry.error}")
    return entry.cls


def load(name: str, **options: Any) -> Plugin:
    """Create plugin ``name`` with platform settings and plugin options, validated here."""
    return get_plugin_class(name)(**options)


__all__ = [
    "Entry", "OptionError", "PluginNotFound", "RegistrationError", "discover", "get_plugin_class",
    "list_plugins", "load", "register_plugin",
]
