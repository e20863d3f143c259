"""Derive a lower-scale upscaler from a trained one, exactly and without training.

    python -m gantools.train.fold weights/upscale-photo-x4.safetensors --scale 2 \\
        -o runs/photo-x2-fold/export.safetensors

The derived network's output is the source network's output area-downscaled to the new scale
(before clamping; see :func:`gantools.nn.srvgg.fold_area_downscale`) and it costs what a network
of the new scale costs: the body runs at input resolution either way. This is how the ``photo`` x2
model is made from ``photo`` x4, the x2 counterpart of the teacher ``bench/sr.py`` compares x2
models against (Real-ESRGAN x4plus area-downscaled by 2).

The export keeps the source's metadata (task, mode, training command, dataset, steps), with the
new ``scale``, the derivation appended to ``command`` and ``derived_from`` naming the source file
and its sha256; ``gantools.train.ship`` ships it like any export.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from gantools.train.export import read_export, save_safetensors
from gantools.weights import sha256_file


def fold_export(source: str | Path, scale: int, out: str | Path) -> dict[str, str]:
    """Write the x``scale`` derivation of the SRVGG export ``source`` to ``out``; return its metadata.

    ``ValueError`` when ``source`` is not an SRVGG upscaler export or ``scale`` does not divide its scale.
    """
    from gantools.nn.srvgg import fold_area_downscale

    state, meta = read_export(source)
    if meta.get("arch") != "srvgg" or meta.get("task") != "upscale":
        raise ValueError(f"{source}: not an SRVGG upscaler export (arch {meta.get('arch')!r}, task {meta.get('task')!r})")
    config = json.loads(meta["arch_config"])
    if scale < 1 or config["upscale"] % scale:
        raise ValueError(f"{source}: x{scale} is not a whole fraction of its x{config['upscale']}")
    folded = fold_area_downscale(state, config["upscale"] // scale)
    argv = ["python", "-m", "gantools.train.fold", str(source), "--scale", str(scale), "-o", str(out)]
    new_meta = {**meta, "scale": str(scale), "arch_config": json.dumps({**config, "upscale": scale}, sort_keys=True),
                "command": f"{meta.get('command', '')} && {shlex.join(argv)}".lstrip(" &"),
                "derived_from": f"{Path(source).name} sha256:{sha256_file(source)} (x{config['upscale']}, "
                                f"area-downscaled by {config['upscale'] // scale})"}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(out, folded, new_meta)
    return new_meta


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 written, 2 bad source or scale)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="an SRVGG upscaler export (a run's export.safetensors or a shipped file)")
    ap.add_argument("--scale", type=int, required=True, help="the new scale; must divide the source's")
    ap.add_argument("-o", "--out", required=True, help="where to write the derived export")
    args = ap.parse_args(argv)
    try:
        fold_export(args.source, args.scale, args.out)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (x{args.scale}, derived from {args.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
