"""The ``gantools`` command: ``list``, ``info``, ``run``, ``generate``, ``train``.

:func:`main` is the console script and holds THE error translation of every command: a click
usage error, a :class:`~gantools.cli.errors.CliError` or an ``OptionError`` becomes one line
``error: ...`` on stderr. Exit codes: 0 ok, 1 some file failed (or a broken plugin, unwritable
output), 2 bad usage, 130 interrupted. Start-up matters: nothing heavy is imported at module
level (plugins, torch and OpenCV load only when a command needs them).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from gantools.cli import export, generate, listing, models, run, train
from gantools.cli.errors import FAILURE, INTERRUPTED, USAGE, CliError

try:  # Typer >= 0.29 vendors click; older Typer uses the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

__all__ = ["app", "main"]

app = typer.Typer(
    name="gantools",
    help="GAN image pipelines behind one plugin interface.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (Typer's)
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        import gantools

        typer.echo(f"gantools {gantools.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """GAN image pipelines behind one plugin interface."""


app.command("list")(listing.list_command)
app.command()(listing.info)
app.add_typer(run.app)
app.add_typer(generate.app)
app.add_typer(train.app)
app.add_typer(export.app)
app.add_typer(models.app)


def _skip_coercing_absent_values() -> None:
    """Start-up fix for Typer 0.29: don't build a value coercer for a parameter that is absent.

    Typer builds a pydantic ``TypeAdapter`` for every parameter it processes, even one whose
    value is ``None`` (the ``--help`` flag of every command when it is not given), and that
    imports pydantic: about 0.1 s on every ``gantools`` call. Coercing ``None`` yields ``None``
    for single-value parameters, so skipping it there changes nothing else; the required check
    and the callback still run. If Typer's internals differ, this does nothing.
    """
    param_cls = getattr(typer.core, "_TyperParameter", None)
    original = getattr(param_cls, "process_value", None)
    if original is None or getattr(original, "__wrapped_by_gantools__", False):
        return

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        if value is not None or self.required or getattr(self, "multiple", False) or getattr(self, "nargs", 1) != 1:
            return original(self, ctx, value)
        return self.callback(ctx, self, value) if self.callback is not None else value

    process_value.__wrapped_by_gantools__ = True  # type: ignore[attr-defined]
    param_cls.process_value = process_value  # type: ignore[union-attr]


def translate(exc: BaseException) -> tuple[int, str] | None:
    """``(exit code, message)`` for an error the user caused or should see as one line.

    ``None`` for anything else (a bug: let it raise). Exit code 0 comes with the help text of a
    command that was given no arguments (printed as it is, if any).
    """
    from gantools.plugin import OptionError

    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(exc, CliError):
        return exc.exit_code, str(exc)
    if isinstance(exc, OptionError):
        return USAGE, str(exc)
    if isinstance(exc, typer.Abort):
        return FAILURE, "aborted"
    if isinstance(exc, getattr(click_exceptions, "NoArgsIsHelpError", ())):
        return 0, exc.format_message()  # type: ignore[attr-defined]
    if isinstance(exc, click_exceptions.ClickException):
        return exc.exit_code, exc.format_message()
    return None


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (see the module docstring)."""
    _skip_coercing_absent_values()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="gantools", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        translated = translate(exc)
        if translated is None:
            raise
        code, message = translated
        if code == 0:
            if message.strip():
                print(message, file=sys.stderr)
        else:
            print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
