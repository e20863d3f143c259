"""The Python API: what ``gantools run`` does, callable from code.

    import gantools
    p = gantools.load("resize", scale=2)            # options validated here (OptionError)
    out = p.process(image)                          # OpenCV-style array in, same kind out
    out = gantools.process("resize", image, scale=3)
    summary = gantools.run("resize", "photos/", "out/", scale=2, recursive=True)

Keyword options are split by name: platform settings (``device``, ``precision``, ``threads``,
``tile``, ``weights``, ``backend``) go to the plugin's constructor, the fields of
:class:`~gantools.batch.BatchOptions` (``format``, ``quality``, ``name``, ``overwrite``,
``recursive``, ``from_list``, ``null``, ``json``, ``background``, ``max_pixels``, ``workers``,
``jobs``, ``progress``; for videos ``frames``, ``codec``, ``crf``, ``pix_fmt``) to the batch, and
everything else is a plugin option.
"""

from __future__ import annotations

import functools
import os
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Sequence

from gantools.plugin import Plugin
from gantools.registry import load as _load

if TYPE_CHECKING:
    import numpy as np

    from gantools.batch import BatchOptions, BatchSummary


def load(name: str, **options: Any) -> Plugin:
    """A new instance of plugin ``name``; raises ``PluginNotFound`` or ``OptionError``.

    Loading is cheap: weights are read on the first ``process`` call (``plugin.ensure_setup()``
    does it up front).
    """
    return _load(name, **options)


@functools.lru_cache(maxsize=4)
def _cached(name: str, frozen: tuple[tuple[str, Any], ...]) -> Plugin:
    return _load(name, **dict(frozen))


def process(name_or_plugin: str | Plugin, image: np.ndarray, **options: Any) -> np.ndarray:
    """Process one image with a plugin instance, or with plugin ``name`` and ``options``.

    Instances made from a name are cached (the last four name + options combinations), so a
    loop calling ``process("upscale", img)`` loads the model once.
    """
    if isinstance(name_or_plugin, Plugin):
        if options:
            raise TypeError("options go to gantools.load(); pass them with a plugin name, not an instance")
        plugin = name_or_plugin
    else:
        plugin = _cached(name_or_plugin, tuple(sorted(options.items())))
    return plugin.process(image)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(plugin constructor kwargs, BatchOptions kwargs)`` from one flat dict of options."""
    from gantools.batch import BatchOptions

    batch_keys = {f.name for f in fields(BatchOptions)}
    batch = {k: v for k, v in options.items() if k in batch_keys}
    plugin = {k: v for k, v in options.items() if k not in batch_keys}
    return plugin, batch


def run(
    name_or_plugin: str | Plugin,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    **options: Any,
) -> BatchSummary:
    """Run a plugin over files like ``gantools run`` and return the :class:`BatchSummary`.

    ``inputs`` is one path/glob/``"-"`` or a list of them. Raises ``BatchUsageError`` for
    arguments that ``gantools run`` rejects with exit code 2; per-file problems are in the
    summary (``summary.errors``), never raised.
    """
    from gantools.batch import run_batch

    plugin, paths, batch = prepare_run(name_or_plugin, inputs, options)
    return run_batch(plugin, paths, output, options=batch)


def prepare_run(
    name_or_plugin: str | Plugin, inputs: str | os.PathLike | Sequence[str | os.PathLike], options: dict[str, Any],
) -> tuple[Plugin, list[str | os.PathLike], BatchOptions]:
    """``(plugin, inputs as a list, BatchOptions)`` from :func:`run`'s arguments (any engine)."""
    from gantools.batch import BatchOptions

    plugin_kwargs, batch_kwargs = split_options(options)
    if isinstance(name_or_plugin, Plugin):
        if plugin_kwargs:
            raise TypeError(f"unknown batch options {sorted(plugin_kwargs)} (plugin options go to gantools.load())")
        plugin = name_or_plugin
    else:
        plugin = load(name_or_plugin, **plugin_kwargs)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    return plugin, list(inputs), BatchOptions(**batch_kwargs)
