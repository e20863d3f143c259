"""``gantools run NAME INPUTS... -o OUT``: one subcommand per registered plugin.

A plugin's command is its descriptor's options plus the ``run`` platform options
(:data:`gantools.cli.options.PLATFORM`); the values arrive in three groups: runtime settings and
plugin options build the plugin (:func:`gantools.api.load`), batch options run it
(:func:`gantools.api.run`).
"""

from __future__ import annotations

import functools
from typing import Any

import typer

from gantools.cli.errors import CliError, usage
from gantools.cli.options import PLATFORM_PANEL, RUN, make_command, option_param, platform
from gantools.cli.plugins import PluginGroup

NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}


def parse_colour(text: str) -> tuple[int, int, int]:
    """``white``, ``black``, ``#rrggbb`` or ``R,G,B`` -> an RGB tuple; a usage error otherwise."""
    value = text.strip().lower()
    try:
        if value in NAMED_COLOURS:
            return NAMED_COLOURS[value]
        if value.startswith("#") and len(value) == 7:
            return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        parts = [int(p) for p in value.split(",")]
        if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
            return tuple(parts)  # type: ignore[return-value]
    except ValueError:
        pass
    raise usage(f"option --background: {text!r} is not white, black, #rrggbb or R,G,B (0-255)")


@functools.lru_cache(maxsize=None)
def run_command(cls: type) -> Any:
    """The ``gantools run NAME`` command of plugin class ``cls``, built from its descriptor."""
    d = cls.descriptor
    params = [(p, PLATFORM_PANEL) for p in platform(RUN)]
    params += [(option_param(o), f"{d.name} options") for o in d.options]
    return make_command(d.name, params, functools.partial(_run, d.name),
                        help=f"{d.description}\n\nx{d.scale:g}, task {d.task}.")


def _run(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Load plugin ``name`` and run it over the inputs; returns the summary's exit code."""
    from gantools import api
    from gantools.batch import BatchError

    io, batch = groups["io"], dict(groups["batch"])
    batch["progress"] = "off" if batch.pop("quiet") else "auto"
    batch["background"] = parse_colour(batch["background"])
    batch["max_pixels"] = batch["max_pixels"] or None
    plugin = api.load(name, **groups["runtime"], **groups.get("plugin", {}))
    try:
        summary = api.run(plugin, io["inputs"] or [], io["output"], **batch)
    except BatchError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    return summary.exit_code


class RunGroup(PluginGroup):
    """``gantools run``: every registered plugin."""

    def build(self, cls: type) -> Any:
        return run_command(cls)


app = typer.Typer(
    name="run",
    cls=RunGroup,
    help="Run a plugin over images: gantools run NAME INPUTS... -o OUT.",
    no_args_is_help=True,
)
