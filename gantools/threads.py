"""How a batch uses the CPU: the thread plan of a run (``--jobs``, ``--threads``) and the intra-op
thread settings of torch and OpenCV.

:func:`plan_threads` is a pure function, measured in ``bench/results/threads.md``; the batch
runner (:mod:`gantools.batch`) applies its :class:`ThreadPlan` with :func:`intra_op_threads`.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from gantools.batch_plan import BatchUsageError


@dataclass(frozen=True)
class ThreadPlan:
    """How a run uses the CPU: ``jobs`` images at a time with ``threads`` torch threads each;
    an image computed alone uses ``solo_threads``. ``None``: the thread setting is left as it is."""

    jobs: int
    threads: int | None
    solo_threads: int | None


def plan_threads(todo: int, *, cores: int, load: float | None, jobs: int | None = None, threads: int | None = None,
                 parallel_safe: bool = True, cpu: bool = True) -> ThreadPlan:
    """The thread plan of a run with ``todo`` images (a pure function; measured in
    ``bench/results/threads.md``).

    ``cores``: CPUs this process may use; ``load``: the 1-minute load average before the run
    (``None``: unknown); ``jobs``: ``--jobs`` (``None``: auto); ``threads``: ``--threads``
    (``None``: not given); ``parallel_safe``: the plugin may run on several images at once;
    ``cpu``: the plugin computes on the CPU.

    * One at a time (``jobs`` 1) when the plugin is not ``parallel_safe``, and with auto also on
      a GPU and for fewer than two images. Its threads are ``--threads``, else on a busy CPU the
      idle cores (``round(cores - load)``, at least 1: a torch thread that waits for a busy core
      stalls all the others: 83 s instead of 30 s for 30 images with one busy process on two
      cores), else torch's default.
    * Auto otherwise: one image per core (``cores // threads``, at most ``todo``) with one torch
      thread each, or ``--threads`` each (fewer images than cores share them: ``cores // jobs``).
    * ``--jobs N``: ``N`` images with ``--threads`` (else ``cores // N``, at least 1) threads each.
    """
    idle = cores if load is None else max(1, min(cores, round(cores - load)))
    solo = threads if threads is not None else (idle if cpu and idle < cores else None)
    if not parallel_safe or (jobs is None and (not cpu or todo < 2)):
        return ThreadPlan(1, solo, solo)
    if jobs is None:
        jobs = max(1, min(todo, cores // (threads or 1)))
    each = threads if threads is not None else max(1, cores // jobs)
    return ThreadPlan(jobs, each, solo) if jobs > 1 else ThreadPlan(1, solo, solo)


def jobs_option(value: int | str | None) -> int | None:
    """``--jobs``: ``"auto"`` (or ``None``) -> ``None``, else a count of at least 1
    (:class:`BatchUsageError` otherwise)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or isinstance(value, (bool, float)):
        raise BatchUsageError(f"option --jobs: {value!r} is not a number of images (1 or more) or auto")
    return count


def cpu_cores() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average, ``None`` where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def intra_op() -> dict[str, int]:
    """The intra-op thread counts of torch and OpenCV, of those loaded (a plugin that did not load
    torch does not use it)."""
    counts = {}
    if (torch := sys.modules.get("torch")) is not None:
        counts["torch"] = torch.get_num_threads()
    if (cv2 := sys.modules.get("cv2")) is not None and hasattr(cv2, "getNumThreads"):
        counts["cv2"] = cv2.getNumThreads()
    return counts


def set_intra_op(threads: int | dict[str, int] | None) -> None:
    """Set the intra-op threads of torch and OpenCV (those loaded; ``None``: unchanged), to one
    count or to counts from :func:`intra_op`. Called in each compute thread too: OpenMP keeps
    torch's setting per thread."""
    if threads is None:
        return
    for name, count in (threads if isinstance(threads, dict) else dict.fromkeys(intra_op(), threads)).items():
        module = sys.modules.get(name)
        if module is not None:
            (module.set_num_threads if name == "torch" else module.setNumThreads)(count)


@contextmanager
def intra_op_threads(threads: int | dict[str, int] | None) -> Iterator[None]:
    """torch's and OpenCV's intra-op threads set to ``threads`` inside the block (``None``:
    unchanged), restored after."""
    if threads is None:
        yield
        return
    before = intra_op()
    set_intra_op(threads)
    try:
        yield
    finally:
        set_intra_op(before)
