"""The ``gantools run`` flags of the Ray engine (declared here, added by :mod:`gantools.cli.run`).

``--engine local`` (the default) is :func:`gantools.api.run`; ``--engine ray`` is
:func:`gantools.distributed.engine.run_ray`. The other flags only mean something with
``--engine ray`` (a usage error otherwise), and so does a URI ``-o``. Nothing here imports Ray,
torch or OpenCV.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, Sequence

from gantools.cli.errors import usage
from gantools.cli.options import RUN, Param

if TYPE_CHECKING:
    from gantools.batch import BatchSummary
    from gantools.plugin import Plugin

ENGINE_PANEL = "Engine (scale-out)"
ENGINES = Literal["local", "ray"]
GROUP = "engine"


def _param(name: str, type_: Any, default: Any, help: str, **extra: Any) -> Param:
    return Param(name, type_, default, help, group=GROUP, commands=frozenset({RUN}), extra=extra)


#: the engine flags of ``gantools run`` (group ``engine``)
ENGINE_PARAMS: tuple[Param, ...] = (
    _param("engine", ENGINES, "local", "local: threads in this process; ray: Ray Data actors (pip install "
           "'gantools[distributed]').", case_sensitive=False),
    _param("address", str, None, "Ray cluster to use, e.g. head-node:6379 or auto [default: start Ray on "
           "this machine].", metavar="ADDR"),
    _param("actors", int, None, "Plugin instances (Ray actors) [default: 1].", min=1, metavar="N"),
    _param("gpus_per_actor", float, None, "GPUs per actor; fractions share a GPU [default: 0].", min=0.0,
           metavar="G"),
    _param("batch_size", int, None, "Images per actor call [default: 4].", min=1, metavar="B"),
)


def run_with_engine(plugin: Plugin, inputs: Sequence[str | os.PathLike], output: str, batch: dict[str, Any],
                    engine: dict[str, Any]) -> BatchSummary:
    """Run ``plugin`` with the chosen engine; a usage error for Ray flags without ``--engine ray``."""
    from gantools import api
    from gantools.batch import BatchOptions

    chosen = (engine.pop("engine", None) or "local").lower()
    given = {k: v for k, v in engine.items() if v is not None}
    if chosen != "ray":
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise usage(f"{flags}: only with --engine ray")
        return api.run(plugin, list(inputs), output, **batch)
    from gantools.distributed.engine import RayOptions, run_ray

    return run_ray(plugin, inputs, output, options=BatchOptions(**batch), ray_options=RayOptions(**given))
