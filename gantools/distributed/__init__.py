"""Scale-out of ``gantools run`` on Ray Data: the same plugins, rules and summary, many actors.

    import gantools.distributed
    summary = gantools.distributed.run("upscale", "photos/", "out/", actors=2, model="fidelity")
    summary = gantools.distributed.run("resize", "s3://bucket/in/", "s3://bucket/out/", address="head:6379", scale=2)

:func:`run` takes the options of :func:`gantools.run` plus the engine's own (``address``,
``actors``, ``gpus_per_actor``, ``batch_size``: :class:`~gantools.distributed.engine.RayOptions`).
The contract is in :mod:`gantools.distributed.engine`. Ray is imported only when a run starts;
without it installed, :func:`run` raises a ``BatchUsageError`` naming the ``[distributed]`` extra.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from gantools.batch import BatchSummary
    from gantools.plugin import Plugin


def run(
    name_or_plugin: str | Plugin,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    **options: Any,
) -> BatchSummary:
    """Like :func:`gantools.run`, on Ray; engine options are split off first (see the module doc)."""
    from gantools.api import prepare_run
    from gantools.distributed.engine import RayOptions, run_ray

    engine_keys = {f.name for f in fields(RayOptions)}
    ray_kwargs = {k: options.pop(k) for k in list(options) if k in engine_keys}
    plugin, paths, batch = prepare_run(name_or_plugin, inputs, options)
    return run_ray(plugin, paths, output, options=batch, ray_options=RayOptions(**ray_kwargs))


__all__ = ["run"]
