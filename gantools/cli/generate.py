"""``gantools generate NAME``: new images from a generator plugin (``descriptor.kind == "generator"``).

    gantools generate faces -n 64 --seed 7 -o faces/                  # seed0007.png .. seed0070.png
    gantools generate faces --seeds 0-35,42 -o faces/                  # seed0000.png .. seed0035.png, seed0042.png
    gantools generate faces -n 16 --seed 7 --grid sheet.png --truncation 0.7
    gantools generate faces --interpolate 7 42 --frames 48 -o walk.gif   # or walk.mp4
    gantools generate faces -n 8 --age 60 --gender female -o old/

Every generator gets the same command: the generation flags below, the ``generate`` platform
options (device, precision, threads, weights, overwrite) and the plugin's own options
(truncation, labels, ...), which are constructor options like for ``run``. Outputs follow
``run``'s rule (:func:`gantools.batch_plan.output_status`): an existing complete file is skipped
and reported unless ``--overwrite``; when every output exists, no plugin is loaded. The command drives the plugin through
:class:`gantools.plugin.GeneratorPlugin` (``generate(n, seed)``, ``interpolate(a, b, frames)``).
Torch and the plugin are imported only when a command runs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from gantools.cli.errors import failure, usage
from gantools.cli.options import GENERATE, PLATFORM_PANEL, Param, SwitchCommand, make_command, option_param, platform
from gantools.cli.plugins import PluginGroup

#: The flags of ``gantools generate NAME`` itself (a plugin option may not reuse these names).
GENERATION: tuple[Param, ...] = (
    Param("count", int, None, "Number of images: seeds SEED .. SEED+N-1 [default: 1].", ("-n", "--count")),
    Param("seed", int, 0, "First seed; image i depends only on seed+i.", ("--seed",)),
    Param("seeds", str, None, "Seeds as a list of numbers and ranges, e.g. 0-35,42 (instead of -n/--seed).",
          ("--seeds",), extra={"metavar": "LIST"}),
    Param("output", str, None, "Folder for seedNNNN.png files; a .gif/.mp4 file with --interpolate.",
          ("-o", "--output")),
    Param("grid", str, None, "Also write the images as one grid sheet (e.g. sheet.png).", ("--grid",)),
    Param("interpolate", tuple[int, int], None, "Walk from seed A to seed B: --interpolate A B.", ("--interpolate",)),
    Param("frames", int, 48, "Frames of an interpolation.", ("--frames",)),
    Param("fps", float, 24.0, "Frames per second of an interpolation.", ("--fps",)),
)


class GenerateCommand(SwitchCommand):
    """Catches ``--interpolate`` with fewer than two seeds before click reads a flag as a seed."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):
            if arg == "--interpolate":
                seeds = [x for x in args[i + 1:i + 3] if x.lstrip("-").isdigit() and not x.startswith("--")]
                if len(seeds) < 2:
                    raise usage("--interpolate needs two seeds, e.g. --interpolate 7 42")
        return super().parse_args(ctx, args)


@functools.lru_cache(maxsize=None)
def generate_command(cls: type) -> Any:
    """The ``gantools generate NAME`` command of generator plugin class ``cls``."""
    d = cls.descriptor
    own = {p.name for p in GENERATION}
    clash = [o.flag for o in d.options if o.name in own]
    if clash:
        raise failure(f"plugin {d.name!r}: option(s) {', '.join(clash)} clash with gantools generate's own flags")
    params = [(p, None) for p in GENERATION] + [(p, PLATFORM_PANEL) for p in platform(GENERATE)]
    params += [(option_param(o), f"{d.name} options") for o in d.options]
    return make_command(d.name, params, functools.partial(_generate, d.name), help=d.description,
                        no_args_is_help=False, cls=GenerateCommand)


def parse_seeds(text: str) -> list[int]:
    """``"0-35,42"`` -> ``[0, 1, ..., 35, 42]`` (StyleGAN's notation; order kept, repeats dropped)."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise usage(f"option --seeds: {part!r} is not a seed or a range A-B (e.g. --seeds 0-35,42)")
        a, b = int(low), int(high or low)
        if b < a:
            raise usage(f"option --seeds: range {part} runs backwards; write {b}-{a}")
        seeds += range(a, b + 1)
    return list(dict.fromkeys(seeds))


def check_request(count: int | None, seed: int, seeds: str | None, output: str | None, grid: str | None,
                  interpolate: tuple[int, int] | None, frames: int, fps: float) -> list[int]:
    """Usage errors of a generation request, before any plugin is loaded.

    Returns the seeds to generate (empty for an interpolation, which has ``frames`` images)."""
    if seeds is not None and (count is not None or seed != 0 or interpolate is not None):
        raise usage("--seeds lists the seeds itself: leave out -n, --seed and --interpolate")
    if interpolate is None:
        n = 1 if count is None else count
        if n < 1:
            raise usage(f"option -n: {n} images: give at least 1")
        if output is None and grid is None:
            raise usage("give -o FOLDER for one PNG per image and/or --grid FILE for a sheet")
        if seed < 0:
            raise usage("seeds must be 0 or more")
        return parse_seeds(seeds) if seeds is not None else list(range(seed, seed + n))
    else:
        if count is not None:
            raise usage("-n and --interpolate exclude each other (an interpolation has --frames)")
        if output is None:
            raise usage("--interpolate needs -o walk.gif or -o walk.mp4")
        if not output.lower().endswith((".gif", ".mp4")):
            raise usage(f"-o {output}: an interpolation is written as .gif or .mp4")
        if frames < 2:
            raise usage(f"option --frames: {frames}: give at least 2")
        if not fps > 0:
            raise usage(f"option --fps: {fps}: must be positive")
    if seed < 0 or min(interpolate) < 0:
        raise usage("seeds must be 0 or more")
    return []


def _generate(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Check the request, load the generator, make the images and write them."""
    from gantools.plugin import GeneratorPlugin, OptionError
    from gantools.registry import load

    req = groups["own"]
    seeds = check_request(**req)
    todo = _todo(_targets(req, seeds), groups["batch"]["overwrite"])
    if not todo:
        return 0  # every output exists: the model is not even loaded
    try:
        plugin = load(name, **groups["runtime"], **groups.get("plugin", {}))
        plugin.ensure_setup()
    except OptionError:
        raise
    except (OSError, ValueError) as exc:
        raise failure(exc) from None
    if not isinstance(plugin, GeneratorPlugin):
        raise failure(f"plugin {name!r} says it is a generator but has no generate()/interpolate()")
    try:
        _write(plugin, req, seeds, todo)
    except (OSError, ValueError) as exc:  # ValueError includes gantools.image.ImageError (unwritable paths)
        raise failure(exc) from None
    return 0


def _targets(req: dict[str, Any], seeds: list[int]) -> list[tuple[str, Path]]:
    """``(what, path)`` of every file the request writes: ``"animation"``, ``"seed N"``, ``"grid"``.

    A usage error if two of them are the same file (``--grid`` naming one of the images)."""
    from gantools.image.media import seed_name

    output, grid, walk = req["output"], req["grid"], req["interpolate"]
    targets: list[tuple[str, Path]] = []
    if walk is not None:
        targets.append(("animation", Path(output)))
    elif output is not None:
        targets += [(f"seed {s}", Path(output) / seed_name(s)) for s in seeds]
    if grid is not None:
        if any(Path(grid).resolve() == path.resolve() for _, path in targets):
            raise usage(f"--grid {grid} is also one of the generated files; give it another name")
        targets.append(("grid", Path(grid)))
    return targets


def _todo(targets: list[tuple[str, Path]], overwrite: bool) -> set[str]:
    """The targets to write (by ``what``); reports the existing complete ones it skips.

    A failure (exit 1) if a target is a folder or another non-regular file."""
    from gantools.batch_plan import output_status

    todo, skipped = set(), []
    for what, path in targets:
        status = output_status(path)
        if status == "special":
            raise failure(f"{path}: exists and is not a regular file; refusing to write over it")
        if status == "complete" and not overwrite:
            skipped.append(path)
        else:
            todo.add(what)
    if skipped:
        names = skipped[0].name if len(skipped) == 1 else f"{skipped[0].name} .. {skipped[-1].name}"
        typer.echo(f"skipped {len(skipped)} existing file(s) ({names}); --overwrite replaces them")
    return todo


def _runs(seeds: list[int]) -> list[tuple[int, int]]:
    """``(first seed, count)`` of each run of consecutive seeds, in order."""
    runs: list[tuple[int, int]] = []
    for s in seeds:
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


def _write(plugin: Any, req: dict[str, Any], seeds: list[int], todo: set[str]) -> None:
    """Generate (or interpolate) and write the PNGs / grid / animation in ``todo`` (see :func:`_targets`)."""
    from gantools.image import media

    output, grid, walk = req["output"], req["grid"], req["interpolate"]
    if walk is not None:
        frames = plugin.interpolate(walk[0], walk[1], req["frames"])
        if "animation" in todo:
            path = media.write_animation(frames, output, req["fps"])
            typer.echo(f"wrote {len(frames)} frames ({walk[0]} -> {walk[1]}) to {path}")
        if "grid" in todo:
            media.write_grid(frames, grid)
            typer.echo(f"wrote grid {grid}")
        return
    images = [im for first, n in _runs(seeds) for im in plugin.generate(n, first)]
    pairs = [(im, s) for im, s in zip(images, seeds) if f"seed {s}" in todo]
    if pairs:
        paths = media.write_pngs([im for im, _ in pairs], [s for _, s in pairs], output)
        typer.echo(f"wrote {len(paths)} images to {output} ({paths[0].name} .. {paths[-1].name})")
    if "grid" in todo:
        media.write_grid(images, grid)
        typer.echo(f"wrote grid of {len(images)} images to {grid}")


class GenerateGroup(PluginGroup):
    """``gantools generate``: every registered plugin whose descriptor says ``kind="generator"``."""

    what = "a generator"

    def accepts(self, descriptor: Any) -> bool:
        return descriptor is not None and descriptor.kind == "generator"

    def build(self, cls: type) -> Any:
        return generate_command(cls)


app = typer.Typer(
    name="generate",
    cls=GenerateGroup,
    help="Make new images with a generator plugin.",
    no_args_is_help=True,
)
