"""Before/after picture for the docs, from a synthetic chart that gantools draws itself.

The chart is reduced 4x (Pillow bicubic, plus JPEG q75 for the photo model's row), then enlarged
back by bicubic and by each shipped x4 model; crops are laid side by side with labels in
``docs/upscale_chart.png``. No third-party image is used.

    python bench/sr_demo.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import gantools
from gantools.charts import make_chart
from gantools.weights import shipped

ROOT = Path(__file__).resolve().parents[1]


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (255, 255, 255), -1)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    chart = make_chart("star", 384)
    chart = chart if chart.ndim == 3 else cv2.cvtColor(chart, cv2.COLOR_GRAY2BGR)
    h, w = chart.shape[:2]
    lr = np.asarray(Image.fromarray(chart[:, :, ::-1]).resize((w // 4, h // 4), Image.BICUBIC))[:, :, ::-1].copy()
    ok, buf = cv2.imencode(".jpg", lr, [cv2.IMWRITE_JPEG_QUALITY, 75])
    lr_jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    up = lambda im: np.asarray(Image.fromarray(im[:, :, ::-1]).resize((w, h), Image.BICUBIC))[:, :, ::-1]  # noqa: E731
    y0, x0, s = h // 4, w // 4, h // 2
    crop = lambda im: np.ascontiguousarray(im[y0 : y0 + s, x0 : x0 + s])  # noqa: E731
    rows = []
    for src, tag in ((lr, "clean LR"), (lr_jpeg, "LR + JPEG q75")):
        tiles = [label(crop(chart), "original"), label(crop(up(src)), f"bicubic ({tag})")]
        for m in shipped("upscale", scale=4):
            tiles.append(label(crop(gantools.load("upscale", model=m.name, scale=4).process(src)), f"gantools {m.name}"))
        rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    out = ROOT / "docs" / "upscale_chart.png"
    out.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
