"""Python entry point for training (``gantools train`` is a thin layer over it).

Library only: these functions return results or raise (``OptionError``, ``DataError``,
``CheckpointError``, ``OSError``); they never print or exit. Progress reaches the caller
through the ``log`` and ``progress`` callbacks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from gantools.plugin import OptionError
from gantools.train.engine import Trainer, TrainResult
from gantools.train.shipped import shipped_defaults
from gantools.train.task import TrainConfig, get_task


def make_config(task: str, *, task_options: dict[str, Any] | None = None, **engine: Any) -> TrainConfig:
    """Engine defaults, then the task's ``defaults``, then ``engine`` overrides.

    ``init`` naming a shipped model (see :mod:`gantools.train.shipped`) puts the shipped run's task
    options and adversarial settings between the defaults and the given values. ``ValueError``
    when ``init`` names neither a file nor a shipped model of ``task``.
    """
    task_cls = get_task(task)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(engine) - fields
    if unknown:
        raise OptionError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
    task_options = dict(task_options or {})
    if engine.get("init"):
        shipped_options, settings = shipped_defaults(task, engine["init"], task_options)
        task_options = {**shipped_options, **task_options}
        engine = {**settings, **engine}
    values = {**task_cls.defaults, **engine, "task": task, "options": task_options}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return TrainConfig(**values)


def run_training(config: TrainConfig, *, resume: bool = False, checkpoint: str | None = None,
                 log: Callable[[str], None] = print, progress: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``config`` (raises the engine's errors); ``log`` gets each message line."""
    return Trainer(get_task(config.task), config, resume=resume, checkpoint=checkpoint, log=log, progress=progress).run()
