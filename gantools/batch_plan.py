"""Which files a batch reads and where each result goes (no pixels are touched here).

Rules (``gantools run`` documents them for users):

* Inputs are files, directories (top level only, or the whole tree with ``recursive``), glob
  patterns, ``-`` (one image on stdin) and, with ``from_list``, paths read from a file or stdin
  separated by newlines or, with ``null``, by NUL bytes. Directory scans take files with a known
  image extension, skip hidden files and folders, and never enter the output folder (compared as
  resolved paths), so a run with ``-o`` inside its input tree does not pick up its own outputs.
  The same file given twice is read once.
* ``-o -`` writes the one input image to stdout (``png`` unless ``format``). With exactly one
  input file (or ``-``) and an ``-o`` that has an image extension and is not a folder, the result
  is written to that file. Otherwise ``-o`` is a folder: files found under a directory argument
  keep their path relative to it; other inputs go to its top level (stdin as ``stdin.<ext>``).
* File names come from the ``name`` template (fields ``stem``, ``ext``, ``plugin``, ``scale``).
  The format is ``format`` if given, else the template's extension if it names a format, else
  the input's format (PNG for stdin); ``ext`` is the input's own extension when its format is
  kept, else the format's usual one.
* Per file, in this order: an output already claimed by an earlier input is an error (never an
  overwrite); an output that is one of the inputs is an error; an existing output is skipped
  unless ``overwrite``.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from gantools.image import FORMATS, check_quality, format_from_name

STDIN = "-"
TEMPLATE_FIELDS = ("stem", "ext", "plugin", "scale")
DEFAULT_TEMPLATE = "{stem}.{ext}"


class BatchError(ValueError):
    """A batch that cannot start; ``exit_code`` is 2 for bad arguments, 1 otherwise."""

    exit_code = 1


class BatchUsageError(BatchError):
    """Arguments that contradict each other or the rules above (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Source:
    """One input: ``path`` (``"-"`` for stdin), the name shown in messages, and, for files found
    under a directory argument, their path relative to it (``rel``)."""

    path: str
    shown: str
    rel: Path | None = None


@dataclass
class Job:
    """One planned file: where it goes and what happens to it.

    ``state`` is ``"todo"``, ``"skip"`` (output exists) or ``"error"`` (``error`` says why).
    """

    source: Source
    dest: str
    format: str
    state: str = "todo"
    error: str | None = None


def canonical_format(name: str) -> str:
    """``"jpg"`` -> ``"jpeg"`` etc.; :class:`BatchUsageError` naming ``--format`` if unknown."""
    fmt = format_from_name(f"x.{name}") if name and "/" not in name else None
    if fmt is None:
        raise BatchUsageError(f"option --format: {name!r} is not one of {', '.join(FORMATS)}")
    return fmt


def render_name(template: str, **fields: str) -> str:
    """Fill the ``--name`` template; :class:`BatchUsageError` for unknown fields or bad names."""
    try:
        name = template.format_map(fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        detail = f"unknown field {{{exc.args[0]}}}" if isinstance(exc, KeyError) else str(exc)
        raise BatchUsageError(
            f"option --name: {detail} in {template!r} (fields: {', '.join(TEMPLATE_FIELDS)})"
        ) from None
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts or name.endswith(("/", os.sep)):
        raise BatchUsageError(f"option --name: {template!r} gives {name!r}, not a file name inside -o")
    return name


# -- collecting inputs ---------------------------------------------------------------------
def _resolved(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(path))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and format_from_name(name) is not None


def _scan(top: str, recursive: bool, exclude: str | None) -> Iterable[Source]:
    """Image files under directory ``top`` in sorted order, skipping ``exclude`` (resolved)."""
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(
            d for d in dirs
            if recursive and not d.startswith(".") and _resolved(os.path.join(root, d)) != exclude
        )
        for name in sorted(files):
            if _is_image_name(name):
                path = os.path.join(root, name)
                yield Source(path, path, Path(os.path.relpath(path, top)))


def _read_list(list_path: str, null: bool) -> list[str]:
    """Paths from ``--from-list`` (``"-"``: stdin), one per line or NUL-separated."""
    try:
        if list_path == STDIN:
            data = sys.stdin.buffer.read()
        else:
            with open(list_path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise BatchError(f"{list_path}: cannot read list: {exc.strerror or exc}") from None
    entries = data.split(b"\0") if null else data.replace(b"\r\n", b"\n").split(b"\n")
    return [os.fsdecode(e) for e in entries if e.strip()]


@dataclass
class Inputs:
    """Collected inputs plus the arguments that matched nothing (``missing``) and list entries
    that were directories (``ignored``)."""

    sources: list[Source]
    missing: list[str]
    ignored: list[str]


def collect_inputs(
    args: Iterable[str], *, recursive: bool = False, from_list: str | None = None,
    null: bool = False, exclude: str | os.PathLike | None = None,
) -> Inputs:
    """Expand input arguments and ``from_list`` into sources (see the module rules).

    ``exclude`` is the output folder: directory scans never enter it.
    """
    args = list(args)
    if args.count(STDIN) + (from_list == STDIN) > 1:
        raise BatchUsageError("stdin can be read once: give '-' as an input or as --from-list, not both")
    skip = _resolved(exclude) if exclude is not None else None
    found: list[Source] = []
    missing: list[str] = []
    ignored: list[str] = []
    for arg in args:
        if arg == STDIN:
            found.append(Source(STDIN, "<stdin>"))
        elif os.path.isdir(arg):
            found.extend(_scan(arg, recursive, skip))
        elif os.path.lexists(arg):
            found.append(Source(arg, arg))
        elif any(c in arg for c in "*?["):  # a glob pattern
            matches = sorted(glob.glob(arg, recursive=recursive))
            for match in matches:
                if os.path.isdir(match):
                    found.extend(_scan(match, recursive, skip))
                elif _is_image_name(os.path.basename(match)):
                    found.append(Source(match, match))
            if not matches:
                missing.append(arg)
        else:
            missing.append(arg)
    if from_list is not None:
        for entry in _read_list(from_list, null):
            if os.path.isdir(entry):
                ignored.append(entry)
            elif os.path.lexists(entry):
                found.append(Source(entry, entry))
            else:
                missing.append(entry)
    seen: set[str] = set()
    unique = []
    for src in found:
        key = src.path if src.path == STDIN else _resolved(src.path)
        if key not in seen:
            seen.add(key)
            unique.append(src)
    return Inputs(unique, missing, ignored)


# -- planning outputs ----------------------------------------------------------------------
def single_file_output(args: list[str], output: str, from_list: str | None) -> bool:
    """True when ``output`` names the one result file rather than a folder."""
    return (
        output != STDIN and from_list is None and len(args) == 1
        and (args[0] == STDIN or os.path.isfile(args[0]))
        and format_from_name(output) is not None and not os.path.isdir(output)
    )


def check_output_folder(folder: str) -> None:
    """:class:`BatchError` if ``folder`` cannot be created or written (checked once, up front)."""
    probe = Path(os.path.abspath(folder))
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise BatchError(f"{folder}: cannot use as output folder: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BatchError(f"{folder}: cannot write output folder: permission denied on {probe}")


def plan_jobs(
    sources: list[Source], output: str, *, single_file: bool, plugin: str, scale: float,
    template: str = DEFAULT_TEMPLATE, format: str | None = None, quality: int | None = None,
    overwrite: bool = False,
) -> list[Job]:
    """One :class:`Job` per source, following the module rules; raises :class:`BatchError`."""
    forced = canonical_format(format) if format else None
    jobs: list[Job] = []
    if output == STDIN:
        if len(sources) > 1:
            raise BatchUsageError(f"-o - writes one image to stdout, but {len(sources)} inputs were given")
        jobs = [Job(src, STDIN, forced or "png") for src in sources]
    elif single_file:
        fmt = format_from_name(output) or "png"
        if forced and forced != fmt:
            raise BatchUsageError(f"option --format: {format} contradicts the output name {output}")
        jobs = [Job(sources[0], output, fmt)]
    else:
        render_name(template, stem="x", ext="png", plugin=plugin, scale="2")  # fail before any work
        for src in sources:
            jobs.append(_folder_job(src, output, template, forced, plugin, scale))
    for fmt in {job.format for job in jobs}:
        try:
            check_quality(fmt, quality)
        except ValueError as exc:
            raise BatchUsageError(f"option {exc}") from None
    _mark(jobs, sources, overwrite)
    return jobs


def _folder_job(src: Source, folder: str, template: str, forced: str | None, plugin: str, scale: float) -> Job:
    """The job of one source when ``-o`` is a folder."""
    if src.path == STDIN:
        stem, suffix, own = "stdin", "", None
    else:
        base = src.rel if src.rel is not None else Path(src.path)
        stem, suffix, own = base.stem, base.suffix, format_from_name(base.name)
    fmt = forced or own or "png"
    ext = suffix[1:] if (suffix and own == fmt) else FORMATS[fmt][1:]
    name = render_name(template, stem=stem, ext=ext, plugin=plugin, scale=f"{scale:g}")
    if forced is None:
        fmt = format_from_name(name) or fmt
    sub = src.rel.parent if src.rel is not None else Path()
    return Job(src, str(Path(folder, sub, name)), fmt)


def _mark(jobs: list[Job], sources: list[Source], overwrite: bool) -> None:
    """Set collisions, writes over inputs and existing outputs (in that order of precedence)."""
    inputs = {_resolved(s.path) for s in sources if s.path != STDIN}
    claimed: dict[str, str] = {}
    for job in jobs:
        if job.dest == STDIN:
            continue
        key = _resolved(job.dest)
        if key in claimed:
            job.state, job.error = "error", f"output {job.dest} is already the output of {claimed[key]}"
        elif key in inputs:
            job.state, job.error = "error", f"output {job.dest} is an input file; refusing to write over it"
        elif os.path.lexists(job.dest) and not overwrite:
            job.state = "skip"
        claimed.setdefault(key, job.source.shown)
