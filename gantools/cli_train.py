"""``gantools train``: one subcommand per registered training task, built from its options.

A thin layer: it turns flags into a :class:`~gantools.train.task.TrainConfig` and hands it to
:func:`gantools.train.api.train`. Task modules (and torch) are imported only when a task is
invoked or its help is shown.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

import click

from gantools.plugin import Option

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """``"45m"``, ``"2h"``, ``"1h30m"``, ``"90s"`` or ``"90"`` -> seconds."""
    m = _DURATION.match(text.strip().lower())
    if not text.strip() or not m or not any(m.groups()):
        raise click.BadParameter(f"{text!r} is not a duration like 45m, 2h, 1h30m or 90s", param_hint="--time")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def _engine_params() -> list[click.Parameter]:
    o = click.Option
    return [
        o(["--data"], multiple=True, type=click.Path(), help="image folder, file or .zip shard (repeatable)"),
        o(["--out"], required=True, type=click.Path(), help="run directory"),
        o(["--steps"], type=int, help="total steps of the run"),
        o(["--time", "time_"], help="wall-clock budget of this invocation (45m, 2h, 1h30m)"),
        o(["--resume"], is_flag=True, help="continue the run in --out from its last checkpoint"),
        o(["--checkpoint"], type=click.Path(), help="resume from this checkpoint instead of the last"),
        o(["--init"], type=click.Path(), help="start the generator from these weights (fine-tuning)"),
        o(["--precision"], type=click.Choice(["auto", "fp32", "bf16"]), help="auto = bf16 on CPUs with AMX or AVX512-BF16"),
        o(["--device"], help="cpu, cuda or auto"),
        o(["--threads"], type=int, help="torch threads"),
        o(["--workers"], type=int, help="data loading threads"),
        o(["--seed"], type=int),
        o(["--batch-size"], type=int),
        o(["--lr-g"], type=float, help="generator learning rate"),
        o(["--lr-d"], type=float, help="discriminator learning rate (TTUR)"),
        o(["--d-steps"], type=int, help="discriminator steps per generator step"),
        o(["--adv-loss"], type=click.Choice(["ns", "hinge", "lsgan"])),
        o(["--r1-gamma"], type=float, help="R1 penalty weight (0 = off)"),
        o(["--r1-every"], type=int, help="lazy R1 interval"),
        o(["--ema-decay"], type=float),
        o(["--augment"], help="DiffAugment policy, e.g. color,translation,cutout ('' = off)"),
        o(["--log-every"], type=int, help="steps between metrics lines"),
        o(["--sample-every"], type=int),
        o(["--checkpoint-every"], type=int),
        o(["--checkpoint-minutes"], type=float),
        o(["--keep"], type=int, help="checkpoints kept"),
    ]


def _task_params(task_cls: Any) -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for flag, help_ in task_cls.data_flags.items():
        params.append(click.Option(["--" + flag.replace("_", "-"), flag], multiple=True, type=click.Path(), help=help_))
    for opt in task_cls.options:
        params.append(_click_option(opt))
    return params


def _click_option(opt: Option) -> click.Option:
    kind: Any = click.Choice([str(c) for c in opt.choices]) if opt.choices else opt.type
    if opt.type is bool:
        return click.Option([f"{opt.flag}/--no-{opt.flag[2:]}", opt.name], default=None, help=f"{opt.help} [default: {opt.default}]")
    return click.Option([opt.flag, opt.name], type=kind, default=None, help=f"{opt.help} [default: {opt.default}]")


def _make_command(name: str) -> click.Command:
    from gantools.train.task import get_task

    task_cls = get_task(name)

    def callback(**kw: Any) -> None:
        from gantools.train.api import train

        task_opts = {o.name: kw.pop(o.name) for o in task_cls.options if kw.get(o.name) is not None}
        for o in task_cls.options:
            kw.pop(o.name, None)
        extra_data = {f: list(kw.pop(f) or ()) for f in task_cls.data_flags}
        time_ = kw.pop("time_")
        engine = {k: v for k, v in kw.items() if v not in (None, ())}
        engine["data"] = list(kw.get("data") or ())
        if time_ is not None:
            engine["time"] = parse_duration(time_)
        code = train(name, task_options={**task_opts, **extra_data}, command=_command_line(), **engine)
        sys.exit(code)

    return click.Command(name, params=_engine_params() + _task_params(task_cls), callback=callback,
                         help=task_cls.description)


def _command_line() -> str:
    return "gantools " + " ".join(shlex.quote(a) for a in sys.argv[1:])


class TrainGroup(click.Group):
    """Lists tasks from plugin descriptors; builds a task's command on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from gantools.train.task import task_paths

        return sorted(task_paths())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from gantools.train.task import task_paths

        if name not in task_paths():
            return None
        return _make_command(name)


def _list_tasks(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from gantools.train.task import task_paths

    for name, path in sorted(task_paths().items()):
        click.echo(f"{name:12s} {path}")
    ctx.exit(0)


train_group = TrainGroup(
    "train",
    help="Train a model from a folder of images (see `gantools train --list`).",
    params=[click.Option(["--list"], is_flag=True, expose_value=False, is_eager=True, callback=_list_tasks,
                         help="list the training tasks")],
)
