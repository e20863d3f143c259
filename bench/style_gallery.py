"""Gallery of the shipped styles for the docs, made only from images gantools draws itself.

For every shipped style (``gantools info stylize``) it stylises the procedural ``scene`` chart and
the ``bars`` colour chart (``gantools.charts``), plainly and with ``--preserve-color``, and writes
``docs/styles/<style>.jpg``: one row per input (input, stylised, stylised with the input's colours),
labelled. No third-party image, and nothing derived from one, is used.

    python bench/style_gallery.py                # all shipped styles
    python bench/style_gallery.py --styles wave  # some of them
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import gantools
from gantools.charts import make_chart
from gantools.weights import shipped
from sr_demo import label  # bench/ is the script directory: on sys.path

ROOT = Path(__file__).resolve().parents[1]
INPUTS = (("scene", (320, 480)), ("bars", (320, 480)))


def gallery(style: str, source: str) -> np.ndarray:
    """Rows (input | stylised | stylised, input colours) for each synthetic input."""
    plain = gantools.load("stylize", style=style)
    kept = gantools.load("stylize", style=style, preserve_color=True)
    rows = []
    for kind, size in INPUTS:
        img = make_chart(kind, size)
        rows.append(np.hstack([label(img, f"{kind} (synthetic)"), label(plain.process(img), f"{style} ({source})"),
                               label(kept.process(img), "--preserve-color")]))
    return np.vstack(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", help="comma-separated style names (default: every shipped style)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "styles"))
    args = ap.parse_args()
    wanted = set(args.styles.split(",")) if args.styles else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for m in shipped("stylize"):
        if wanted is None or m.name in wanted:
            path = out / f"{m.name}.jpg"
            cv2.imwrite(str(path), gallery(m.name, m.extra.get("source", "")), [cv2.IMWRITE_JPEG_QUALITY, 88])
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
