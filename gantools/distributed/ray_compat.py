"""The one place that knows Ray's API differences and how gantools connects to a cluster.

* :func:`require_ray` imports Ray or raises a usage error naming the ``[distributed]`` extra.
* :func:`connect` starts Ray embedded on this machine (no address) or connects to ``address``;
  an unreachable address is a usage error (one line), checked with a plain TCP probe first so
  the user does not wait for Ray's own retries.
* :func:`actor_pool` gives the ``map_batches`` keyword arguments for a fixed pool of actors:
  ``compute=ActorPoolStrategy(size=n)`` before Ray 2.9 and from Ray 2.51 (where
  ``concurrency`` is deprecated), ``concurrency=n`` in between.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from gantools.batch_plan import BatchUsageError

EXTRA_HINT = "pip install 'gantools[distributed]'"
#: seconds the TCP probe of ``--address`` waits
PROBE_SECONDS = 5.0


def require_ray() -> Any:
    """The ``ray`` module with Ray Data; :class:`BatchUsageError` if it is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] part of the extra
    except ImportError:
        raise BatchUsageError(f"--engine ray needs Ray Data, which is not installed: {EXTRA_HINT}") from None
    return ray


def ray_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed Ray."""
    import ray

    major, minor = (int(part) for part in ray.__version__.split(".")[:2])
    return major, minor


def actor_pool(size: int) -> dict[str, Any]:
    """``map_batches`` keyword arguments for a fixed pool of ``size`` actors (see the module doc)."""
    import ray.data

    if (2, 9) <= ray_version() < (2, 51):
        return {"concurrency": size}
    return {"compute": ray.data.ActorPoolStrategy(size=size)}


def _probe(address: str) -> None:
    """:class:`BatchUsageError` if ``host:port`` (optionally ``ray://host:port``) does not accept a
    TCP connection; other forms (``auto``) are left to Ray."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise BatchUsageError(f"option --address: cannot reach a Ray cluster at {address}: "
                              f"{exc.strerror or exc}") from None


def quiet_ray_data() -> None:
    """No progress bars or INFO lines from Ray Data: the batch reporter shows progress."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled"


def connect(address: str | None, *, actors: int) -> bool:
    """Make sure Ray is running; ``True`` if this call started it (the caller shuts it down).

    An already initialised Ray (a test fixture, a notebook) is used as it is, though an
    unreachable ``address`` is still a usage error. Without ``address``, Ray starts embedded
    here with at least ``actors`` logical CPUs (each actor reserves one; reading, decoding and
    encoding tasks reserve none, so they always run).
    """
    ray = require_ray()
    quiet_ray_data()
    if address:
        _probe(address)
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BatchUsageError(f"option --address: cannot connect to Ray at {address}: "
                                  f"{' '.join(str(exc).split())}") from None
        return True
    ray.init(num_cpus=max(os.cpu_count() or 1, actors), include_dashboard=False, **common)
    return True


def check_gpus(actors: int, gpus_per_actor: float) -> None:
    """:class:`BatchUsageError` if the connected cluster has fewer GPUs than ``actors`` actors of
    ``gpus_per_actor`` GPUs need (Ray would wait for them forever; an autoscaling cluster must
    have its GPU nodes up first)."""
    if not gpus_per_actor:
        return
    import ray

    have, need = ray.cluster_resources().get("GPU", 0.0), actors * gpus_per_actor
    if have < need:
        raise BatchUsageError(f"option --gpus-per-actor: {actors} actor(s) x {gpus_per_actor:g} GPU need "
                              f"{need:g} GPUs, the Ray cluster has {have:g}")
