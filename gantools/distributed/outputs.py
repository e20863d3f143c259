"""``-o URI`` for the Ray engine: outputs written through ``pyarrow.fs`` (``s3://``, ``gs://``, ``file://``...).

Naming is the local runner's (:mod:`gantools.batch_plan`): planning runs against a stand-in local
folder that does not exist (:attr:`UriOutput.stand_in`), and :meth:`UriOutput.place` then moves each
planned name under the URI, so ``--name``, ``--format``, extensions, subfolders of folder inputs,
name collisions and the one-file ``-o s3://bucket/out.png`` (one input file, an image extension, no
trailing ``/``, not an existing folder) are exactly the local rules. Output URIs (``Job.dest``, the
summary's ``output``) are the ``-o`` URI without its query, then ``/`` and the percent-encoded name.
Also as locally: an output that is an input is an error for that file; a file found in the output
folder whose name fits the ``--name`` template (and is not its own output) is no input; a video or
GIF input is an error for that file (videos are written by this process, to a local ``-o`` only).

Resume (:meth:`UriOutput.status`): nothing at the key is ``absent``; a folder (a prefix holding
objects) is ``special`` (an error for that file); an empty object is ``partial`` (redone). A
non-empty object is ``complete`` when its first bytes are the signature of a format gantools
writes (one ranged read) -- the cheap check, since the writes below never leave a truncated object.
On a ``local`` file system the local runner's rule (:func:`gantools.batch_plan.output_status`,
which reads the whole file) is used instead. The status is checked again just before each write, so
an output finished by another run meanwhile is skipped; there is no lock across runs (the local
runner's ``flock`` claim): two runs at once may both compute an output, and the last write stays.

Atomic writes, decided per file system (:func:`strategy`, by ``FileSystem.type_name``):

* ``local`` (``file://``): :func:`gantools.image.atomic.write_atomic` -- a temporary
  ``.<name>.<random>.part`` beside the output, fsynced and renamed onto it: the one atomic writer
  of gantools, i.e. the temporary-name-and-move rule of a file system that renames.
* ``s3``, ``gcs``, ``abfs`` (object stores: ``move`` is a copy plus a delete, or missing): the final
  key is written with one ``open_output_stream``, the whole encoded file in one ``write``, then
  ``close``. The store creates the object only when that upload completes (one PUT, or a multipart
  or resumable upload finished at close), so readers see the old object or the new one, never part
  of it, and no temporary object is left behind.
* any other (``hdfs``, an fsspec-backed ``PyFileSystem``...): a temporary ``.<name>.<random>.part``
  in the same folder, written with one stream, then ``move`` onto the final path (a rename); a file
  system whose ``move`` will not replace a file gets the old (partial) file deleted first, and one
  without ``move`` gets the single-stream write. The temporary file is removed on failure.

Nothing here imports Ray; ``pyarrow`` is imported when a URI is opened.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable
from urllib.parse import quote

from gantools.batch_plan import BatchError, BatchUsageError, Job, Source, check_output_folder, output_status
from gantools.distributed.uris import location, uri_problem
from gantools.image.atomic import write_atomic
from gantools.image.formats import PREFIX_BYTES, sniff

#: ``type_name`` of the file systems written with one stream (see the module docstring)
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
#: what :meth:`UriOutput.place` says about a video or GIF input
MEDIA_ERROR = "videos and GIFs are written to a local -o folder only with --engine ray"


def strategy(filesystem: Any) -> str:
    """How :meth:`UriOutput.write` makes a write atomic on ``filesystem``: ``"local"``, ``"stream"``
    (object stores) or ``"move"`` (the rest); see the module docstring."""
    kind = filesystem.type_name
    return "local" if kind == "local" else "stream" if kind in OBJECT_STORES else "move"


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def open_output(uri: str) -> UriOutput:
    """The file system of ``-o uri`` (:class:`BatchUsageError` naming the URI if ``pyarrow.fs``
    cannot open it: an unknown scheme, a malformed URI...). Contacts nothing but the file system."""
    try:
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
    except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise BatchUsageError(f"-o {uri_problem(uri, exc)}") from None
    found = {fs.FileType.NotFound: "absent", fs.FileType.File: "file", fs.FileType.Directory: "folder"}
    return UriOutput(uri.split("?", 1)[0], filesystem, path, found.get(info.type, "other"))


@dataclass
class UriOutput:
    """An output URI: ``shown`` (``-o`` without its query), its ``filesystem`` and ``path`` there, and
    what is there now (``exists``: absent, file, folder, other); :meth:`plan_as` and :meth:`place`
    tie it to the local planning."""

    shown: str
    filesystem: Any
    path: str
    exists: str
    single: bool = False
    stand_in: str = field(default_factory=lambda: os.path.join(os.sep, f".gantools-uri-{secrets.token_hex(8)}"))
    paths: dict[str, str] = field(default_factory=dict)  # output URI (Job.dest) -> path in filesystem

    @property
    def local_folder(self) -> str | None:
        """The output folder as a local path (``file://`` only), for the local input scans' exclusion."""
        return self.path if strategy(self.filesystem) == "local" and not self.single else None

    def plan_as(self, single: bool) -> str:
        """The stand-in ``-o`` to give :func:`gantools.batch_plan.plan_jobs` (a folder, or for one
        output file a name with the URI's extension inside it)."""
        self.single = single
        return os.path.join(self.stand_in, PurePosixPath(self.path).name) if single else self.stand_in

    def place(self, jobs: list[Job], own: Any, overwrite: bool) -> list[Job]:
        """The planned ``jobs`` moved under the URI, the local rules applied (module docstring);
        ``own`` is :func:`gantools.batch_plan.own_output_pattern`. Checks what is at each output
        (:class:`BatchError` if the file system cannot be asked)."""
        base, placed = location(self.shown), []
        for job in jobs:
            rel = "" if self.single else Path(job.dest).relative_to(self.stand_in).as_posix()
            if job.error:
                job.error = job.error.replace(self.stand_in, self.shown.rstrip("/"))
            job.dest = self._name(rel)
            if (self.single or not job.source.picked or not _fits(job.source, base, own)
                    or location(job.source.path) == location(job.dest)):
                placed.append(job)  # else a result of this naming found in the output folder, not an input
        inputs = {location(job.source.path) for job in placed}
        for job in placed:
            if job.state == "todo" and job.media is not None:
                job.state, job.error = "error", MEDIA_ERROR
            elif job.state == "todo" and location(job.dest) in inputs:
                job.state, job.error = "error", f"output {job.dest} is an input file; refusing to write over it"
        todo = [job for job in placed if job.state == "todo"]
        for job, status in zip(todo, self.statuses(job.dest for job in todo)):
            if status == "special":
                job.state, job.error = "error", f"output {job.dest} exists and is not a regular file"
            elif status == "complete" and not overwrite:
                job.state = "skip"
        return placed

    def _name(self, rel: str) -> str:
        """The output URI of planned relative name ``rel`` ("" for the one output file); remembers its path."""
        if not rel:
            self.paths[self.shown] = self.path
            return self.shown
        dest = f"{self.shown.rstrip('/')}/{quote(rel)}"
        self.paths[dest] = f"{self.path.rstrip('/')}/{rel}"
        return dest

    def check(self) -> None:
        """:class:`BatchError` if the output folder cannot be one (before any work)."""
        if strategy(self.filesystem) == "local":
            check_output_folder(os.path.dirname(self.path) if self.single else self.path)
        elif not self.single and self.exists not in ("absent", "folder"):
            raise BatchError(f"{self.shown}: cannot use as output folder: it is a file")

    def statuses(self, dests: Iterable[str]) -> list[str]:
        """:meth:`status` of many output URIs (one ``get_file_info`` call)."""
        paths = [self.paths[dest] for dest in dests]
        if not paths:
            return []
        if strategy(self.filesystem) == "local":
            return [output_status(p) for p in paths]
        try:
            infos = self.filesystem.get_file_info(paths)
        except (ValueError, OSError) as exc:
            raise BatchError(f"{self.shown}: cannot check the outputs: {_one_line(exc)}") from None
        return [self._status(info) for info in infos]

    def status(self, dest: str) -> str:
        """What is at output URI ``dest``: ``absent``, ``complete``, ``partial`` or ``special``."""
        return self.statuses([dest])[0]

    def _status(self, info: Any) -> str:
        from pyarrow import fs

        if info.type == fs.FileType.NotFound:
            return "absent"
        if info.type != fs.FileType.File:
            return "special"
        if not info.size:
            return "partial"
        try:
            with self.filesystem.open_input_stream(info.path) as stream:
                head = stream.read(PREFIX_BYTES)
        except (ValueError, OSError):
            return "partial"
        return "complete" if sniff(head) is not None else "partial"

    def write(self, dest: str, data: bytes) -> None:
        """Write ``data`` at output URI ``dest`` atomically (module docstring); ``OSError``
        ``"cannot write <dest>: <reason>"`` on failure."""
        path = self.paths[dest]
        try:
            how = strategy(self.filesystem)
            if how == "local":
                write_atomic(path, data)
            elif how == "stream":
                _stream(self.filesystem, path, data)
            else:
                _move_into_place(self.filesystem, path, data)
        except (ValueError, OSError) as exc:
            raise OSError(f"cannot write {dest}: {_one_line(exc)}") from None


def _fits(source: Source, base: tuple[str, str], own: Any) -> bool:
    """Whether ``source`` lies in the output folder ``base`` with a name the template makes."""
    where = location(source.path)
    top = base[1].rstrip("/") + "/"
    return where[0] == base[0] and where[1].startswith(top) and own.fullmatch(where[1][len(top):]) is not None


def _stream(filesystem: Any, path: str, data: bytes) -> None:
    """The whole of ``data`` to ``path`` in one output stream (the object appears at ``close``)."""
    stream = filesystem.open_output_stream(path)
    stream.write(data)
    stream.close()


def _move_into_place(filesystem: Any, path: str, data: bytes) -> None:
    """``data`` to a temporary name beside ``path``, then ``move`` onto it (module docstring)."""
    from pyarrow import fs

    folder, _, name = path.rpartition("/")
    if folder:
        filesystem.create_dir(folder, recursive=True)
    hidden = f".{name}.{secrets.token_hex(4)}.part"  # the pattern of gantools.image.atomic's temporary files
    temp: str | None = f"{folder}/{hidden}" if folder else hidden
    try:
        _stream(filesystem, temp, data)
        try:
            filesystem.move(temp, path)
        except NotImplementedError:  # no move on this file system: one stream to the final name
            _stream(filesystem, path, data)
        except OSError:
            if filesystem.get_file_info(path).type != fs.FileType.File:
                raise
            filesystem.delete_file(path)  # a move that does not replace files (HDFS)
            filesystem.move(temp, path)
            temp = None
        else:
            temp = None
    finally:
        if temp is not None:
            with suppress(ValueError, OSError):
                filesystem.delete_file(temp)
