"""Pictures of generated faces for the docs: a sample sheet and labelled age / gender grids.

Only faces the generator makes are shown (never a training photo):

* ``docs/faces.jpg``: seeds 0-63 at truncation 0.7, labels drawn from the data distribution;
* ``docs/faces_age.jpg``: rows = seeds, columns = the nine age groups (same seed and gender per
  row), to check age control by eye;
* ``docs/faces_gender.jpg``: rows = seeds, columns = male / female at two ages.

    python bench/faces_docs.py                                     # shipped model
    python bench/faces_docs.py --weights runs/faces/export.safetensors --out /tmp/faces_docs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from gantools_faces.generate import FaceModel
from gantools_faces.labels import AGE_GROUPS, GENDERS
from gantools.image.media import grid
from gantools.weights import shipped

ROOT = Path(__file__).resolve().parents[1]
CELL = 96  # px per face in the labelled grids


def labelled_grid(rows: list[list[np.ndarray]], col_names: list[str], row_names: list[str]) -> np.ndarray:
    """Faces in rows, upscaled to ``CELL`` px, with a header row and a left column of labels."""
    head, left = 22, 64
    h, w = head + CELL * len(rows), left + CELL * len(col_names)
    sheet = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for j, name in enumerate(col_names):
        cv2.putText(sheet, name, (left + j * CELL + 4, 16), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (row, name) in enumerate(zip(rows, row_names)):
        y = head + i * CELL
        cv2.putText(sheet, name, (4, y + CELL // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j, face in enumerate(row):
            sheet[y : y + CELL, left + j * CELL : left + (j + 1) * CELL] = cv2.resize(
                face, (CELL, CELL), interpolation=cv2.INTER_CUBIC)
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="a faces export (default: the shipped model)")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--truncation", type=float, default=0.7)
    ap.add_argument("--seeds", default="1,7,21,42,99,123", help="seeds of the labelled grids' rows")
    args = ap.parse_args()
    path = args.weights or next((m.verify() for m in shipped("faces")), None)
    if path is None:
        raise SystemExit("error: no shipped faces model; pass --weights RUN/export.safetensors")
    model = FaceModel.load(path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    psi = args.truncation
    seeds = [int(s) for s in args.seeds.split(",")]

    sheet = grid(model.generate(64, 0, psi), nrow=8)
    cv2.imwrite(str(out / "faces.jpg"), sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])

    ages = [[model.generate(1, s, psi, (a, model.latent(s).gender))[0] for a in range(len(AGE_GROUPS))] for s in seeds]
    cv2.imwrite(str(out / "faces_age.jpg"), labelled_grid(ages, list(AGE_GROUPS), [f"seed {s}" for s in seeds]),
                [cv2.IMWRITE_JPEG_QUALITY, 90])

    cols = [(3, 0), (3, 1), (7, 0), (7, 1)]  # 20-29 and 60-69, male and female
    genders = [[model.generate(1, s, psi, c)[0] for c in cols] for s in seeds]
    names = [f"{AGE_GROUPS[a]} {GENDERS[g]}" for a, g in cols]
    cv2.imwrite(str(out / "faces_gender.jpg"), labelled_grid(genders, names, [f"seed {s}" for s in seeds]),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {out / 'faces.jpg'}, {out / 'faces_age.jpg'}, {out / 'faces_gender.jpg'} from {path}")


if __name__ == "__main__":
    main()
