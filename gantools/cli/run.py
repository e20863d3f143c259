"""``gantools run NAME INPUTS... -o OUT``: one subcommand per registered plugin.

A plugin's command is its descriptor's options plus the ``run`` platform options
(:data:`gantools.cli.options.PLATFORM`); the values arrive in three groups: runtime settings and
plugin options build the plugin (:func:`gantools.api.load`), batch options run it
(:func:`gantools.api.run`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import typer

from gantools.cli.errors import CliError, usage
from gantools.cli.options import PLATFORM_PANEL, RUN, make_command, option_param, platform
from gantools.cli.plugins import PluginGroup
from gantools.distributed.options import ENGINE_PANEL, ENGINE_PARAMS, run_with_engine
from gantools.video.options import VIDEO_PANEL, VIDEO_PARAMS

#: ``-o`` extensions that are clearly not an image file (video, animation, documents, HEIF/AVIF)
NOT_IMAGE_SUFFIXES = frozenset({".gif", ".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".heic", ".avif", ".pdf",
                                ".jxl", ".svg"})
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
    params += [(p, ENGINE_PANEL) for p in ENGINE_PARAMS]  # gantools.distributed: --engine ray and its flags
    params += [(p, VIDEO_PANEL) for p in VIDEO_PARAMS]  # gantools.video: --frames, --codec, --crf, --pix-fmt
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
    check_output_name(io["inputs"] or [], io["output"], batch["from_list"], batch.get("frames", False))
    from gantools.batch_plan import is_uri

    if io["compare"] and (io["output"] == "-" or is_uri(io["output"]) or any(map(is_uri, io["inputs"] or []))):
        raise usage("--compare writes NAME_compare.png next to each result: give local inputs and a local -o file or "
                    "folder (not - or a URI)")
    plugin = api.load(name, **groups["runtime"], **groups.get("plugin", {}))
    try:
        summary = run_with_engine(plugin, io["inputs"] or [], io["output"], batch, groups.get("engine", {}))
    except BatchError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    if io["compare"]:
        for result in summary.files:
            if result.status == "done" and result.output:
                write_compare(result.input, result.output)
    return summary.exit_code


def check_output_name(inputs: list[str], output: str, from_list: str | None, frames: bool = False) -> None:
    """A usage error when ``-o`` looks like a file of a format ``run`` cannot write.

    ``-o a.gif`` / ``-o a.mp4`` (a video, animation or other non-image extension), or any
    extension that is no image format for one input file or ``-``, would otherwise silently
    become a folder. An existing folder, a name ending in ``/`` and a name without an extension
    stay folders (the documented rule). A video or GIF name is fine for one video or GIF input
    (:func:`gantools.video.names.output_problem`).
    """
    from gantools.image.formats import FORMATS, format_from_name
    from gantools.video.names import is_media_name, output_problem

    if output == "-" or output.endswith(("/", os.sep)) or os.path.isdir(output):
        return
    suffix = os.path.splitext(os.path.basename(output))[1]
    exts = ", ".join(sorted(set(FORMATS.values())))
    problem = output_problem(inputs, output, from_list, frames)
    if problem is None and is_media_name(output):
        return  # one video into a video name, one GIF into a GIF
    if problem is not None and not is_media_name(output):
        raise usage(f"-o {output}: {problem}")
    if suffix.lower() in NOT_IMAGE_SUFFIXES:
        why = f"; {problem}" if problem else ""
        raise usage(f"-o {output}: {suffix} is not an image format gantools writes ({exts}){why}; "
                    f"for a folder, write -o {output}/")
    single = from_list is None and len(inputs) == 1 and (inputs[0] == "-" or os.path.isfile(inputs[0]))
    if single and suffix and format_from_name(output) is None:
        raise usage(f"-o {output}: {suffix} is not an image format gantools writes ({exts}); "
                    f"for a folder, write -o {output}/")


def write_compare(source: str, result: str) -> str:
    """Write ``NAME_compare.png`` next to ``result``: ``source`` enlarged (Lanczos) to its size | ``result``.

    Both sides are shown as 8-bit BGR (gray expanded, alpha dropped, 16-bit reduced); returns the path."""
    import cv2
    import numpy as np

    from gantools.image import encode_image, read_image, write_atomic

    def bgr8(image: np.ndarray) -> np.ndarray:
        if image.dtype == np.uint16:
            image = (image.astype(np.uint32) + 128) // 257
        image = image.astype(np.uint8)
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image[..., :3]

    before, after = bgr8(read_image(source, max_pixels=None).image), bgr8(read_image(result, max_pixels=None).image)
    h, w = after.shape[:2]
    enlarged = cv2.resize(before, (w, h), interpolation=cv2.INTER_LANCZOS4)
    stem, _ = os.path.splitext(result)
    path = f"{stem}_compare.png"
    write_atomic(path, encode_image(np.hstack([enlarged, after]), "png"))
    return path


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
