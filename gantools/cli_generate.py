"""``gantools generate``: make new images with a generator plugin (one subcommand per generator).

    gantools generate faces -n 64 --seed 7 -o faces/                  # seed0007.png .. seed0070.png
    gantools generate faces -n 16 --seed 7 --grid sheet.png --truncation 0.7
    gantools generate faces --interpolate 7 42 --frames 48 -o walk.gif   # or walk.mp4
    gantools generate faces -n 8 --age 60 --gender female -o old/

:data:`generate_group` is the (Typer-built) click group; :data:`app` wraps it for
``gantools.cli`` (``EXTRA_COMMANDS``) so that every usage error surfaces as a click error,
which the main CLI prints as one line (exit 2). :func:`main` does the same standalone.
Torch and the plugin are imported only when a command runs.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

_typer = typer.Typer(
    name="generate",
    help="Make new images with a generator plugin.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@_typer.callback()
def _root() -> None:
    """Make new images with a generator plugin."""


def _exceptions() -> Any:
    """Click's exception module: Typer >= 0.29 vendors click, older Typer uses the click package."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _usage(message: str) -> Exception:
    """A usage error: printed as one line, exit 2."""
    return _exceptions().UsageError(message)


def _failure(message: str) -> Exception:
    """A run-time failure (unwritable output, unreadable weights): one line, exit 1."""
    exc = _exceptions().ClickException(message)
    exc.exit_code = 1
    return exc


@_typer.command("faces")
def faces(
    n: Optional[int] = typer.Option(None, "-n", "--count", help="Number of faces: seeds SEED .. SEED+N-1 [default: 1]."),
    seed: int = typer.Option(0, "--seed", help="First seed; face i depends only on seed+i."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Folder for seedNNNN.png files; a .gif/.mp4 file with --interpolate."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Also write the faces as one grid sheet (e.g. sheet.png)."),
    truncation: float = typer.Option(1.0, "--truncation", help="Truncation psi in (0, 1]; lower = more typical faces."),
    interpolate: Optional[tuple[int, int]] = typer.Option(None, "--interpolate", help="Walk from seed A to seed B: --interpolate A B."),
    frames: int = typer.Option(48, "--frames", help="Frames of an interpolation."),
    fps: float = typer.Option(24.0, "--fps", help="Frames per second of an interpolation."),
    age: Optional[str] = typer.Option(None, "--age", help="Age: years (60 means 60-69) or a group (0-2, 3-9, ... 70+)."),
    gender: Optional[str] = typer.Option(None, "--gender", help="Gender: female or male."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Generator weights (RUN/export.safetensors)."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32 or bf16 (auto = bf16 on CPUs with AMX or AVX512-BF16)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """New faces from seeds (reproducible), grids, and latent walks (GIF/MP4)."""
    if interpolate is None:
        count = 1 if n is None else n
        if count < 1:
            raise _usage(f"option -n: {count} faces: give at least 1")
        if output is None and grid is None:
            raise _usage("give -o FOLDER for one PNG per face and/or --grid FILE for a sheet")
    else:
        if n is not None:
            raise _usage("-n and --interpolate exclude each other (an interpolation has --frames)")
        if output is None:
            raise _usage("--interpolate needs -o walk.gif or -o walk.mp4")
        if not output.lower().endswith((".gif", ".mp4")):
            raise _usage(f"-o {output}: an interpolation is written as .gif or .mp4")
        if frames < 2:
            raise _usage(f"option --frames: {frames}: give at least 2")
        if not fps > 0:
            raise _usage(f"option --fps: {fps}: must be positive")
    if seed < 0 or (interpolate is not None and min(interpolate) < 0):
        raise _usage("seeds must be 0 or more")
    if not 0.0 < truncation <= 1.0:
        raise _usage(f"option --truncation: {truncation} is not in (0, 1]")
    if precision not in ("auto", "fp32", "bf16"):
        raise _usage(f"option --precision: {precision!r} is not one of auto, fp32, bf16")

    from gantools.plugin import OptionError
    from gantools.registry import load

    try:
        plugin = load("faces", weights=weights, precision=precision, threads=threads, device=device,
                      age=age, gender=gender, truncation=truncation)
        plugin.ensure_setup()
    except OptionError as exc:
        raise _usage(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise _failure(str(exc)) from None

    from gantools_faces import media

    try:
        if interpolate is not None:
            walk = plugin.interpolate(interpolate[0], interpolate[1], frames)
            path = media.write_animation(walk, output, fps)
            typer.echo(f"wrote {len(walk)} frames ({interpolate[0]} -> {interpolate[1]}) to {path}")
            if grid:
                media.write_grid(walk, grid)
                typer.echo(f"wrote grid {grid}")
            return
        faces_ = plugin.generate(count, seed)
        if output is not None:
            paths = media.write_pngs(faces_, range(seed, seed + count), output)
            typer.echo(f"wrote {len(paths)} faces to {output} ({paths[0].name} .. {paths[-1].name})")
        if grid is not None:
            media.write_grid(faces_, grid)
            typer.echo(f"wrote grid of {count} faces to {grid}")
    except ValueError as exc:  # includes gantools.io.ImageError (unwritable paths)
        raise _failure(str(exc)) from None
    except OSError as exc:
        raise _failure(str(exc)) from None


#: The click group built by Typer (``gantools generate``).
generate_group = typer.main.get_command(_typer)


def _precheck(args: list[str]) -> None:
    """Catch ``--interpolate`` with fewer than two seeds before click reads a flag as a seed."""
    for i, a in enumerate(args):
        if a == "--interpolate":
            seeds = [x for x in args[i + 1 : i + 3] if x.lstrip("-").isdigit() and not x.startswith("--")]
            if len(seeds) < 2:
                raise _usage("--interpolate needs two seeds, e.g. --interpolate 7 42")


class _OneLineCommand:
    """``main(args=, prog_name=)`` running :data:`generate_group` with click errors raised, not printed."""

    def main(self, args: list[str] | None = None, prog_name: str | None = None, **_: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        _precheck(args)
        return generate_group.main(args=args, prog_name=prog_name or "gantools generate", standalone_mode=False)


#: What ``gantools.cli.EXTRA_COMMANDS["generate"]`` points at.
app = _OneLineCommand()


def main(argv: list[str] | None = None) -> int:
    """Run ``gantools generate`` standalone; one-line errors, exit 2 for usage, 1 for failures."""
    try:
        rv = app.main(args=argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not (hasattr(exc, "exit_code") and hasattr(exc, "format_message")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message(), file=sys.stderr)
            return 0
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return int(exc.exit_code)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
