"""Ship a trained model: copy a run's export into ``weights/`` and record it in the manifest.

    python -m gantools.train.ship runs/sr/export.safetensors --name fidelity \\
        --file upscale-fidelity-x4.safetensors --terms "research (T91, BSDS500)"

The manifest entry takes task, architecture, training command, dataset and steps from the
export's metadata, adds the sha256 of the copied file, and replaces an older entry of the same
file name. Task keys that select a model (``scale`` for upscale, ``style`` for stylize) are
copied from the metadata too (and ``source`` / ``mode`` of a style, ``resolution`` of faces).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gantools.train.export import read_export, save_safetensors
from gantools.weights import sha256_file

SELECTORS = ("scale", "style", "source", "mode", "resolution")


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def ship(export: str | Path, *, name: str, file: str, terms: str, dataset: str | None = None,
         weights_dir: str | Path = "weights", fp16: bool = False) -> dict:
    """Copy ``export`` to ``weights_dir/file`` and write its manifest entry; returns the entry.

    ``fp16`` stores floating-point tensors as float16 (half the file; they load into fp32 models).
    """
    state, meta = read_export(export)
    dest = Path(weights_dir) / file
    if fp16:
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        save_safetensors(dest, half, {**meta, "storage": "fp16"})
    else:
        shutil.copyfile(export, dest)
    entry: dict[str, object] = {
        "file": file, "task": meta["task"], "name": name, "arch": meta["arch"], "sha256": sha256_file(dest),
        "dataset": dataset or meta.get("dataset", ""), "terms": terms, "command": meta.get("command", ""),
        "steps": int(meta.get("steps", 0)), "images_seen": int(meta.get("images_seen", 0)), "date": meta.get("date", ""),
    }
    for key in SELECTORS:
        if key in meta:
            entry[key] = int(meta[key]) if meta[key].isdigit() else meta[key]
    manifest = Path(weights_dir) / "manifest.toml"
    blocks = manifest.read_text().split("\n[[model]]\n") if manifest.exists() else ["# Shipped weights (see gantools/weights.py)\n"]
    head, models = blocks[0], [b for b in blocks[1:] if f'file = "{file}"' not in b]
    models.append("".join(f"{k} = {_toml_value(v)}\n" for k, v in entry.items()))
    manifest.write_text("\n[[model]]\n".join([head.rstrip("\n") + "\n", *[m.rstrip("\n") + "\n" for m in models]]))
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export")
    ap.add_argument("--name", required=True, help="model name users select (e.g. fidelity, photo, starry_night)")
    ap.add_argument("--file", required=True, help="file name inside weights/")
    ap.add_argument("--terms", required=True, help="licence terms of the training data")
    ap.add_argument("--dataset", help="dataset description (default: the export's data paths)")
    ap.add_argument("--fp16", action="store_true", help="store float tensors as float16 (half the size)")
    ap.add_argument("--weights-dir", default=str(Path(__file__).resolve().parents[2] / "weights"))
    args = ap.parse_args()
    entry = ship(args.export, name=args.name, file=args.file, terms=args.terms, dataset=args.dataset, weights_dir=args.weights_dir,
                 fp16=args.fp16)
    print(f"shipped {entry['file']} ({entry['task']} {entry['name']}), sha256 {entry['sha256'][:12]}...")


if __name__ == "__main__":
    main()
