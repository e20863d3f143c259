"""The ``gantools`` command: a thin Typer layer over :mod:`gantools.api` and the registry.

* ``gantools list`` / ``info NAME`` read descriptors only (no torch, no OpenCV).
* ``gantools run NAME INPUTS... -o OUT`` - every plugin is a subcommand of ``run``, generated
  from its descriptor when ``run`` is used (:class:`PluginGroup`): platform options plus the
  plugin's typed options.
* Commands that live in other modules (``generate``, ``train``) are listed in
  :data:`EXTRA_COMMANDS` and imported only when invoked.

Errors are one line ``error: ...`` on stderr; exit codes: 0 ok, 1 failed files or a broken
plugin, 2 bad usage (unknown plugin, invalid option value), 130 interrupted. Start-up matters:
this module imports nothing heavy at module level.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from typing import Annotated, Any, Literal, Optional

import typer
from typer.core import TyperGroup

#: Top-level commands defined elsewhere: name -> ("module:attribute", short help). The attribute
#: is a ``typer.Typer`` or a click-style command (anything with ``main(args=, prog_name=)``); it is
#: imported only when the command runs, and the command is listed only if the module exists.
#: Adding a command is one line here.
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("gantools.cli_generate:app", "Make new images with a generator plugin."),
    "train": ("gantools.cli_train:train_group", "Train or fine-tune a model for a plugin."),
}

FORMAT_CHOICES = Literal["png", "jpeg", "jpg", "webp", "tiff", "tif", "bmp"]
DEFAULT_MAX_PIXELS = 89_478_485  # gantools.io.DEFAULT_MAX_PIXELS (io imports OpenCV: not at start-up)
PLATFORM_PANEL = "Platform options"


class CliError(Exception):
    """A one-line error for the user, with the process exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _console() -> Any:
    from rich.console import Console

    return Console()


def _plugin_class(name: str) -> Any:
    """The registered class, or :class:`CliError` (2: unknown, 1: broken)."""
    from gantools.registry import PluginNotFound, get_plugin_class

    try:
        return get_plugin_class(name)
    except PluginNotFound as exc:
        raise CliError(str(exc), 2) from None
    except ImportError as exc:
        raise CliError(str(exc), 1) from None


# -- top level ---------------------------------------------------------------------------------
app = typer.Typer(
    name="gantools",
    help="GAN image pipelines behind one plugin interface.",
    no_args_is_help=True,
    add_completion=False,
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


@app.command("list")
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


@app.command()
def info(name: Annotated[str, typer.Argument(help="Plugin name (see gantools list).")]) -> None:
    """Show a plugin's descriptor and its options."""
    from rich.markup import escape
    from rich.table import Table

    from gantools.registry import list_plugins

    d = _plugin_class(name).descriptor
    source = next((e.source for e in list_plugins(name) if e.name == name), "")
    console = _console()
    console.print(f"[bold]{escape(d.name)}[/bold]: {escape(d.description)}")
    about = Table.grid(padding=(0, 2))
    for key, value in (
        ("task", d.task), ("kind", d.kind), ("scale", f"x{d.scale:g}"),
        ("channels", ", ".join(map(str, d.channels))), ("tiling", "yes" if d.tiling else "no"),
        ("bf16", "allowed" if d.bf16 else "no (always fp32)"), ("weights", d.weights),
        ("training", d.train_task or "-"), ("source", source),
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


# -- gantools run NAME ----------------------------------------------------------------------
def _platform_parameters() -> list[inspect.Parameter]:
    """The options every ``gantools run NAME`` has (names are ``PLATFORM_OPTIONS``)."""

    def opt(*decls: str, help: str, **kw: Any) -> Any:
        return typer.Option(*decls, help=help, rich_help_panel=PLATFORM_PANEL, **kw)

    spec: list[tuple[str, Any, Any]] = [
        ("inputs", Annotated[Optional[list[str]], typer.Argument(
            help="Image files, folders, globs, or - for one image on stdin.", show_default=False, metavar="INPUTS")], None),
        ("output", Annotated[str, typer.Option(
            "--output", "-o", help="Output folder, file name (one input), or - for stdout.")],
         inspect.Parameter.empty),
        ("device", Annotated[str, opt(help="cpu, cuda, cuda:N or auto.")], "cpu"),
        ("precision", Annotated[Literal["auto", "fp32", "bf16"], opt(
            help="auto = bf16 where the CPU has AMX or AVX512-BF16 and the plugin allows it; 16-bit input is always fp32.")], "auto"),
        ("threads", Annotated[Optional[int], opt(help="Torch threads (default: all cores).", min=1)], None),
        ("tile", Annotated[Optional[int], opt(help="Tile size in pixels for large images (0 = off).", min=0)], None),
        ("weights", Annotated[Optional[str], opt(help="Weights file instead of the shipped ones.")], None),
        ("format", Annotated[Optional[FORMAT_CHOICES], opt(
            help="Output format (default: the input's; png for stdin).", case_sensitive=False)], None),
        ("quality", Annotated[Optional[int], opt(help="JPEG/WebP quality 1-100, PNG compression 0-9.")], None),
        ("name", Annotated[str, opt(help="Output file name template; fields {stem} {ext} {plugin} {scale}.")],
         "{stem}.{ext}"),
        ("overwrite", Annotated[bool, opt("--overwrite", help="Replace existing outputs (default: skip them).")], False),
        ("recursive", Annotated[bool, opt("--recursive", "-r", help="Descend into sub-folders of folder inputs.")], False),
        ("from_list", Annotated[Optional[str], opt(
            "--from-list", help="Read input paths from FILE (- = stdin), one per line.", metavar="FILE")], None),
        ("null", Annotated[bool, opt("--null", "-0", help="--from-list paths are NUL-separated (find -print0).")], False),
        ("json", Annotated[Optional[str], opt(help="Write the summary as JSON to PATH (- = stdout).", metavar="PATH")], None),
        ("background", Annotated[str, opt(help="Colour alpha is composited on for JPEG/BMP: white, black, #rrggbb or R,G,B.")],
         "white"),
        ("max_pixels", Annotated[int, opt(help="Refuse images with more pixels than this (0 = no limit).", min=0)],
         DEFAULT_MAX_PIXELS),
        ("workers", Annotated[Optional[int], opt(help="Decode/encode threads (default: up to 4).", min=1)], None),
        ("quiet", Annotated[bool, opt("--quiet", "-q", help="Only errors and warnings; no progress or summary.")], False),
    ]
    kind = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(name, kind, annotation=ann, default=default) for name, ann, default in spec]


def _option_parameter(option: Any, panel: str) -> inspect.Parameter:
    """A plugin :class:`~gantools.plugin.Option` as a typed Typer option."""
    annotation: Any = option.type
    if option.choices:
        annotation = Literal[tuple(option.choices)]  # type: ignore[valid-type]
    if option.default is None:
        annotation = Optional[annotation]
    decls = [f"{option.flag}/--no-{option.flag[2:]}"] if option.type is bool else [option.flag]
    bounds = {"min": option.min, "max": option.max} if option.type in (int, float) else {}
    info = typer.Option(*decls, help=option.help, rich_help_panel=panel, show_default=True, **bounds)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                             annotation=Annotated[annotation, info], default=option.default)


@functools.lru_cache(maxsize=None)
def plugin_command(cls: type) -> Any:
    """Build the ``gantools run NAME`` command of a plugin class from its descriptor."""
    d = cls.descriptor
    params = _platform_parameters() + [_option_parameter(o, f"{d.name} options") for o in d.options]

    def command(**kwargs: Any) -> int:
        return _run(d.name, kwargs)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name=d.name, help=f"{d.description}\n\nx{d.scale:g}, task {d.task}.", no_args_is_help=True)(command)
    return typer.main.get_command(single)


def parse_colour(text: str) -> tuple[int, int, int]:
    """``white``, ``black``, ``#rrggbb`` or ``R,G,B`` -> an RGB tuple; :class:`CliError` otherwise."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    value = text.strip().lower()
    try:
        if value in named:
            return named[value]
        if value.startswith("#") and len(value) == 7:
            return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        parts = [int(p) for p in value.split(",")]
        if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
            return tuple(parts)  # type: ignore[return-value]
    except ValueError:
        pass
    raise CliError(f"option --background: {text!r} is not white, black, #rrggbb or R,G,B (0-255)")


def _run(name: str, params: dict[str, Any]) -> int:
    """``gantools run NAME``: hand the parsed flags to :func:`gantools.api.run`."""
    from gantools import api
    from gantools.batch import BatchError
    from gantools.plugin import OptionError

    options = dict(params)
    inputs = options.pop("inputs") or []
    output = options.pop("output")
    options["progress"] = "off" if options.pop("quiet") else "auto"
    options["background"] = parse_colour(options["background"])
    options["max_pixels"] = options["max_pixels"] or None
    try:
        summary = api.run(name, inputs, output, **options)
    except OptionError as exc:
        raise CliError(str(exc), 2) from None
    except BatchError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    return summary.exit_code


class PluginGroup(TyperGroup):
    """``gantools run``: one subcommand per registered plugin, discovered on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        from gantools.registry import list_plugins

        return [e.name for e in list_plugins(include_broken=False)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from gantools.registry import get_plugin_class

        try:
            return plugin_command(get_plugin_class(cmd_name))
        except (KeyError, ImportError):
            return None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            _plugin_class(args[0])  # raises the one-line error: unknown (2) or broken (1)
        return super().resolve_command(ctx, args)


run_app = typer.Typer(
    name="run",
    cls=PluginGroup,
    help="Run a plugin over images: gantools run NAME INPUTS... -o OUT.",
    no_args_is_help=True,
)
app.add_typer(run_app)


# -- commands from other modules ---------------------------------------------------------
def _forwarder(name: str, target: str) -> Any:
    def forward(ctx: typer.Context) -> Any:
        module, _, attr = target.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise CliError(f"command {name!r} is unavailable: {exc}", 1) from None
        if isinstance(obj, typer.Typer):
            obj = typer.main.get_command(obj)
        return obj.main(args=list(ctx.args), prog_name=f"gantools {name}")

    return forward


for _name, (_target, _help) in EXTRA_COMMANDS.items():
    if importlib.util.find_spec(_target.partition(":")[0]) is not None:
        app.command(
            _name, help=_help, add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )(_forwarder(_name, _target))


# -- entry point -----------------------------------------------------------------------------
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


def _is_click_error(exc: BaseException) -> bool:
    """Click/Typer usage errors, recognised by shape (Typer 0.29 vendors its own click)."""
    return hasattr(exc, "exit_code") and hasattr(exc, "format_message")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    _skip_coercing_absent_values()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="gantools", standalone_mode=False)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was asked for by giving no arguments
            message = exc.format_message()  # type: ignore[attr-defined]
            if message.strip():
                print(message, file=sys.stderr)
            return 0
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
