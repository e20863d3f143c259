"""``gantools generate NAME``: new images from a generator plugin (``descriptor.kind == "generator"``).

    gantools generate faces -n 64 --seed 7 -o faces/                  # seed0007.png .. seed0070.png
    gantools generate faces --seeds 0-35,42 -o faces/                  # seed0000.png .. seed0035.png, seed0042.png
    gantools generate faces -n 16 --seed 7 --grid sheet.png --truncation 0.7
    gantools generate faces --interpolate 7 42 --frames 48 -o walk.gif   # or walk.mp4
    gantools generate faces -n 8 --age 60 --gender female -o old/
    gantools generate faces --directions 6 --seed 3 --grid directions.png   # latent directions sheet
    gantools generate faces -n 8 -o older/ --direction 0 --amount 2          # seeds shifted along one
    gantools generate faces -n 64 -o faces/ --backend openvino          # synthesis in OpenVINO (export extra)

Every generator gets the same command: the generation flags below, the ``generate`` platform
options (device, precision, threads, backend, weights, overwrite) and the plugin's own options
(truncation, labels, ...), which are constructor options like for ``run``. Outputs follow
``run``'s rule (:func:`gantools.batch_plan.output_status`): an existing complete file is skipped
and reported unless ``--overwrite``; when every output exists, no plugin is loaded. The command drives the plugin through
:class:`gantools.plugin.GeneratorPlugin` (``generate(n, seed)``, ``interpolate(a, b, frames)``).
``--backend`` (like ``run``'s) goes to the plugin, which runs its networks through it where it can
(``faces``: the synthesis network; a plugin without graph support runs torch).
Latent directions (``--directions``, ``--direction``) need a plugin that also implements
:class:`gantools.latent.LatentGenerator`; any other generator refuses them in one line.
Torch and the plugin are imported only when a command runs.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Literal

import typer

from gantools.cli.errors import failure, usage
from gantools.cli.options import GENERATE, PLATFORM_PANEL, Param, SwitchCommand, make_command, option_param, platform
from gantools.cli.plugins import PluginGroup
from gantools.latent import DEFAULT_METHOD, METHODS

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
#: Latent-direction flags (:mod:`gantools.latent`); their values go to the ``"latent"`` group.
LATENT: tuple[Param, ...] = (
    Param("directions", int, None, "Write a sheet of the K main latent directions to --grid: one row per "
          "direction, columns -3..+3 standard deviations around --seed's image.", ("--directions",),
          group="latent", extra={"metavar": "K"}),
    Param("direction", int, None, "Shift every generated image along latent direction I (0 = the strongest).",
          ("--direction",), group="latent", extra={"metavar": "I"}),
    Param("amount", float, None, "How far --direction shifts, in standard deviations (e.g. 2 or -1.5).",
          ("--amount",), group="latent"),
    Param("method", Literal[METHODS], None,  # type: ignore[valid-type]
          "How directions are found: pca (GANSpace: principal "
          f"components of mapped latents) or sefa (closed form from the style weights) [default: {DEFAULT_METHOD}].",
          ("--method",), group="latent"),
)
LATENT_PANEL = "Latent directions"


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
    own = {p.name for p in GENERATION + LATENT}
    clash = [o.flag for o in d.options if o.name in own]
    if clash:
        raise failure(f"plugin {d.name!r}: option(s) {', '.join(clash)} clash with gantools generate's own flags")
    params = [(p, None) for p in GENERATION] + [(p, LATENT_PANEL) for p in LATENT]
    params += [(p, PLATFORM_PANEL) for p in platform(GENERATE)]
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


def check_latent(req: dict[str, Any], lat: dict[str, Any]) -> None:
    """Usage errors of the latent-direction flags ``lat`` with the request ``req``, before any loading."""
    k, index, amount = lat["directions"], lat["direction"], lat["amount"]
    if k is None and index is None:
        if amount is not None or lat["method"] is not None:
            raise usage("--amount and --method go with --direction I (or --method with --directions K)")
        return
    if k is not None and index is not None:
        raise usage("--directions K writes a sheet, --direction I shifts the images: give one of them")
    if req["interpolate"] is not None:
        raise usage("latent directions do not apply to --interpolate")
    if k is not None:
        if k < 1:
            raise usage(f"option --directions: {k}: give at least 1")
        if amount is not None:
            raise usage("--directions K shows -3..+3 standard deviations; --amount goes with --direction I")
        if req["grid"] is None or any(req[x] is not None for x in ("output", "count", "seeds")):
            raise usage("--directions K writes one sheet around --seed S: give --grid FILE (and no -o, -n, --seeds)")
        return
    if index < 0:
        raise usage(f"option --direction: {index}: directions are numbered from 0 (the strongest)")
    if amount is None:
        raise usage("--direction I needs --amount A (standard deviations, e.g. --amount 2)")
    if not math.isfinite(amount):
        raise usage(f"option --amount: {amount} is not a finite number")


def _generate(name: str, groups: dict[str, dict[str, Any]]) -> int:
    """Check the request, load the generator, make the images and write them."""
    from gantools.plugin import GeneratorPlugin, OptionError
    from gantools.registry import load

    req, lat = groups["own"], groups["latent"]
    check_latent(req, lat)
    seeds = check_request(**req)
    todo = _todo(_targets(req, seeds, sheet=lat["directions"] is not None), groups["batch"]["overwrite"])
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
    directions = _directions(plugin, name, lat)
    try:
        if lat["directions"] is not None:
            _write_sheet(plugin, req["seed"], directions, req["grid"])
        else:
            shift = None if directions is None else directions.offset(lat["direction"], lat["amount"])
            _write(plugin, req, seeds, todo, shift)
    except (OSError, ValueError) as exc:  # ValueError includes gantools.image.ImageError (unwritable paths)
        raise failure(exc) from None
    return 0


def _directions(plugin: Any, name: str, lat: dict[str, Any]) -> Any:
    """The :class:`gantools.latent.Directions` the request needs (``None`` without latent flags).

    Usage errors: a plugin without a latent space, a count or index beyond the model's ``w``."""
    from gantools.latent import LatentGenerator, find_directions

    k, index = lat["directions"], lat["direction"]
    if k is None and index is None:
        return None
    if not isinstance(plugin, LatentGenerator):
        raise usage(f"plugin {name!r} has no latent space to find directions in (--directions, --direction)")
    try:
        w_dim = int(plugin.seed_w(0).shape[-1])
        if k is not None and k > w_dim:
            raise usage(f"option --directions: {k}: this model has {w_dim} directions")
        if index is not None and index >= w_dim:
            raise usage(f"option --direction: {index}: this model's directions are 0..{w_dim - 1}")
        return find_directions(plugin, index + 1 if k is None else k, lat["method"] or DEFAULT_METHOD)
    except (OSError, ValueError) as exc:
        raise failure(exc) from None


def _write_sheet(plugin: Any, seed: int, directions: Any, grid: str) -> None:
    """The directions sheet: a row per direction, a column per amount (-3..+3 standard deviations)."""
    from gantools.image import media
    from gantools.latent import AMOUNTS, sheet

    media.write_grid(sheet(plugin, seed, directions), grid, nrow=len(AMOUNTS))
    typer.echo(f"wrote {len(directions.vectors)} {directions.method} directions x {len(AMOUNTS)} steps "
               f"({AMOUNTS[0]:+g}..{AMOUNTS[-1]:+g} std) around seed {seed} to {grid}")


def _targets(req: dict[str, Any], seeds: list[int], sheet: bool = False) -> list[tuple[str, Path]]:
    """``(what, path)`` of every file the request writes: ``"animation"``, ``"seed N"``, ``"grid"``
    (only the grid for a directions ``sheet``).

    A usage error if two of them are the same file (``--grid`` naming one of the images)."""
    from gantools.image.media import seed_name

    output, grid, walk = req["output"], req["grid"], req["interpolate"]
    if sheet:
        return [("grid", Path(grid))]
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


def _images(plugin: Any, seeds: list[int], shift: Any) -> list[Any]:
    """The images of ``seeds``, each run of consecutive seeds in one call; with ``shift`` (a ``w`` offset,
    :class:`gantools.latent.LatentGenerator` plugins) the seeds' ``w`` moved by it (a zero shift
    gives exactly the plain images)."""
    import numpy as np

    if shift is None:
        return [im for first, n in _runs(seeds) for im in plugin.generate(n, first)]
    return [im for first, n in _runs(seeds)
            for im in plugin.render_w(np.stack([plugin.seed_w(s) for s in range(first, first + n)]) + shift)]


def _write(plugin: Any, req: dict[str, Any], seeds: list[int], todo: set[str], shift: Any = None) -> None:
    """Generate (or interpolate) and write the PNGs / grid / animation in ``todo`` (see :func:`_targets`);
    ``shift`` moves every seed's ``w`` (see :func:`_images`)."""
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
    images = _images(plugin, seeds, shift)
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
