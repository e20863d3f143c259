"""Command-line flags as data: ONE declaration of the platform options, ONE plugin-Option builder.

Every command with plugin-dependent flags (``run NAME``, ``generate NAME``, ``train TASK``) is
built by :func:`make_command` from a list of :class:`Param`:

* :data:`PLATFORM`: the platform options, each declared once with the ``group`` its value goes
  to (``runtime``: the plugin constructor / training engine; ``batch``: ``BatchOptions``;
  ``io``: the command's inputs and output) and the ``commands`` that have it;
* :func:`option_param`: a plugin's (or training task's) :class:`~gantools.plugin.Option`;
* the command's own flags (``--seed``, ``--steps``, ...).

The callback receives the values already split: ``callback(groups)`` where ``groups`` maps a
group name to ``{name: value}`` (``"plugin"`` holds the Option values, ``"own"`` the command's
own flags). Nothing here imports torch or OpenCV. ``gantools.plugin.PLATFORM_OPTIONS`` (the names
a plugin option may not take) is checked against :data:`PLATFORM` by the tests.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Mapping, Optional, Sequence

import typer
from typer.core import TyperCommand

from gantools.cli.errors import usage

#: ``gantools.image.DEFAULT_MAX_PIXELS`` (its codec imports OpenCV: not at start-up; a test checks it).
DEFAULT_MAX_PIXELS = 89_478_485
FORMATS = Literal["png", "jpeg", "jpg", "webp", "tiff", "tif", "bmp"]
PRECISIONS = Literal["auto", "fp32", "bf16"]
BACKENDS = Literal["auto", "torch", "openvino", "onnxruntime"]  #: gantools.backends.BACKENDS (a test checks it)
PLATFORM_PANEL = "Platform options"
REQUIRED = inspect.Parameter.empty

RUN, GENERATE, TRAIN = "run", "generate", "train"


@dataclass(frozen=True)
class Param:
    """One flag (or the positional ``argument``): the keyword ``name``, value ``type``, ``default``.

    ``decls`` are the flag spellings (default ``--name-with-dashes``); ``default`` ``REQUIRED``
    makes it mandatory and ``None`` makes the type optional. ``group`` says where the value goes
    (see the module docstring); ``commands`` lists the commands that have a platform option.
    ``extra`` goes to ``typer.Option`` (``min``, ``max``, ``metavar``, ``case_sensitive``).
    """

    name: str
    type: Any
    default: Any
    help: str
    decls: tuple[str, ...] = ()
    group: str = "own"
    commands: frozenset[str] = frozenset()
    argument: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def parameter(self, panel: str | None = None, *, unset: bool = False) -> inspect.Parameter:
        """The Typer parameter. ``unset``: default ``None`` (someone else's default applies),
        except for required values and on/off flags other than a task's ``--x/--no-x`` options
        (their ``False`` already means "not given")."""
        from rich.markup import escape  # help is Rich markup: "[default: 4]" must stay text

        default, help_ = self.default, escape(self.help)
        if unset and (self.type is not bool or self.group == "plugin") and self.default is not REQUIRED:
            default = None
            if self.group == "plugin" and self.default is not None:  # a task option: show the task's default
                help_ = escape(f"{self.help} [default: {self.default}]")
        annotation = Optional[self.type] if default is None else self.type
        if self.argument:
            info = typer.Argument(help=help_, show_default=False, **self.extra)
        else:
            decls = self.decls or ("--" + self.name.replace("_", "-"),)
            info = typer.Option(*decls, help=help_, rich_help_panel=panel, **self.extra)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[annotation, info], default=default)


def _platform(name: str, type_: Any, default: Any, help: str, group: str, commands: set[str], *decls: str,
              **kw: Any) -> Param:
    return Param(name, type_, default, help, decls, group, frozenset(commands), **kw)


#: The platform options: every flag that the platform (not a plugin) gives ``run``, ``generate``
#: or ``train``. A plugin option may not reuse these names (``gantools.plugin.PLATFORM_OPTIONS``).
PLATFORM: tuple[Param, ...] = (
    _platform("inputs", list[str], None, "Image files, folders, globs, or - for one image on stdin.", "io", {RUN},
              argument=True, extra={"metavar": "INPUTS..."}),
    _platform("output", str, REQUIRED, "Output folder, file name (one input), or - for stdout.", "io", {RUN},
              "--output", "-o"),
    _platform("device", str, "auto", "auto (CUDA or MPS when present, else CPU), cpu, cuda, cuda:N or mps.",
              "runtime", {RUN, GENERATE, TRAIN}),
    _platform("precision", PRECISIONS, "auto", "auto = bf16 where the CPU has AMX or AVX512-BF16 and the plugin "
              "allows it; 16-bit input is always fp32.", "runtime", {RUN, GENERATE, TRAIN}),
    _platform("threads", int, None, "Torch threads (in a run: per image, OpenCV's too) [default: all cores; "
              "in a run, as --jobs decides].", "runtime", {RUN, GENERATE, TRAIN},
              extra={"min": 1}),
    _platform("backend", BACKENDS, "auto", "Network runtime on the CPU: torch (eager), openvino or onnxruntime (the "
              "network exported to ONNX once, cached; need the export extra); auto = the fastest measured for the "
              "network and precision (bench/results/speed.md).", "runtime", {RUN, GENERATE},
              extra={"case_sensitive": False}),
    _platform("tile", int, None, "Tile size in pixels for large images (0 = off) [default: automatic, from the image size and "
              "memory].", "runtime", {RUN},
              extra={"min": 0}),
    _platform("weights", str, None, "Weights file instead of the shipped ones (e.g. RUN/export.safetensors).",
              "runtime", {RUN, GENERATE}),
    _platform("format", FORMATS, None, "Output format (default: the input's; png for stdin).", "batch", {RUN},
              extra={"case_sensitive": False}),
    _platform("quality", int, None, "JPEG/WebP quality 1-100, PNG compression 0-9 [default: 95 for JPEG/WebP, 3 for PNG].",
              "batch", {RUN}),
    _platform("name", str, "{stem}.{ext}", "Output file name template; fields {stem} {ext} {plugin} {scale}.",
              "batch", {RUN}),
    _platform("overwrite", bool, False, "Replace existing outputs (default: skip them).", "batch", {RUN, GENERATE},
              "--overwrite"),
    _platform("recursive", bool, False, "Descend into sub-folders of folder inputs.", "batch", {RUN},
              "--recursive", "-r"),
    _platform("from_list", str, None, "Read input paths from FILE (- = stdin), one per line.", "batch", {RUN},
              "--from-list", extra={"metavar": "FILE"}),
    _platform("null", bool, False, "--from-list paths are NUL-separated (find -print0).", "batch", {RUN},
              "--null", "-0"),
    _platform("json", str, None, "Write the summary as JSON to PATH (- = stdout).", "batch", {RUN},
              extra={"metavar": "PATH"}),
    _platform("background", str, "white", "Colour alpha is composited on for JPEG/BMP: white, black, #rrggbb "
              "or R,G,B.", "batch", {RUN}),
    _platform("max_pixels", int, DEFAULT_MAX_PIXELS, "Refuse images with more pixels than this (0 = no limit).",
              "batch", {RUN, TRAIN}, extra={"min": 0}),
    _platform("workers", int, None, "Decode/encode threads (default: up to 4).", "batch", {RUN}, extra={"min": 1}),
    _platform("jobs", str, "auto", "Images computed at once, each with cores/N threads. auto: on the CPU one image "
              "per core with 1 thread each (results over 16 megapixels alone); one at a time on a GPU, for one "
              "image or a plugin without parallel_safe, then with the idle cores (load average) on a busy CPU.",
              "batch", {RUN}, extra={"metavar": "N|auto"}),
    _platform("compare", bool, False, "Also write NAME_compare.png next to each result: the input enlarged "
              "with Lanczos | the result.", "io", {RUN}, "--compare"),
    _platform("quiet", bool, False, "Only errors and warnings; no progress or summary.", "batch", {RUN, TRAIN},
              "--quiet", "-q"),
)


def plain_help() -> None:
    """Help shows a switch as a switch and an argument by its metavar only (``INPUTS...``).

    Typer 0.29 prints a type after every parameter (``--overwrite <bool>``, ``INPUTS
    <list[str]>``), which reads as if a switch took a value. Installed once when this module is
    imported; if Typer's internals differ, this does nothing.
    """
    from typer import core

    for cls, plain in ((getattr(core, "TyperOption", None), lambda p: p.is_flag),
                       (getattr(core, "TyperArgument", None), lambda p: p.metavar is not None or p.nargs != 1)):
        original = getattr(cls, "display_type_rich", None)
        if original is None or getattr(original, "__wrapped_by_gantools__", False):
            continue

        def display_type_rich(self: Any, ctx: Any, _original: Any = original, _plain: Any = plain) -> Any:
            return None if _plain(self) else _original(self, ctx)

        display_type_rich.__wrapped_by_gantools__ = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich  # type: ignore[union-attr]
    usage_name = getattr(core.TyperArgument, "_usage_display_name", None)
    if usage_name is not None and not getattr(usage_name, "__wrapped_by_gantools__", False):

        def _usage_display_name(self: Any) -> str:  # "INPUTS..." is not repeated as "[INPUTS...]..."
            name = usage_name(self)
            return name[:-3] if name.endswith("...]...") else name

        _usage_display_name.__wrapped_by_gantools__ = True  # type: ignore[attr-defined]
        core.TyperArgument._usage_display_name = _usage_display_name  # type: ignore[attr-defined]


plain_help()


def platform(command: str) -> list[Param]:
    """The platform options of ``command`` (``run``, ``generate`` or ``train``), in declaration order."""
    return [p for p in PLATFORM if command in p.commands]


def option_param(option: Any) -> Param:
    """A plugin or training-task :class:`~gantools.plugin.Option` as a :class:`Param` (group ``plugin``).

    Choices become a ``Literal`` (click shows ``a|b|c``), ``min``/``max`` bound numbers, a bool
    is a ``--flag/--no-flag`` pair; the help shows the default.
    """
    type_: Any = Literal[tuple(option.choices)] if option.choices else option.type  # type: ignore[valid-type]
    decls = (f"{option.flag}/--no-{option.flag[2:]}",) if option.type is bool else (option.flag,)
    bounds = {"min": option.min, "max": option.max} if option.type in (int, float) else {}
    if option.type is float and not option.choices:  # nan passes range checks: say what is wrong
        bounds["parser"] = _finite_float
    return Param(option.name, type_, option.default, option.help, decls, "plugin", extra=bounds)


def _finite_float(text: Any) -> float:
    """A float option's value; ``nan`` is a usage error (the plugin's ``Option`` checks the range)."""
    value = float(text)
    if value != value:
        raise ValueError(f"{text} is not a number")
    return value


#: words that a user may write after a switch, thinking it takes a value
BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})


class SwitchCommand(TyperCommand):
    """A command whose switches take no value: ``--overwrite true`` is a usage error, not an input ``true``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        switches = {o for p in self.params if getattr(p, "is_flag", False) for o in (*p.opts, *p.secondary_opts)}
        for arg, after in zip(args, args[1:]):
            if arg == "--":
                break
            if arg in switches and after.lower() in BOOL_WORDS:
                raise usage(f"{arg} is a switch and takes no value: write {arg} alone, not {arg} {after}")
        return super().parse_args(ctx, args)


def make_command(name: str, params: Sequence[tuple[Param, str | None]], callback: Callable[[dict], Any], *,
                 help: str, unset: bool = False, no_args_is_help: bool = True, cls: type | None = None) -> Any:
    """A click command called ``name`` with ``params`` (each with its help panel).

    ``callback`` gets ``{group: {name: value}}`` and returns the exit code. ``unset`` makes every
    non-flag default ``None`` (see :meth:`Param.parameter`); ``cls`` is a :class:`SwitchCommand` subclass.
    """
    groups = {p.name: p.group for p, _ in params}

    def command(**values: Any) -> Any:
        split: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            split.setdefault(groups[key], {})[key] = value
        return callback(split)

    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.parameter(panel, unset=unset) for p, panel in params])
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name=name, help=help, no_args_is_help=no_args_is_help, cls=cls or SwitchCommand)(command)
    return typer.main.get_command(single)
