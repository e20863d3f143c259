"""``gantools train TASK``: one subcommand per training task, built from the task's options.

A thin layer over :mod:`gantools.train.api`: flags -> :func:`~gantools.train.api.make_config`
-> :func:`~gantools.train.api.run_training`, with a progress line on stderr. Every setting is
optional on the command line: what is not given comes from the task's defaults, then the
engine's. Exit codes: 0 done (steps or time budget reached), 2 bad arguments, data or run
directory, 130 stopped by Ctrl-C (after a checkpoint). ``--resume`` refuses a setting that
differs from the run's saved one (only ``--steps``, ``--time``, ``--threads``, ``--workers`` may
change). Task modules (and torch) are imported only when a task is invoked, its help is shown
or ``--list`` describes the tasks.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shlex
import sys
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from gantools.cli.errors import INTERRUPTED, usage
from gantools.cli.options import PLATFORM_PANEL, REQUIRED, TRAIN, Param, make_command, option_param, platform
from gantools.train.task import AUTO_D_WARMUP

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
RUN_PANEL, TRAINING_PANEL, LOG_PANEL = "Run options", "Training options", "Checkpoints and logs"


def parse_duration(text: str) -> float:
    """``"30s"``, ``"45m"``, ``"2h"``, ``"1h30m"`` -> seconds (> 0).

    Raises ``ValueError`` for anything else, a bare number included.
    """
    m = _DURATION.fullmatch(text.strip().lower())
    if not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration with a unit, like 30s, 45m, 2h or 1h30m")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ValueError(f"{text!r}: the time budget must be more than zero")
    return seconds


def _duration_option(ctx: Any, param: Any, value: str | None) -> float | None:
    """Click callback of ``--time``: the duration in seconds, a usage error naming ``--time`` otherwise."""
    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None


def _engine(name: str, type_: Any, help: str, *decls: str, default: Any = None, **extra: Any) -> Param:
    return Param(name, type_, default, help, decls, "engine", extra=extra)


#: The training engine's flags (fields of ``TrainConfig``, plus how to start: resume, checkpoint), by help panel.
ENGINE: tuple[tuple[Param, str], ...] = tuple((p, RUN_PANEL) for p in (
    _engine("data", list[str], "Image folder, file or .zip shard (repeatable; default: the run's data when "
            "resuming).", metavar="PATH"),
    _engine("out", str, "Run directory.", default=REQUIRED, metavar="DIR"),
    _engine("steps", int, "Total steps of the run (default: no limit; stop with --time or Ctrl+C).", min=1),
    _engine("time_", str, "Wall-clock budget of this invocation: 30s, 45m, 2h or 1h30m (default: no limit).",
            "--time", callback=_duration_option, metavar="DURATION"),
    _engine("resume", bool, "Continue the run in --out from its last checkpoint, with the run's settings.",
            "--resume", default=False),
    _engine("checkpoint", str, "Resume from this checkpoint (default: the run's last).", metavar="FILE"),
    _engine("init", str, "Start from these weights, to fine-tune: a file, or a shipped model's name (its "
            "options, and its discriminator when weights/state/ has it) (default: random weights).",
            metavar="FILE|NAME"),
)) + tuple((p, TRAINING_PANEL) for p in (
    _engine("workers", int, "Data loading threads.", min=1),
    _engine("seed", int, "Random seed (data order, augmentation, initial weights)."),
    _engine("batch_size", int, "Images per step.", min=1),
    _engine("lr_g", float, "Generator learning rate.", min=0.0),
    _engine("lr_d", float, "Discriminator learning rate (TTUR).", min=0.0),
    _engine("d_steps", int, "Discriminator steps per generator step.", min=1),
    _engine("d_warmup", int, "Steps at the start that train only the discriminator, the generator frozen "
            f"(default: {AUTO_D_WARMUP} when --init starts a fresh discriminator, else 0).", min=0),
    _engine("adv_loss", Literal["ns", "hinge", "lsgan"], "Adversarial loss."),
    _engine("r1_gamma", float, "R1 penalty weight (0 = off).", min=0.0),
    _engine("r1_every", int, "Lazy R1 interval (steps).", min=1),
    _engine("ema_decay", float, "Decay of the EMA generator that is exported.", min=0.0, max=1.0),
    _engine("augment", str, "DiffAugment policy, e.g. color,translation,cutout ('' = off)."),
)) + tuple((p, LOG_PANEL) for p in (
    _engine("log_every", int, "Steps between metrics lines.", min=1),
    _engine("sample_every", int, "Steps between sample grids.", min=1),
    _engine("checkpoint_every", int, "Steps between checkpoints.", min=1),
    _engine("checkpoint_minutes", float, "Minutes between checkpoints (whichever comes first).", min=0.0),
    _engine("keep", int, "Checkpoints kept (0 = all).", min=0),
))


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
    """The ``gantools train NAME`` command: engine flags, platform options, task data flags and options.

    Every flag's help ends with its effective default (engine default, overridden by the task's).
    """
    from gantools.train.task import get_task

    task_cls = get_task(name)
    defaults = _defaults(task_cls)
    params = [(_show_default(p, defaults), panel) for p, panel in ENGINE]
    params += [(_show_default(p, defaults), PLATFORM_PANEL) for p in platform(TRAIN)]
    params += [(Param(flag, list[str], None, help_, ("--" + flag.replace("_", "-"),), "data"), f"{name} options")
               for flag, help_ in task_cls.data_flags.items()]
    params += [(option_param(o), f"{name} options") for o in task_cls.options]
    return make_command(name, params, functools.partial(_train, name), help=task_cls.summary(), unset=True)


def _defaults(task_cls: Any) -> dict[str, Any]:
    """``TrainConfig`` field defaults overridden by the task's ``defaults``."""
    import dataclasses

    from gantools.train.task import TrainConfig

    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    return {**fields, **task_cls.defaults}


def _show_default(param: Param, defaults: dict[str, Any]) -> Param:
    """``param`` with ``[default: X]`` appended to its help when the engine or task has a default."""
    value = defaults.get(param.name.rstrip("_"))
    if value is None or value == [] or param.type is bool or param.default is REQUIRED:
        return param
    return dataclasses.replace(param, help=f"{param.help} [default: {value if value != '' else repr(value)}]")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != () and v != []}


def _train(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Make the config from the flags that were given, train, report; returns the exit code."""
    from rich.console import Console

    from gantools.plugin import OptionError
    from gantools.train.api import make_config, run_training
    from gantools.train.data import DataError
    from gantools.train.ddp import is_main_process
    from gantools.train.rundir import CheckpointError

    engine = _given({**groups["engine"], **groups["runtime"], "max_pixels": groups["batch"].get("max_pixels")})
    resume, checkpoint = engine.pop("resume"), engine.pop("checkpoint", None)
    if "time_" in engine:
        engine["time"] = engine.pop("time_")
    engine["data"] = list(groups["engine"]["data"] or ())
    extra_data = {flag: list(v or ()) for flag, v in groups.get("data", {}).items()}  # e.g. --style-images
    task_options = {**_given(groups.get("plugin", {})), **extra_data}
    quiet = groups["batch"]["quiet"] or not is_main_process()  # torchrun: only rank 0 reports
    console = Console(stderr=True)
    log = (lambda msg: None) if quiet else (lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    try:
        if resume or checkpoint is not None:
            _check_resume(name, _given(engine), _given(task_options))
        config = make_config(name, task_options=task_options, command=_command_line(), **engine)
        if not resume and checkpoint is None and not config.data and not any(extra_data.values()):
            raise DataError("no training data: give --data PATH")
        with TrainProgress(console, config.steps, quiet) as progress:
            result = run_training(config, resume=resume, checkpoint=checkpoint, log=log, progress=progress)
    except (DataError, CheckpointError, OptionError, OSError, ValueError, KeyError) as exc:
        raise usage(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc) from None
    log(f"{result.stopped_by}: step {result.step}, {result.images_seen} images seen; export {result.export_path}")
    code = INTERRUPTED if result.stopped_by == "interrupt" else 0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_torchrun_worker(code)
    return code


def _leave_torchrun_worker(code: int) -> None:
    """Exit a finished torchrun worker without interpreter teardown: everything is written and the
    process group destroyed, but the C++ teardown of gloo's threads at exit can still abort
    ("terminate called without an active exception", SIGABRT) on a loaded machine, which torchrun
    reports as a failed run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _check_resume(name: str, engine: dict[str, Any], task_options: dict[str, Any]) -> None:
    """Refuse (usage error naming the flag) a given setting that differs from the run's ``config.json``.

    A resumed run keeps its saved settings, except those in ``RESUMABLE_CHANGES`` (``--steps``,
    ``--time``, ``--threads``, ``--workers``): any other flag would be silently ignored. A task
    option the run did not set is compared with the task's default; one whose saved value is
    ``None`` (decided by the task at run time, e.g. stylize ``--mode``) is not checked.
    """
    from gantools.train.engine import RESUMABLE_CHANGES
    from gantools.train.rundir import RunDir
    from gantools.train.task import get_task

    run = RunDir(engine["out"])
    saved = run.read_config()  # CheckpointError when there is no run to resume
    options = {o.name: o for o in get_task(name).options}
    saved_options = {**{k: o.default for k, o in options.items()}, **saved.get("options", {})}
    given = [("--" + k.replace("_", "-"), v, saved.get(k)) for k, v in engine.items()
             if k not in RESUMABLE_CHANGES and k != "out"]
    given += [(options[k].flag if k in options else "--" + k.replace("_", "-"), v, saved_options.get(k))
              for k, v in task_options.items()]
    for flag, value, was in given:
        if was is not None and value != was and str(value) != str(was):
            raise usage(
                f"{flag} {_shown(value)} differs from this run's {_shown(was)} ({run.config_path}): a resumed run "
                "keeps its settings (only --steps, --time, --threads and --workers may change); drop the flag "
                "or start a new --out")


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


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
    """``--list``: each training task's name and one-line summary (imports the task modules)."""
    if value:
        from gantools.train.task import get_task, task_paths

        for name in sorted(task_paths()):
            try:
                summary = get_task(name).summary()
            except Exception as exc:  # a broken task module: list it, say why
                summary = f"(cannot load: {type(exc).__name__}: {exc})"
            typer.echo(f"{name:12s} {summary}")
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
