"""``gantools list`` and ``gantools info NAME``: descriptors only (no torch, no OpenCV).

On a terminal both print Rich tables; when stdout is not a terminal (a pipe, a file) the same
rows are plain tab-separated lines (a header line first), and ``--json`` prints the descriptors as
JSON for programs (:func:`descriptor_json`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Sequence

import typer

from gantools.cli.plugins import plugin_class

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (the descriptors) instead of a table.")]


def _console() -> Any:
    from rich.console import Console

    return Console()


def _print_table(console: Any, headers: Sequence[str], rows: list[Sequence[str]], title: str | None = None) -> None:
    """A Rich table on a terminal; otherwise tab-separated lines, the header line first (no markup)."""
    from rich.markup import escape
    from rich.table import Table

    if not console.is_terminal:
        for row in [list(headers), *rows]:
            print("\t".join(" ".join(str(cell).split()) for cell in row))
        return
    table = Table(*headers, title=title)
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    console.print(table)


def descriptor_json(d: Any, source: str) -> dict[str, Any]:
    """A plugin descriptor as JSON-ready data (the fields ``info`` shows, options with their flags)."""
    return {
        "name": d.name, "task": d.task, "kind": d.kind, "description": d.description, "scale": d.scale,
        "channels": list(d.channels), "tiling": d.tiling, "bf16": d.bf16, "weights": d.weights,
        "trainable": d.trainable, "source": source,
        "options": [{"name": o.name, "flag": o.flag, "type": o.type.__name__, "default": o.default, "help": o.help,
                     "choices": list(o.choices) if o.choices else None, "min": o.min, "max": o.max}
                    for o in d.options],
    }


def list_command(json_: JsonFlag = False) -> None:
    """List plugins: name, task, scale, weights and status (broken ones show their error)."""
    from gantools.registry import list_plugins

    entries = list_plugins()
    if json_:
        rows = [descriptor_json(e.descriptor, e.source) if e.descriptor is not None else
                {"name": e.name, "source": e.source} for e in entries]
        for row, entry in zip(rows, entries):
            row.update(status=entry.status, error=entry.error)
        print(json.dumps(rows, indent=2, default=str))
        return
    table = []
    for entry in entries:
        d = entry.descriptor
        if d is not None:
            table.append((d.name, d.task, f"x{d.scale:g}", d.weights, "ok"))
        else:
            table.append((entry.name, "", "", "", f"{entry.status}: {entry.error or ''}"))
    _print_table(_console(), ("name", "task", "scale", "weights", "status"), table, title="gantools plugins")


def info(name: Annotated[str, typer.Argument(help="Plugin name (see gantools list).")], json_: JsonFlag = False) -> None:
    """Show a plugin's descriptor and its options."""
    from rich.markup import escape

    from gantools.registry import list_plugins

    d = plugin_class(name).descriptor
    source = next((e.source for e in list_plugins(name) if e.name == name), "")
    if json_:
        print(json.dumps(descriptor_json(d, source), indent=2, default=str))
        return
    console = _console()
    if console.is_terminal:
        console.print(f"[bold]{escape(d.name)}[/bold]: {escape(d.description)}")
    else:
        print(f"{d.name}: {d.description}")
    about = [
        ("task", d.task), ("kind", d.kind), ("scale", f"x{d.scale:g}"),
        ("channels", ", ".join(map(str, d.channels))), ("tiling", "yes" if d.tiling else "no"),
        ("bf16", "allowed" if d.bf16 else "no (always fp32)"), ("weights", d.weights),
        ("training", f"gantools train {d.name}" if d.trainable else "-"), ("source", source),
    ]
    if console.is_terminal:
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        for key, value in about:
            grid.add_row(key, escape(str(value)))
        console.print(grid)
    else:
        for key, value in about:
            print(f"{key}\t{value}")
    options = [(o.flag, o.type.__name__, repr(o.default),
                ", ".join(map(str, o.choices)) if o.choices else _range(o.min, o.max), o.help) for o in d.options]
    if options:
        _print_table(console, ("option", "type", "default", "choices / range", "help"), options, title="options")
    print(f"Platform options (device, precision, format, ...): gantools run {d.name} --help")


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
