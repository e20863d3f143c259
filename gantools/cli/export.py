"""``gantools export NAME -o model.onnx``: a plugin's network as an ONNX file.

    gantools export upscale --model fidelity --scale 2 -o sr-x2.onnx
    gantools export stylize --style candy -o candy.onnx --fp16
    gantools export stylize --weights runs/mine/export.safetensors -o mine.onnx
    gantools export faces -o faces.onnx          # inputs z, age, gender, truncation

One subcommand per registered plugin: the plugin's own options (those that choose the network:
``--model``, ``--scale``, ``--style``; processing options such as ``--strength`` are not part of
the network), ``--weights`` and ``--threads`` from the platform options, and ``-o``, ``--opset``,
``--fp16``. The work is :func:`gantools.export.export_onnx` (imported only when a command runs);
its check result is printed, and any failure is one ``error:`` line with no file left behind.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from gantools.cli.errors import failure, usage
from gantools.cli.options import PLATFORM, PLATFORM_PANEL, REQUIRED, Param, make_command, option_param
from gantools.cli.plugins import PluginGroup

#: ``gantools.export.DEFAULT_OPSET`` (that module imports torch: not at start-up).
DEFAULT_OPSET = 18

#: The flags of ``gantools export NAME`` itself.
OWN: tuple[Param, ...] = (
    Param("output", str, REQUIRED, "The .onnx file to write (its folder must exist).", ("-o", "--output")),
    Param("opset", int, DEFAULT_OPSET, "ONNX opset version.", ("--opset",), extra={"min": 11}),
    Param("fp16", bool, False, "Store weights and compute in float16 (inputs/outputs stay float32; "
          "checked against fp32 torch within 1e-2).", ("--fp16",)),
)

#: Platform options that matter for an export (read from the one declaration).
FROM_PLATFORM = ("weights", "threads")


@functools.lru_cache(maxsize=None)
def export_command(cls: type) -> Any:
    """The ``gantools export NAME`` command of plugin class ``cls``."""
    d = cls.descriptor
    params = [(p, None) for p in OWN] + [(p, PLATFORM_PANEL) for p in PLATFORM if p.name in FROM_PLATFORM]
    params += [(option_param(o), f"{d.name} options") for o in d.options]
    return make_command(d.name, params, functools.partial(_export, d.name), no_args_is_help=False,
                        help=f"{d.description}: its network as ONNX.\n\nOnly the options that choose "
                        "the network matter (weights, model, scale, style); processing options are not in it.")


def _export(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Load plugin ``name`` (CPU, fp32), export its network, print the check."""
    from gantools.export import NoNetwork, export_onnx
    from gantools.plugin import OptionError
    from gantools.registry import load

    own = groups["own"]
    output = Path(own["output"])
    if not output.parent.is_dir():
        raise usage(f"option -o: {output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise usage(f"option -o: {output} is a folder; give a file name such as model.onnx")
    try:
        plugin = load(name, device="cpu", precision="fp32", **groups["runtime"], **groups.get("plugin", {}))
        report = export_onnx(plugin, output, opset=own["opset"], fp16=own["fp16"])
    except OptionError:
        raise
    except NoNetwork as exc:
        raise usage(exc) from None
    except (OSError, ValueError) as exc:  # ExportError is a ValueError
        raise failure(exc) from None
    meta = report.metadata
    scale = f" x{meta['scale']}" if "scale" in meta else ""
    typer.echo(f"exported {name} ({meta['architecture']}{scale}, {meta['precision']}, opset {meta['opset']}) "
               f"to {report.path}: inputs {', '.join(report.inputs)} -> {', '.join(report.outputs)}")
    typer.echo(report.check_line())
    return 0


class ExportGroup(PluginGroup):
    """``gantools export``: every registered plugin (one without a network says so when used)."""

    def build(self, cls: type) -> Any:
        return export_command(cls)


app = typer.Typer(
    name="export",
    cls=ExportGroup,
    help="Export a plugin's network to ONNX: gantools export NAME -o model.onnx.",
    no_args_is_help=True,
)
