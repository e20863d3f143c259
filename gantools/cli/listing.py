"""``gantools list`` and ``gantools info NAME``: descriptors only (no torch, no OpenCV)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gantools.cli.plugins import plugin_class


def _console() -> Any:
    from rich.console import Console

    return Console()


def list_command() -> None:
    """List plugins: name, task, scale, weights and status (broken ones show their error)."""
    # No parameters on purpose: Typer imports pydantic to coerce any non-flag value (~0.1 s).
    from rich.markup import escape
    from rich.table import Table

    from gantools.registry import list_plugins

    table = Table("name", "task", "scale", "weights", "status", title="gantools plugins")
    for entry in list_plugins():
        d = entry.descriptor
        if d is not None:
            table.add_row(escape(d.name), escape(d.task), f"x{d.scale:g}", escape(d.weights), "ok")
        else:
            table.add_row(escape(entry.name), "", "", "", f"[red]broken[/red]: {escape(entry.error or '')}")
    _console().print(table)


def info(name: Annotated[str, typer.Argument(help="Plugin name (see gantools list).")]) -> None:
    """Show a plugin's descriptor and its options."""
    from rich.markup import escape
    from rich.table import Table

    from gantools.registry import list_plugins

    d = plugin_class(name).descriptor
    source = next((e.source for e in list_plugins(name) if e.name == name), "")
    console = _console()
    console.print(f"[bold]{escape(d.name)}[/bold]: {escape(d.description)}")
    about = Table.grid(padding=(0, 2))
    for key, value in (
        ("task", d.task), ("kind", d.kind), ("scale", f"x{d.scale:g}"),
        ("channels", ", ".join(map(str, d.channels))), ("tiling", "yes" if d.tiling else "no"),
        ("bf16", "allowed" if d.bf16 else "no (always fp32)"), ("weights", d.weights),
        ("training", f"gantools train {d.name}" if d.trainable else "-"), ("source", source),
    ):
        about.add_row(key, escape(str(value)))
    console.print(about)
    options = Table("option", "type", "default", "choices / range", "help", title="options")
    for opt in d.options:
        bounds = ", ".join(map(str, opt.choices)) if opt.choices else _range(opt.min, opt.max)
        options.add_row(opt.flag, opt.type.__name__, escape(repr(opt.default)), escape(bounds), escape(opt.help))
    if d.options:
        console.print(options)
    console.print(f"Platform options (device, precision, format, ...): gantools run {d.name} --help")


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
