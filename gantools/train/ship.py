"""Ship a trained model: copy a run's export into ``weights/`` and record it in the manifest.

    python -m gantools.train.ship runs/sr/export.safetensors --name fidelity \\
        --file upscale-fidelity-x4.safetensors --terms "research (T91, BSDS500)"

The manifest entry takes task, architecture, training command, dataset and steps from the
export's metadata and adds the sha256 of the copied file. Task keys that select a model
(``scale`` for upscale, ``style`` for stylize) are copied from the metadata too (and
``source`` / ``mode`` of a style, ``resolution`` of faces).

When the export lies in its run folder with the checkpoint of the same step (or ``--checkpoint``
names it), the model's **training state** is shipped too: ``state/<stem>.d.safetensors`` (the
discriminator in float16 (``--d-part NAME``: only that part of it), the generator's parts a
slimmed export leaves out, the run's options and adversarial settings; see
:mod:`gantools.train.shipped`), recorded as ``state`` and ``state_sha256`` in the entry. The
state folder is not packed into the wheel. ``gantools train TASK --init NAME`` continues from both.

A model that is already shipped (an entry with the same task, name and scale, an entry with the same
file, or the file or its state file in the weights folder) is refused with a one-line error
(exit 2) unless ``--force`` is given; then the files and the manifest entry are replaced, each
written atomically (:mod:`gantools.image.atomic`): the weights file, its state, then the manifest.
A forced replacement without a state removes the old model's state file.

A run that continued the model it replaces (``--init NAME``, or ``--init`` of that model's
file) extends its history: the entry's ``command`` is the old command, ``&&``, the new one, and
its ``steps`` and ``images_seen`` are the sums (``run_steps`` / ``run_images_seen`` keep the
run's own part, so shipping the same run again after more training replaces that part).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from gantools.image.atomic import atomic_path, write_atomic
from gantools.train.export import read_export, save_safetensors
from gantools.train.rundir import CheckpointError
from gantools.weights import manifest as cached_manifest
from gantools.weights import sha256_file, state_file, tomllib

SELECTORS = ("scale", "style", "source", "mode", "resolution")
HEADER = "# Shipped weights (see gantools/weights.py)\n"
SEPARATOR = "\n[[model]]\n"


class AlreadyShipped(FileExistsError):
    """The model (task + name) or the file is already shipped and ``force`` was not given."""


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def _blocks(manifest: Path) -> tuple[str, list[str]]:
    """The manifest's header text and its ``[[model]]`` blocks (text, in order)."""
    if not manifest.exists():
        return HEADER, []
    head, *models = manifest.read_text().split(SEPARATOR)
    return head, models


def _same_model(m: dict, task: str, name: str, scale: object) -> bool:
    """True when manifest entry ``m`` is the model ``task`` + ``name`` (+ ``scale``: an upscaler's
    x2 and x4 of one name are two models)."""
    return (m.get("task"), m.get("name")) == (task, name) and m.get("scale") == scale


def _clashes(block: str, *, task: str, name: str, scale: object, file: str) -> bool:
    """True when a manifest block has the same file, or is the same model (see :func:`_same_model`)."""
    m = tomllib.loads(block)
    return m.get("file") == file or _same_model(m, task, name, scale)


def _check_free(dests: list[Path], models: list[str], *, task: str, name: str, scale: object, file: str) -> None:
    """Raise :class:`AlreadyShipped` naming what is in the way."""
    for block in models:
        m = tomllib.loads(block)
        if _same_model(m, task, name, scale):
            what = f"{task} model {name!r}" + (f" x{scale}" if scale is not None else "")
            raise AlreadyShipped(f"{what} is already shipped (as {m.get('file')}); give --force to replace it")
        if m.get("file") == file:
            raise AlreadyShipped(f"{file} is already shipped (as {m.get('task')} {m.get('name')!r}); "
                                 "give --force to replace it")
    for dest in dests:
        if dest.exists():
            raise AlreadyShipped(f"{dest} already exists; give --force to replace it")


def ship(export: str | Path, *, name: str, file: str, terms: str, dataset: str | None = None,
         weights_dir: str | Path = "weights", fp16: bool = False, force: bool = False,
         checkpoint: str | Path | None = None, teacher_terms: str | None = None,
         d_parts: list[str] | None = None) -> dict:
    """Copy ``export`` to ``weights_dir/file`` (and its training state) and write its manifest entry.

    Returns the entry (with ``state`` when a state was shipped). ``fp16`` stores the generator's
    floating-point tensors as float16 (half the file; they load into fp32 models); the state is
    always float16. ``checkpoint``: the run's checkpoint of the export's step (default: found
    beside the export; none there: no state). Raises :class:`AlreadyShipped` when ``task`` +
    ``name`` (+ the export's ``scale``), ``file`` or its state file is already shipped (see the module docstring), unless
    ``force``: then the files and the clashing entries are replaced. ``ValueError`` when
    ``export`` is not a gantools export or ``checkpoint`` is not the run's checkpoint of it.
    A distilled model (an export with ``teacher`` metadata) records its teacher and
    ``teacher_terms`` (the teacher's licence, required for such a model). ``d_parts``: ship only
    these children of the discriminator (e.g. ``["painting"]`` of a domain style's pair: a smaller
    state; the others start fresh when training continues).
    """
    from gantools.train.shipped import keep_parts, run_state, write_state

    state, meta = read_export(export)
    if meta.get("teacher") and not teacher_terms:
        raise ValueError(f"{export}: distilled from {meta['teacher']}: give the teacher's licence (--teacher-terms)")
    dest = Path(weights_dir) / file
    state_dest = Path(weights_dir) / state_file(file)
    manifest = Path(weights_dir) / "manifest.toml"
    head, models = _blocks(manifest)
    scale = int(meta["scale"]) if str(meta.get("scale", "")).isdigit() else None
    if not force:
        _check_free([dest, state_dest], models, task=meta["task"], name=name, scale=scale, file=file)
    training = run_state(export, state, meta, checkpoint)
    if training is not None and d_parts:
        training = dataclasses.replace(training, d=keep_parts(training.d, d_parts))
    previous = _continued(meta, models, task=meta["task"], name=name, scale=scale)
    if fp16:
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        save_safetensors(dest, half, {**meta, "storage": "fp16"})
    else:
        with atomic_path(dest) as temp:
            shutil.copyfile(export, temp)
    entry: dict[str, object] = {
        "file": file, "task": meta["task"], "name": name, "arch": meta["arch"], "sha256": sha256_file(dest),
        "dataset": dataset or meta.get("dataset", ""), "terms": terms, "command": meta.get("command", ""),
        "steps": int(meta.get("steps", 0)), "images_seen": int(meta.get("images_seen", 0)), "date": meta.get("date", ""),
    }
    for key in SELECTORS:
        if key in meta:
            entry[key] = int(meta[key]) if meta[key].isdigit() else meta[key]
    if meta.get("teacher"):
        entry.update(teacher=meta["teacher"], teacher_terms=teacher_terms)
    if training is not None:
        meta_out = {**training.meta, "generator": file, "generator_sha256": str(entry["sha256"])}
        state_dest.parent.mkdir(parents=True, exist_ok=True)
        write_state(state_dest, dataclasses.replace(training, meta=meta_out))
        entry.update(state=state_file(file), state_sha256=sha256_file(state_dest))
    else:
        state_dest.unlink(missing_ok=True)  # (force) the replaced model's state does not fit the new one
    if previous is not None:  # this run continued the replaced model: one history
        command, steps, images = _history_before(previous, meta)
        entry["command"] = f"{command} && {entry['command']}" if command else entry["command"]
        entry.update(steps=steps + entry["steps"], images_seen=images + entry["images_seen"],
                     run_steps=entry["steps"], run_images_seen=entry["images_seen"])
    models = [b for b in models if not _clashes(b, task=meta["task"], name=name, scale=scale, file=file)]
    models.append("".join(f"{k} = {_toml_value(v)}\n" for k, v in entry.items()))
    text = SEPARATOR.join([head.rstrip("\n") + "\n", *[m.rstrip("\n") + "\n" for m in models]])
    write_atomic(manifest, text.encode())
    cached_manifest.cache_clear()
    return entry


def _history_before(previous: dict, meta: dict[str, str]) -> tuple[str, int, int]:
    """``(command, steps, images_seen)`` of the replaced model before the export's run. When the
    replaced model is an earlier export of this same run (its history holds the run's first
    command and records ``run_steps``), that part is dropped, so shipping a run again after more
    training counts its steps once."""
    command, steps, images = previous.get("command", ""), int(previous.get("steps", 0)), int(previous.get("images_seen", 0))
    parts, first = command.split(" && "), meta.get("command", "").split(" && ")[0]
    if not first or first not in parts or "run_steps" not in previous:
        return command, steps, images
    at = len(parts) - 1 - parts[::-1].index(first)  # the last invocation with this run's first command
    return (" && ".join(parts[:at]), steps - int(previous["run_steps"]),
            images - int(previous.get("run_images_seen", 0)))


def _continued(meta: dict[str, str], models: list[str], *, task: str, name: str, scale: object) -> dict | None:
    """The manifest entry of the model ``task`` + ``name`` (+ ``scale``) when the export's run
    continued it (``init`` is its name, or a file with its sha256), else None."""
    init = meta.get("init", "")
    for block in models if init else []:
        old = tomllib.loads(block)
        if _same_model(old, task, name, scale):
            by_file = Path(init).is_file() and sha256_file(init) == old.get("sha256")
            return old if init == old.get("name") or by_file else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 shipped, 2 refused or bad export)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export")
    ap.add_argument("--name", required=True, help="model name users select (e.g. fidelity, photo, starry_night)")
    ap.add_argument("--file", required=True, help="file name inside weights/")
    ap.add_argument("--terms", required=True, help="licence terms of the training data")
    ap.add_argument("--dataset", help="dataset description (default: the export's data paths)")
    ap.add_argument("--teacher-terms", help="licence of the teacher model (required for distilled models)")
    ap.add_argument("--fp16", action="store_true", help="store float tensors as float16 (half the size)")
    ap.add_argument("--force", action="store_true", help="replace a model or file that is already shipped")
    ap.add_argument("--checkpoint", help="the run's checkpoint of the export's step, for the training state "
                    "(default: checkpoints/ckpt-<steps>.pt beside the export)")
    ap.add_argument("--d-part", action="append", dest="d_parts", metavar="NAME",
                    help="ship only this part of the discriminator (repeatable; e.g. painting for a domain style)")
    ap.add_argument("--weights-dir", default=str(Path(__file__).resolve().parents[2] / "weights"))
    args = ap.parse_args(argv)
    try:
        entry = ship(args.export, name=args.name, file=args.file, terms=args.terms, dataset=args.dataset,
                     weights_dir=args.weights_dir, fp16=args.fp16, force=args.force, checkpoint=args.checkpoint,
                     teacher_terms=args.teacher_terms, d_parts=args.d_parts)
    except (OSError, ValueError, CheckpointError) as exc:  # AlreadyShipped, missing or foreign export or checkpoint
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"shipped {entry['file']} ({entry['task']} {entry['name']}), sha256 {entry['sha256'][:12]}...")
    if "state" in entry:
        print(f"shipped its training state {entry['state']}, sha256 {entry['state_sha256'][:12]}...")
    else:
        print("no training state: no checkpoint of the export's step beside it (give --checkpoint)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
