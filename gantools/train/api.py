"""Python entry point for training, mirrored by ``gantools train``."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable

from gantools.plugin import OptionError
from gantools.train.data import DataError
from gantools.train.engine import Trainer, TrainResult
from gantools.train.rundir import CheckpointError
from gantools.train.task import TrainConfig, get_task


def make_config(task: str, *, task_options: dict[str, Any] | None = None, **engine: Any) -> TrainConfig:
    """Engine defaults, then the task's ``defaults``, then ``engine`` overrides."""
    task_cls = get_task(task)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(engine) - fields
    if unknown:
        raise OptionError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
    values = {**task_cls.defaults, **engine, "task": task, "options": dict(task_options or {})}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return TrainConfig(**values)


def run_training(config: TrainConfig, *, resume: bool = False, checkpoint: str | None = None,
                 log: Callable[[str], None] = print, progress: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``config`` (raises the engine's errors)."""
    return Trainer(get_task(config.task), config, resume=resume, checkpoint=checkpoint, log=log, progress=progress).run()


def train(task: str, *, resume: bool = False, checkpoint: str | None = None, task_options: dict | None = None,
          quiet: bool = False, **engine: Any) -> int:
    """CLI-style training: prints progress and one-line errors; returns the exit code."""
    from rich.console import Console

    console = Console(stderr=True)
    log = (lambda msg: None) if quiet else (lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    try:
        config = make_config(task, task_options=task_options, **engine)
        extra_data = any(isinstance(v, list) and v for v in config.options.values())  # e.g. --style-images
        if not resume and checkpoint is None and not config.data and not extra_data:
            raise DataError("no training data: give --data PATH")
        with _Progress(console, config.steps, quiet) as progress:
            result = run_training(config, resume=resume, checkpoint=checkpoint, log=log, progress=progress)
    except (DataError, CheckpointError, OptionError, OSError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
    log(f"{result.stopped_by}: step {result.step}, {result.images_seen} images seen; export {result.export_path}")
    return 130 if result.stopped_by == "interrupt" else 0


class _Progress:
    """Rich progress line (TTY) or a plain line every few logs: step, images/s, losses, ETA."""

    def __init__(self, console: Any, total: int | None, quiet: bool) -> None:
        self.console, self.total, self.quiet = console, total, quiet
        self.bar: Any = None
        self.calls = 0

    def __enter__(self) -> "_Progress":
        if self.console.is_terminal and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=self.console)
            self.bar.start()
            self.tid = self.bar.add_task("training", total=self.total)
        return self

    def __call__(self, row: dict) -> None:
        if self.quiet:
            return
        losses = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith(("g_", "d_")))
        text = f"step {row['step']} {row['images_per_s']:.1f} img/s {losses}"
        if self.bar is not None:
            self.bar.update(self.tid, completed=row["step"], description=text)
        else:
            self.calls += 1
            if self.calls % 10 == 1:
                print(text, file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
