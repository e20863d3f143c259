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

import contextlib
import fnmatch
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

from gantools.plugin import PLATFORM_OPTIONS, Descriptor, OptionError, Plugin

ENTRY_POINT_GROUP = "gantools.plugins"


T = TypeVar("T")


class NotRegistered(KeyError):
    """No object of that name in a :class:`Registry` (the message lists the known ones)."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class PluginNotFound(NotRegistered):
    """No plugin of that name (message lists the known ones)."""


class RegistrationError(ValueError):
    """A registration that breaks the rules: a bad descriptor, or a name taken by another object."""


def _qualname(obj: Any) -> tuple[str, str]:
    return getattr(obj, "__module__", ""), getattr(obj, "__qualname__", repr(obj))


class Registry(Generic[T]):
    """Named objects of one kind (plugins, architectures, training tasks), one duplicate policy.

    Registering a name twice is allowed only for the same object, or an object with the same
    module and qualified name (a module imported again); anything else raises
    :class:`RegistrationError` naming who registered the name first. Lookups of unknown names
    raise ``missing`` (a :class:`NotRegistered` subclass) listing the known names.
    """

    def __init__(self, kind: str, missing: type[NotRegistered] = NotRegistered,
                 identity: Callable[[T], Any] = lambda obj: obj) -> None:
        self.kind = kind
        self._missing = missing
        self._identity = identity  # what "the same object" means for this registry's values
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def register(self, name: str, obj: T, source: str = "gantools") -> T:
        """Add ``obj`` under ``name`` (see the class docstring for duplicates); returns ``obj``."""
        old = self._items.get(name)
        if old is not None:
            a, b = self._identity(old), self._identity(obj)
            if a is not b and _qualname(a) != _qualname(b):
                raise RegistrationError(f"{self.kind} name {name!r} is already registered by {self._sources[name]}")
        self._items[name] = obj
        self._sources.setdefault(name, source)  # the first registration names the source
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def wrap(obj: T) -> T:
            return self.register(name, obj, source=".".join(_qualname(obj)))

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise self._missing(f"unknown {self.kind} {name!r} (known: {known})") from None

    def source(self, name: str) -> str:
        """Who registered ``name`` (a distribution and entry point, or a module path)."""
        self.get(name)
        return self._sources[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style ``pattern``, sorted."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def in_order(self) -> list[T]:
        """The registered objects in registration order."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Registrations made inside the ``with`` block are undone when it ends (for tests)."""
        saved = dict(self._items), dict(self._sources)
        try:
            yield self
        finally:
            self._items, self._sources = saved


@dataclass
class Entry:
    """One row of the registry: a plugin class, or a broken third-party entry point.

    ``status``: ``ok``; ``broken`` (``error`` says why: an import error, or nothing registered);
    ``ignored`` (a plugin whose name another plugin already has; ``error`` names that one).
    """

    name: str
    source: str
    cls: type[Plugin] | None = None
    error: str | None = None
    ignored: bool = False

    @property
    def status(self) -> str:
        return "ok" if self.cls is not None else "ignored" if self.ignored else "broken"

    @property
    def descriptor(self) -> Descriptor | None:
        return self.cls.descriptor if self.cls is not None else None

    @property
    def ok(self) -> bool:
        return self.cls is not None


#: every plugin entry (working or broken); an Entry's identity is its class
PLUGINS: Registry[Entry] = Registry("plugin", PluginNotFound, identity=lambda e: e.cls if e.cls is not None else e)
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
    taken = PLUGINS.get(desc.name) if desc.name in PLUGINS else None
    if (taken is not None and _current_source != "gantools" and taken.cls is not cls
            and _qualname(taken.cls) != _qualname(cls)):  # an entry point reusing a taken name: listed, not fatal
        _record_duplicate(desc.name, _current_source)
        return cls
    PLUGINS.register(desc.name, Entry(desc.name, _current_source, cls), source=_current_source)
    return cls


def _builtin_first(ep: Any) -> bool:
    """Sort key: gantools' own entry points load first, so a built-in name stays the built-in's."""
    return not (ep.dist is not None and ep.dist.name == "gantools")


def _record_problem(key: str, source: str, error: str, ignored: bool = False) -> None:
    """List an entry point that gave no usable plugin (shown by ``gantools list`` with ``error``)."""
    if key not in PLUGINS:
        PLUGINS.register(key, Entry(key, source, error=error, ignored=ignored), source)


def _record_duplicate(name: str, source: str) -> None:
    taken = PLUGINS.get(name)
    _record_problem(f"{name} ({source})", source, f"the name {name!r} is already used by {taken.source}",
                    ignored=True)


def _check_registered(ep: Any, obj: Any, source: str, before: set[str]) -> None:
    """After loading ``ep``: register a ``module:Class``; flag a name clash or a module that registered nothing.

    A plugin whose name is already taken (by a built-in or an earlier package) is listed as
    ``"NAME (source)"`` with a warning instead of replacing or silently losing it.
    """
    if isinstance(obj, type) and issubclass(obj, Plugin):
        name = obj.descriptor.name
        taken = PLUGINS.get(name) if name in PLUGINS else None
        if taken is None or taken.cls is obj or _qualname(taken.cls) == _qualname(obj):
            register_plugin(obj)
            return
        _record_duplicate(name, source)
        return
    if set(PLUGINS.names()) == before and not any(
            e.cls is not None and e.cls.__module__ == getattr(obj, "__name__", None) for _, e in PLUGINS.items()):
        _record_problem(ep.name, source, "registered no plugin (a module must use @register_plugin on a "
                        "Plugin class, or the entry point must name module:Class)")


def _import_entry_points() -> None:
    global _current_source
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first):
        source = f"{ep.dist.name if ep.dist else 'entry point'} ({ep.value})"
        _current_source = source
        try:
            before = set(PLUGINS.names())
            obj = ep.load()
            _check_registered(ep, obj, source, before)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken third-party plugin (even sys.exit()) must not break gantools
            if ep.name not in PLUGINS:
                PLUGINS.register(ep.name, Entry(ep.name, source, error=f"{type(exc).__name__}: {exc}"), source)
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
    rows = [PLUGINS.get(n) for n in PLUGINS.names(pattern)]
    return [e for e in rows if include_broken or e.ok]


def get_plugin_class(name: str) -> type[Plugin]:
    """The plugin class registered as ``name``; raises :class:`PluginNotFound` or ``ImportError``."""
    discover()
    if name not in PLUGINS:
        known = ", ".join(e.name for e in list_plugins(include_broken=False)) or "none"
        raise PluginNotFound(f"unknown plugin {name!r} (known: {known})")
    entry = PLUGINS.get(name)
    if entry.cls is None:
        raise ImportError(f"plugin {name!r} from {entry.source} failed to import: {entry.error}")
    return entry.cls


def load(name: str, **options: Any) -> Plugin:
    """Create plugin ``name`` with platform settings and plugin options, validated here."""
    return get_plugin_class(name)(**options)


__all__ = [
    "PLUGINS", "Entry", "NotRegistered", "OptionError", "PluginNotFound", "Registry", "RegistrationError", "discover", "get_plugin_class",
    "list_plugins", "load", "register_plugin",
]
