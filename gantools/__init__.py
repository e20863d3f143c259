"""gantools: GAN image pipelines behind one plugin interface.

``import gantools`` is light (no torch, no OpenCV, no numpy): the public names below are loaded
on first use.

    gantools.load(name, **options) -> Plugin
    gantools.process(name_or_plugin, image, **options) -> image
    gantools.run(name, inputs, output, **options) -> BatchSummary
    gantools.list_plugins(pattern="*") -> registry entries
    gantools.Plugin, Descriptor, Option, OptionError, register_plugin   (plugin authoring)
"""

from __future__ import annotations

import importlib
from typing import Any


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gantools")
    except PackageNotFoundError:
        return "0.0.0"


#: public name -> module that defines it
_EXPORTS = {
    "load": "gantools.api",
    "process": "gantools.api",
    "run": "gantools.api",
    "list_plugins": "gantools.registry",
    "register_plugin": "gantools.registry",
    "PluginNotFound": "gantools.registry",
    "Plugin": "gantools.plugin",
    "Descriptor": "gantools.plugin",
    "Option": "gantools.plugin",
    "OptionError": "gantools.plugin",
    "BatchOptions": "gantools.batch",
    "BatchSummary": "gantools.batch",
    "BatchUsageError": "gantools.batch",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata costs start-up time: read it on demand
        globals()[name] = value = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gantools' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
