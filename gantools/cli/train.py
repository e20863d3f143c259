"""``gantools train TASK``: one subcommand per training task, built from the task's options.

A thin layer over :mod:`gantools.train.api`: flags -> :func:`~gantools.train.api.make_config`
-> :func:`~gantools.train.api.run_training`, with a progress line on stderr. Every setting is
optional on the command line: what is not given comes from the task's defaults, then the
engine's. Exit codes: 0 done (steps or time budget reached), 2 bad arguments, data or run
directory, 130 stopped by Ctrl-C (after a checkpoint). Task modules (and torch) are imported
only when a task is invoked or its help is shown.
"""

from __future__ import annotations

import functools
import re
import shlex
import sys
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from gantools.cli.errors import INTERRUPTED, usage
from gantools.cli.options import PLATFORM_PANEL, REQUIRED, TRAIN, Param, make_command, option_param, platform

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """``"45m"``, ``"2h"``, ``"1h30m"``, ``"90s"`` or ``"90"`` -> seconds; a usage error otherwise."""
    m = _DURATION.match(text.strip().lower())
    if not text.strip() or not m or not any(m.groups()):
        raise usage(f"option --time: {text!r} is not a duration like 45m, 2h, 1h30m or 90s")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def _engine(name: str, type_: Any, help: str = "", *decls: str, default: Any = None, **extra: Any) -> Param:
    return Param(name, type_, default, help, decls, "engine", extra=extra)


#: The training engine's flags (fields of ``TrainConfig``, plus how to start: resume, checkpoint).
ENGINE: tuple[Param, ...] = (
    _engine("data", list[str], "Image folder, file or .zip shard (repeatable)."),
    _engine("out", str, "Run directory.", default=REQUIRED),
    _engine("steps", int, "Total steps of the run."),
    _engine("time_", str, "Wall-clock budget of this invocation (45m, 2h, 1h30m).", "--time"),
    _engine("resume", bool, "Continue the run in --out from its last checkpoint.", "--resume", default=False),
    _engine("checkpoint", str, "Resume from this checkpoint instead of the last."),
    _engine("init", str, "Start the generator from these weights (fine-tuning)."),
    _engine("workers", int, "Data loading threads."),
    _engine("seed", int),
    _engine("batch_size", int),
    _engine("lr_g", float, "Generator learning rate."),
    _engine("lr_d", float, "Discriminator learning rate (TTUR)."),
    _engine("d_steps", int, "Discriminator steps per generator step."),
    _engine("adv_loss", Literal["ns", "hinge", "lsgan"], "Adversarial loss."),
    _engine("r1_gamma", float, "R1 penalty weight (0 = off)."),
    _engine("r1_every", int, "Lazy R1 interval."),
    _engine("ema_decay", float),
    _engine("augment", str, "DiffAugment policy, e.g. color,translation,cutout ('' = off)."),
    _engine("log_every", int, "Steps between metrics lines."),
    _engine("sample_every", int),
    _engine("checkpoint_every", int),
    _engine("checkpoint_minutes", float),
    _engine("keep", int, "Checkpoints kept."),
)


class TrainProgress:
    """Rich progress line (terminal) or a plain line every tenth report: step, images/s, losses, ETA.

    A context manager; the engine calls the instance with each metrics row.
    """

    def __init__(self, console: Any, total: int | None, quiet: bool) -> None:
        self.console, self.total, self.quiet = console, total, quiet
        self.bar: Any = None
        self.calls = 0

    def __enter__(self) -> "TrainProgress":
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


@functools.lru_cache(maxsize=None)
def train_command(name: str) -> Any:
    """The ``gantools train NAME`` command: engine flags, platform options, task data flags and options."""
    from gantools.train.task import get_task

    task_cls = get_task(name)
    params = [(p, None) for p in ENGINE] + [(p, PLATFORM_PANEL) for p in platform(TRAIN)]
    params += [(Param(flag, list[str], None, help_, ("--" + flag.replace("_", "-"),), "data"), f"{name} options")
               for flag, help_ in task_cls.data_flags.items()]
    params += [(option_param(o), f"{name} options") for o in task_cls.options]
    return make_command(name, params, functools.partial(_train, name), help=task_cls.description, unset=True)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != () and v != []}


def _train(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Make the config from the flags that were given, train, report; returns the exit code."""
    from rich.console import Console

    from gantools.plugin import OptionError
    from gantools.train.api import make_config, run_training
    from gantools.train.data import DataError
    from gantools.train.rundir import CheckpointError

    engine = _given({**groups["engine"], **groups["runtime"]})
    resume, checkpoint, time_ = engine.pop("resume"), engine.pop("checkpoint", None), engine.pop("time_", None)
    engine["data"] = list(groups["engine"]["data"] or ())
    if time_ is not None:
        engine["time"] = parse_duration(time_)
    extra_data = {flag: list(v or ()) for flag, v in groups.get("data", {}).items()}  # e.g. --style-images
    task_options = {**_given(groups.get("plugin", {})), **extra_data}
    quiet = groups["batch"]["quiet"]
    console = Console(stderr=True)
    log = (lambda msg: None) if quiet else (lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    try:
        config = make_config(name, task_options=task_options, command=_command_line(), **engine)
        if not resume and checkpoint is None and not config.data and not any(extra_data.values()):
            raise DataError("no training data: give --data PATH")
        with TrainProgress(console, config.steps, quiet) as progress:
            result = run_training(config, resume=resume, checkpoint=checkpoint, log=log, progress=progress)
    except (DataError, CheckpointError, OptionError, OSError, ValueError, KeyError) as exc:
        raise usage(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc) from None
    log(f"{result.stopped_by}: step {result.step}, {result.images_seen} images seen; export {result.export_path}")
    return INTERRUPTED if result.stopped_by == "interrupt" else 0


def _command_line() -> str:
    """The command as typed (saved in the run's config and export)."""
    return "gantools " + " ".join(shlex.quote(a) for a in sys.argv[1:])


class TrainGroup(TyperGroup):
    """Lists the tasks named by plugin descriptors; builds a task's command on demand."""

    def list_commands(self, ctx: Any) -> list[str]:
        from gantools.train.task import task_paths

        return sorted(task_paths())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from gantools.train.task import task_paths

        return train_command(cmd_name) if cmd_name in task_paths() else None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            from gantools.train.task import task_paths

            raise usage(f"unknown training task {args[0]!r} (known: {', '.join(sorted(task_paths())) or 'none'})")
        return super().resolve_command(ctx, args)


def _list_tasks(value: bool) -> None:
    if value:
        from gantools.train.task import task_paths

        for name, path in sorted(task_paths().items()):
            typer.echo(f"{name:12s} {path}")
        raise typer.Exit()


app = typer.Typer(
    name="train",
    cls=TrainGroup,
    help="Train or fine-tune a model for a plugin (see gantools train --list).",
    no_args_is_help=True,
)


@app.callback()
def _root(
    list_: Annotated[bool, typer.Option("--list", callback=_list_tasks, is_eager=True,
                                        help="List the training tasks and exit.")] = False,
) -> None:
    """Train a model from a folder of images (see gantools train --list)."""
