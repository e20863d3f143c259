"""The Ray engine behind ``gantools run --engine ray``: the local runner's contract, on Ray Data.

Contract of :func:`run_ray` (the same as :func:`gantools.batch.run_batch` unless said here):

* Planning is the local runner's (:mod:`gantools.batch_plan`): the same inputs, names, skipping
  of complete outputs (resume), per-file errors and usage errors (exit code 2) before any work.
  Inputs may also be URIs that ``pyarrow.fs`` understands (``s3://bucket/photos/``), and so may
  ``-o`` (``s3://bucket/out/``, ``file:///data/out/``): the same names, resume and atomic writes
  through ``pyarrow.fs``, decided per file system (:mod:`gantools.distributed.outputs`; a URI it
  cannot open is a usage error before Ray starts). Not supported: ``-`` as an input and ``-o -``
  (usage errors: Ray reads files and the driver writes files).
* ``gpus_per_actor`` more than the cluster's GPUs can place is a usage error (after connecting).
* The plugin is built and set up once on this machine first (on the CPU), so a bad option or an
  unusable ``--weights`` file is the same one-line error; then once per actor.
* The work is a Ray Data pipeline: ``read_binary_files`` -> decoding tasks -> ``map_batches``
  with ``actors`` plugin actors (``gpus_per_actor`` GPUs each, ``batch_size`` images per call)
  -> encoding tasks. This process writes each encoded result atomically
  (:func:`gantools.image.write_image`, or :meth:`UriOutput.write` for a URI) as it arrives,
  claiming a local output first like the local runner (a claim is taken just before the write,
  so outputs may be computed but are never replaced by two runs; a URI output is only checked
  again). Per-file problems are rows of the pipeline, never a failed job.
* The summary, ``--json`` and exit codes are the local runner's; ``summary.files`` is in plan
  order whatever order Ray finished in. Ctrl+C stops the pipeline: the summary has
  ``interrupted=True`` (exit code 130).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from gantools.batch import BatchOptions, BatchSummary, _Runner, run_planned
from gantools.batch_plan import (
    STDIN, BatchError, BatchUsageError, Inputs, Job, check_file_output, check_output_folder, check_summary_path,
    collect_inputs, own_output_pattern, plan_jobs, single_file_output,
)
from gantools.distributed import outputs, ray_compat, uris
from gantools.distributed.outputs import UriOutput
from gantools.plugin import OptionError, Plugin
from gantools.progress import Reporter, make_reporter


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs (CLI flag in brackets).

    ``address``: a running cluster (``--address``; ``None``: Ray starts embedded here),
    ``actors``: plugin instances (``--actors``), ``gpus_per_actor`` (``--gpus-per-actor``,
    fractions share a GPU), ``batch_size``: images per actor call (``--batch-size``).
    """

    address: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0.0
    batch_size: int = 4


def plugin_factory(plugin: Plugin) -> Callable[[], Plugin]:
    """A picklable zero-argument function that makes a fresh copy of ``plugin`` (on an actor)."""
    return functools.partial(type(plugin), **vars(plugin.runtime), **plugin.options)


def _check_setup(plugin: Plugin) -> None:
    """Set up a CPU copy of ``plugin`` here: its errors are the local runner's one line."""
    probe = type(plugin)(**{**vars(plugin.runtime), "device": "cpu"}, **plugin.options)
    try:
        probe.ensure_setup()
    except OptionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model that cannot load ends the batch, one line
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise BatchError(f"{plugin.descriptor.name}: cannot set up the plugin: {text}") from exc


def _plan(plugin: Plugin, args: list[str], out: str,
          opts: BatchOptions) -> tuple[list[Job], Inputs, UriOutput | None]:
    """The local runner's planning (and its usage errors) for the Ray engine; the output URI
    (:mod:`gantools.distributed.outputs`) when ``-o`` is one."""
    if not args and opts.from_list is None:
        raise BatchUsageError("no inputs: give files, folders, globs, URIs or --from-list")
    if out == STDIN:
        raise BatchUsageError("-o - (stdout) does not work with --engine ray: give -o a file or folder")
    if STDIN in args:
        raise BatchUsageError("'-' (stdin) does not work with --engine ray: give files, folders, globs or URIs")
    target = outputs.open_output(out) if uris.is_uri(out) else None
    local = [a for a in args if not uris.is_uri(a)]
    single = single_file_output(local, out, opts.from_list) and len(local) == len(args)
    if target is not None:
        single = single and target.exists != "folder"
        if target.exists != "folder":
            check_file_output(args, out, opts.from_list)
    folder = None if single else (out if target is None else target.local_folder)  # local scans skip it
    found = collect_inputs(local, recursive=opts.recursive, from_list=opts.from_list, null=opts.null, exclude=folder)
    uris.add_uri_sources(found, [a for a in args if uris.is_uri(a)], recursive=opts.recursive,
                         exclude=None if single else out)
    if not found.sources and not found.missing:
        raise BatchError(f"no images found in {', '.join(args)}")
    name = plugin.descriptor.name
    jobs = plan_jobs(
        found.sources, out if target is None else target.plan_as(single), single_file=single, plugin=name,
        scale=plugin.scale, template=opts.name, format=opts.format, quality=opts.quality, overwrite=opts.overwrite,
    )
    if target is not None:
        jobs = target.place(jobs, own_output_pattern(opts.name, name, plugin.scale), opts.overwrite)
    if opts.json and opts.json != STDIN:
        check_summary_path(opts.json, jobs, out, opts.from_list)
    if any(j.state == "todo" for j in jobs):
        if target is not None:
            target.check()
        else:
            check_output_folder(folder if folder is not None else (os.path.dirname(out) or "."))
    return jobs, found, target


def run_ray(
    plugin: Plugin, inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
    options: BatchOptions | None = None, ray_options: RayOptions | None = None, reporter: Reporter | None = None,
) -> BatchSummary:
    """Run ``plugin`` over ``inputs`` into ``output`` on Ray (see the module docstring)."""
    opts, ray_opts = options or BatchOptions(), ray_options or RayOptions()
    if ray_opts.actors < 1 or ray_opts.batch_size < 1 or ray_opts.gpus_per_actor < 0:
        raise BatchUsageError("--actors and --batch-size must be at least 1, --gpus-per-actor at least 0")
    ray_compat.require_ray()
    args, out = [os.fspath(a) for a in inputs], os.fspath(output)
    jobs, found, target = _plan(plugin, args, out, opts)
    todo = [j for j in jobs if j.state == "todo"]
    if todo:
        _check_setup(plugin)
    started = ray_compat.connect(ray_opts.address, actors=ray_opts.actors) if todo else False
    try:
        if todo:
            ray_compat.check_gpus(ray_opts.actors, ray_opts.gpus_per_actor)
        return _run_jobs(plugin, jobs, found, opts, ray_opts, reporter or make_reporter(opts.progress), target)
    finally:
        if started:
            import ray

            ray.shutdown()


def _run_jobs(plugin: Plugin, jobs: list[Job], found: Inputs, opts: BatchOptions, ray_opts: RayOptions,
              reporter: Reporter, target: UriOutput | None) -> BatchSummary:
    """The local runner's reporting and summary around a Ray execution; files listed in plan order."""

    def execute(runner: _Runner, todo: list[Job]) -> None:
        first = len(runner.summary.files)
        try:
            _execute(plugin, todo, runner, opts, ray_opts, target)
        except KeyboardInterrupt:
            runner.summary.interrupted = True
        order = {job.source.shown: i for i, job in enumerate(todo)}
        runner.summary.files[first:] = sorted(runner.summary.files[first:], key=lambda f: order.get(f.input, len(order)))

    return run_planned(plugin, jobs, found, opts, reporter, ready=True, execute=execute)


def _execute(plugin: Plugin, todo: list[Job], runner: _Runner, opts: BatchOptions, ray_opts: RayOptions,
             target: UriOutput | None) -> None:
    """Build the Ray Data pipeline for ``todo`` and record each file as its result arrives."""
    if not todo:
        return
    import ray
    import ray.data

    from gantools.distributed.stages import PluginActor, decode_batch, encode_batch

    paths = [uris.ray_path(job.source.path) for job in todo]
    keys = {returned: job for (_, returned), job in zip(paths, todo)}
    formats = ray.put({key: job.format for key, job in keys.items()})
    light = {"num_cpus": 0, "batch_size": 1, "batch_format": "numpy"}  # codec tasks reserve no CPU: never starved
    actor_args: dict[str, Any] = {"num_cpus": _actor_cpus(ray_opts)}
    if ray_opts.gpus_per_actor:
        actor_args["num_gpus"] = ray_opts.gpus_per_actor
    ds = ray.data.read_binary_files([given for given, _ in paths], include_paths=True, ignore_missing_paths=True,
                                    num_cpus=0)
    ds = ds.map_batches(decode_batch, fn_kwargs={"max_pixels": opts.max_pixels}, **light)
    ds = ds.map_batches(PluginActor, fn_constructor_args=(plugin_factory(plugin), [formats]),
                        batch_size=ray_opts.batch_size, batch_format="numpy",
                        **ray_compat.actor_pool(ray_opts.actors), **actor_args)
    ds = ds.map_batches(encode_batch, fn_kwargs={"quality": opts.quality, "background": opts.background}, **light)
    for row in ds.iter_rows():
        job = keys.pop(str(row["path"]), None)
        if job is not None:
            _finish(job, row, runner, target)
    for job in keys.values():  # not returned by the reader (removed since planning)
        runner.fail(job, RuntimeError("cannot read: file not found"))


def _actor_cpus(ray_opts: RayOptions) -> int:
    """CPUs each actor reserves (Ray sets its torch threads from it): an equal share of this
    machine's Ray CPUs when Ray runs here, else one (``threads`` asks for more)."""
    import ray

    if ray_opts.address:
        return 1
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // ray_opts.actors)


def _finish(job: Job, row: dict[str, Any], runner: _Runner, target: UriOutput | None) -> None:
    """Record one result row: warnings, then a failure or the atomic write (claimed first)."""
    for text in filter(None, str(row["warnings"]).split("\n")):
        runner.reporter.warning(f"{job.source.shown}: {text}")
    if row["error"]:
        runner.fail(job, RuntimeError(str(row["error"])))
        return
    if not (runner.claim(job) if target is None else _recheck(job, runner, target)):
        return
    from gantools import image as gio

    future: Future = Future()
    try:
        if target is None:
            gio.write_image(job.dest, bytes(row["data"]))
        else:
            target.write(job.dest, bytes(row["data"]))
        future.set_result([])
    except Exception as exc:  # noqa: BLE001 - finish_write reports it like the local runner
        future.set_exception(exc)
    runner.finish_write(job, future)


def _recheck(job: Job, runner: _Runner, target: UriOutput) -> bool:
    """The claim of a URI output: ``False`` (recorded as skipped) when another run has completed
    it since planning; no lock is taken (:mod:`gantools.distributed.outputs`)."""
    try:
        done = not runner.options.overwrite and target.status(job.dest) == "complete"
    except BatchError as exc:
        runner.fail(job, exc)
        return False
    if done:
        runner.record(job, "skipped")
    return not done


__all__ = ["RayOptions", "plugin_factory", "run_ray"]
