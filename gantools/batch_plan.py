"""Which files a batch reads and where each result goes (no pixels are touched here).

Rules (``gantools run`` documents them for users):

* Inputs are files, directories (top level only, or the whole tree with ``recursive``), glob
  patterns, ``-`` (one image on stdin) and, with ``from_list``, paths read from a file or stdin
  separated by newlines or, with ``null``, by NUL bytes. Directory scans take files with a known
  image extension, skip hidden files and folders, and never enter the output folder (compared as
  resolved paths), so a run with ``-o`` inside its input tree does not pick up its own outputs;
  nor is a file in the output folder that scans or globs find taken when its path there fits
  the ``name`` template and is not its own output name (``a_x2.png`` for ``{stem}_x{scale}.{ext}``),
  so ``-o`` equal to the input folder resumes. Scans and globs skip files that are not regular
  files (FIFOs, sockets, devices: reported in :attr:`Inputs.special`, never opened); such a file
  named directly is an error for that file. The same file given twice is read once.
* ``-o -`` writes the one input image to stdout (``png`` unless ``format``). With exactly one
  input file (or ``-``) and an ``-o`` that has an image extension, no trailing slash and is not a
  folder, the result is written to that file. Otherwise ``-o`` is a folder: files found under a
  directory argument keep their path relative to it; other inputs go to its top level (stdin as
  ``stdin.<ext>``).
* File names come from the ``name`` template: only the plain fields ``stem``, ``ext``, ``plugin``,
  ``scale`` (no conversions, format specs, attributes or indexes) and a name ending in an image
  extension (:func:`check_template`).
  The format is ``format`` if given, else the template's extension if it names a format, else
  the input's format (PNG for stdin); ``ext`` is the input's own extension when its format is
  kept, else the format's usual one.
* A name that only this input's stem makes bad (``{stem}/x.png`` for a file ``...png``) is an
  error for that file. Per file, in this order: an output already claimed by an earlier input is an error (never an
  overwrite); an output that is one of the inputs is an error; something at the output name
  that is not a regular file is an error; a complete image there (:func:`output_status`) is
  skipped unless ``overwrite``; an empty, truncated or undecodable file there is redone.
* Videos and GIFs (found by extension like images) are inputs too; where their results go and
  in which format is :mod:`gantools.video.names`' rule (``Job.media`` says which kind they are).
* The ``--json`` summary path is never an input, an output or the output folder of the run, nor
  an existing folder, non-regular file or non-JSON file (:func:`check_summary_path`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gantools.image import FORMATS, check_quality, format_from_name
from gantools.image.atomic import read_at_most
from gantools.image.formats import is_complete
from gantools.video import names as media_names

STDIN = "-"
TEMPLATE_FIELDS = ("stem", "ext", "plugin", "scale")
DEFAULT_TEMPLATE = "{stem}.{ext}"
#: the longest ``--from-list`` accepted
MAX_LIST_BYTES = 16 << 20


class BatchError(ValueError):
    """A batch that cannot start; ``exit_code`` is 2 for bad arguments, 1 otherwise."""

    exit_code = 1


class BatchUsageError(BatchError):
    """Arguments that contradict each other or the rules above (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Source:
    """One input: ``path`` (``"-"`` for stdin), the name shown in messages, and, for files found
    under a directory argument, their path relative to it (``rel``). ``picked``: found by a
    directory scan or a glob rather than named."""

    path: str
    shown: str
    rel: Path | None = None
    picked: bool = False


@dataclass
class Job:
    """One planned file: where it goes and what happens to it.

    ``state`` is ``"todo"``, ``"skip"`` (output exists) or ``"error"`` (``error`` says why).
    ``media`` is ``"video"``, ``"frames"`` or ``"animation"`` for the inputs of
    :mod:`gantools.video` (``format`` is then the container or the frames' image format).
    """

    source: Source
    dest: str
    format: str
    state: str = "todo"
    error: str | None = None
    media: str | None = None


def canonical_format(name: str) -> str:
    """``"jpg"`` -> ``"jpeg"`` etc.; :class:`BatchUsageError` naming ``--format`` if unknown."""
    fmt = format_from_name(f"x.{name}") if name and "/" not in name else None
    if fmt is None:
        raise BatchUsageError(f"option --format: {name!r} is not one of {', '.join(FORMATS)}")
    return fmt


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """``(literal text, field or None)`` pairs of a ``--name`` template; only plain documented
    fields are allowed (:class:`BatchUsageError` otherwise)."""
    fields = "fields: " + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BatchUsageError(f"option --name: {exc} in {template!r} ({fields})") from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (name not in TEMPLATE_FIELDS or spec or conversion):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise BatchUsageError(f"option --name: {shown} is not a field in {template!r} ({fields})")
        parts.append((literal, name))
    return parts


def check_template(template: str) -> None:
    """:class:`BatchUsageError` unless ``template`` has only the plain documented fields and gives
    a name with an image extension (whatever ``{ext}`` is) inside the output folder."""
    _template_parts(template)
    for ext in FORMATS.values():
        name = render_name(template, stem="x", ext=ext[1:], plugin="p", scale="2")
        if format_from_name(name) is None:
            known = ", ".join(FORMATS.values())
            raise BatchUsageError(f"option --name: {template!r} gives {name!r}: end it in .{{ext}} or one of {known}")


def own_output_pattern(template: str, plugin: str, scale: float) -> re.Pattern[str]:
    """The relative paths (POSIX, below the output folder) that ``template`` can produce."""
    exts = "|".join(re.escape(e[1:]) for e in sorted(_all_extensions()))
    values = {"plugin": re.escape(plugin), "scale": re.escape(f"{scale:g}"), "stem": "[^/]+", "ext": f"(?i:{exts})"}
    body = "".join(re.escape(literal) + (values[name] if name else "") for literal, name in _template_parts(template))
    return re.compile(f"(?:.+/)?{body}")


def _all_extensions() -> set[str]:
    from gantools.image.registry import registered

    return {ext for fmt in registered() for ext in fmt.extensions}


def render_name(template: str, **fields: str) -> str:
    """Fill the ``--name`` template; :class:`BatchUsageError` for bad fields or bad names."""
    _template_parts(template)
    name = template.format_map(fields)
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts or name.endswith(("/", os.sep)):
        raise BatchUsageError(f"option --name: {template!r} gives {name!r}, not a file name inside -o")
    return name


# -- collecting inputs ---------------------------------------------------------------------
def _resolved(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(path))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and (format_from_name(name) is not None or media_names.is_media_name(name))


def special_kind(path: str) -> str | None:
    """What ``path`` is if it exists and is not a regular file (``"a FIFO"``, ...), else ``None``.

    Never opens the file (opening a FIFO blocks until someone writes to it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: reading it reports the problem
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((word for test, word in kinds if test(mode)), "not a regular file")


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
                yield Source(path, path, Path(os.path.relpath(path, top)), picked=True)


def _read_list(list_path: str, null: bool) -> list[str]:
    """Paths from ``--from-list`` (``"-"``: stdin), one per line or NUL-separated; at most
    :data:`MAX_LIST_BYTES` (a longer list, or ``/dev/zero``, is a :class:`BatchError`)."""
    try:
        if list_path == STDIN:
            data = read_at_most(sys.stdin.buffer, MAX_LIST_BYTES)
        else:
            with open(list_path, "rb") as f:
                data = read_at_most(f, MAX_LIST_BYTES)
    except OSError as exc:
        raise BatchError(f"{list_path}: cannot read list: {exc.strerror or exc}") from None
    if data is None:
        raise BatchError(f"{list_path}: list is longer than {MAX_LIST_BYTES >> 20} MB; split it")
    entries = data.split(b"\0") if null else data.replace(b"\r\n", b"\n").split(b"\n")
    return [os.fsdecode(e) for e in entries if e.strip()]


@dataclass
class Inputs:
    """Collected inputs plus the arguments that matched nothing (``missing``), list entries
    that were directories (``ignored``) and ``(path, kind)`` of the non-regular files that scans
    and globs skipped (``special``)."""

    sources: list[Source]
    missing: list[str]
    ignored: list[str]
    special: list[tuple[str, str]] = field(default_factory=list)


def collect_inputs(
    args: Iterable[str], *, recursive: bool = False, from_list: str | None = None,
    null: bool = False, exclude: str | os.PathLike | None = None,
) -> Inputs:
    """Expand input arguments and ``from_list`` into sources (see the module rules).

    ``exclude`` is the output folder: directory scans never enter it.
    """
    args = list(args)
    if args.count(STDIN) > 1:
        raise BatchUsageError(f"stdin can be read once, but '-' is given {args.count(STDIN)} times")
    if STDIN in args and from_list == STDIN:
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
                    found.append(Source(match, match, picked=True))
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
    unique, special = [], []
    for src in found:
        key = src.path if src.path == STDIN else _resolved(src.path)
        kind = special_kind(src.path) if src.picked else None
        if kind is not None:
            special.append((src.path, kind))
        elif key not in seen:
            seen.add(key)
            unique.append(src)
    return Inputs(unique, missing, ignored, special)


# -- planning outputs ----------------------------------------------------------------------
def single_file_output(args: list[str], output: str, from_list: str | None, frames: bool = False) -> bool:
    """True when ``output`` names the one result file rather than a folder."""
    return (
        output != STDIN and from_list is None and len(args) == 1
        and (args[0] == STDIN or os.path.isfile(args[0]))
        and (format_from_name(output) is not None or media_names.single_output(args[0], output, frames) is not None)
        and not os.path.isdir(output)
        and not output.endswith(tuple(filter(None, ("/", os.sep, os.altsep))))  # "new.png/": a folder
    )


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(arg: str) -> bool:
    """Whether an input or ``-o`` argument is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(arg))


def check_local_output(output: str) -> None:
    """:class:`BatchUsageError` for a URI ``-o`` on the local engine (only the Ray engine writes URIs)."""
    if is_uri(output):
        raise BatchUsageError(f"-o {output}: writing to a URI needs --engine ray (the local engine writes local files)")


def check_file_output(args: list[str], output: str, from_list: str | None, frames: bool = False) -> None:
    """:class:`BatchUsageError` for one input file and an ``-o`` without an extension that is not a
    folder yet: is a file or a folder meant? A trailing slash, an existing folder, several inputs,
    a folder input, ``-`` or ``--from-list`` keep ``-o`` a folder; a name that the format registry
    (or :mod:`gantools.video`) writes is the result file."""
    if (output == STDIN or output.endswith(tuple(filter(None, ("/", os.sep, os.altsep)))) or os.path.isdir(output)
            or from_list is not None or len(args) != 1 or not os.path.isfile(args[0])
            or single_file_output(args, output, from_list, frames) or os.path.splitext(os.path.basename(output))[1]):
        return
    raise BatchUsageError(f"-o {output}: no image extension; write {output}/ for a folder or e.g. {output}.png "
                          "for a file")


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
    overwrite: bool = False, frames: bool = False,
) -> list[Job]:
    """One :class:`Job` per source, following the module rules; raises :class:`BatchError`."""
    forced = canonical_format(format) if format else None
    check_template(template)  # fail before any work, whatever the mode
    jobs: list[Job] = []
    if output == STDIN:
        if len(sources) > 1:
            raise BatchUsageError(f"-o - writes one image to stdout, but {len(sources)} inputs were given")
        jobs = [Job(src, STDIN, forced or "png") for src in sources]
    elif single_file:
        media, fmt, problem = media_names.single_format(sources[0].path, output, frames)
        fmt = fmt or format_from_name(output) or "png"
        if forced and forced != fmt and media != "video":
            raise BatchUsageError(f"option --format: {format} contradicts the output name {output}")
        jobs = [Job(sources[0], output, fmt, "error" if problem else "todo", problem, media)]
    else:
        own = own_output_pattern(template, plugin, scale)
        jobs = [_folder_job(src, output, template, forced, plugin, scale, frames) for src in sources]
        jobs = [job for job in jobs if not _is_own_output(job, output, own)]
    for fmt in {job.format for job in jobs if job.format in FORMATS}:
        try:
            check_quality(fmt, quality)
        except ValueError as exc:
            raise BatchUsageError(f"option {exc}") from None
    for job in jobs:
        kind = special_kind(job.source.path) if job.source.path != STDIN else None
        if kind is not None:
            job.state, job.error = "error", f"is {kind}, not a regular file"
    _mark(jobs, overwrite)
    return jobs


def _is_own_output(job: Job, folder: str, own: re.Pattern[str]) -> bool:
    """Whether a scanned or globbed input is a result of this run's naming in the output folder:
    its path below ``folder`` fits the template, and it is not its own output name (with the
    template ``{stem}.{ext}`` every file fits; such a file stays an input)."""
    if not job.source.picked:
        return False
    path, top = _resolved(job.source.path), _resolved(folder)
    if os.path.commonpath([path, top]) != top or path == _resolved(job.dest):
        return False
    return own.fullmatch(Path(os.path.relpath(path, top)).as_posix()) is not None


def _folder_job(src: Source, folder: str, template: str, forced: str | None, plugin: str, scale: float,
                frames: bool = False) -> Job:
    """The job of one source when ``-o`` is a folder."""
    if src.path == STDIN:
        stem, suffix, own = "stdin", "", None
    else:
        base = src.rel if src.rel is not None else Path(src.path)
        stem, suffix, own = base.stem, base.suffix, format_from_name(base.name)
    media = media_names.folder_format(src.path, forced, frames) if src.path != STDIN else None
    fmt = forced or own or "png"
    ext = suffix[1:] if (suffix and own == fmt) else FORMATS[fmt][1:]
    if media is not None:
        _, fmt, ext = media
    sub = src.rel.parent if src.rel is not None else Path()
    try:
        name = render_name(template, stem=stem, ext=ext, plugin=plugin, scale=f"{scale:g}")
    except BatchUsageError as exc:  # this stem makes a bad path: an error for this file only
        return Job(src, str(Path(folder, sub, f"{stem}{suffix}")), fmt, "error", str(exc))
    if forced is None:
        fmt = format_from_name(name) or fmt
    if media is not None:
        name, fmt = media_names.folder_name(media[0], name, fmt)
    return Job(src, str(Path(folder, sub, name)), fmt, media=media[0] if media else None)


def output_status(path: str | os.PathLike) -> str:
    """What is at an output path: ``"absent"``; ``"complete"`` (a regular file that is a whole
    image, :func:`gantools.image.formats.is_complete`; for a name without an image extension,
    such as an animation, any non-empty file); ``"partial"`` (anything else that can be replaced:
    an empty, truncated or undecodable file, a dangling link); or ``"special"`` (a folder, FIFO,
    device...: never opened, never replaced)."""
    try:
        info = os.stat(path)
    except OSError:
        return "partial" if os.path.lexists(path) else "absent"
    if not stat.S_ISREG(info.st_mode):
        return "special"
    if format_from_name(path) is None:
        return "complete" if info.st_size and media_names.is_complete(path) else "partial"
    try:
        with open(path, "rb") as f:
            return "complete" if is_complete(f.read()) else "partial"
    except OSError:
        return "partial"


def _mark(jobs: list[Job], overwrite: bool) -> None:
    """Set collisions, writes over inputs and existing outputs (in that order of precedence)."""
    inputs = {_resolved(job.source.path) for job in jobs if job.source.path != STDIN}
    claimed: dict[str, str] = {}
    for job in jobs:
        if job.dest == STDIN or job.state == "error":
            continue
        key = _resolved(job.dest)
        status = output_status(job.dest) if key not in claimed and key not in inputs else None
        if key in claimed:
            job.state, job.error = "error", f"output {job.dest} is already the output of {claimed[key]}"
        elif key in inputs:
            job.state, job.error = "error", f"output {job.dest} is an input file; refusing to write over it"
        elif status == "special":
            job.state, job.error = "error", f"output {job.dest} exists and is not a regular file"
        elif status == "complete" and not overwrite:
            job.state = "skip"
        claimed.setdefault(key, job.source.shown)


def check_summary_path(path: str, jobs: list[Job], output: str, from_list: str | None) -> None:
    """:class:`BatchUsageError` if the ``--json`` file ``path`` is an input, an output or the output
    folder of the run, a folder or other non-regular file, or an existing file that is not JSON
    (an empty file is fine). Never opens a non-regular file."""
    key = _resolved(path)
    inputs = {_resolved(j.source.path) for j in jobs if j.source.path != STDIN}
    if from_list not in (None, STDIN):
        inputs.add(_resolved(from_list))
    outputs = {_resolved(j.dest) for j in jobs if j.dest != STDIN} | ({_resolved(output)} if output != STDIN else set())
    kind = special_kind(path)
    problem = (
        "names a folder; give a file name" if path.endswith(tuple(filter(None, ("/", os.sep, os.altsep))))
        else "is an input of this run" if key in inputs
        else "is an output of this run" if key in outputs
        else f"is {kind}, not a file" if kind is not None
        else "exists and is not a JSON file; refusing to replace it" if os.path.lexists(path) and not _is_json(path)
        else None
    )
    if problem:
        raise BatchUsageError(f"option --json: {path} {problem}")
    try:
        check_output_folder(os.path.dirname(path) or ".")
    except BatchError as exc:
        raise BatchUsageError(f"option --json: {exc}") from None


def _is_json(path: str) -> bool:
    """Whether the file at ``path`` is empty or holds JSON (an earlier summary)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data.strip():
            json.loads(data)
        return True
    except (OSError, ValueError):
        return False
