"""Synthetic test charts: images gantools makes itself, for examples, tests and benchmarks.

Every chart is deterministic (same kind and size, same pixels) and made with numpy only. Kinds:

* ``zoneplate`` - gray circular zone plate whose frequency rises from 0 at the centre to the
  Nyquist limit at the middle of each edge (shows aliasing and ringing);
* ``star`` - gray Siemens star of 48 spokes (resolution falls towards the centre);
* ``bars`` - BGR colour bars over smooth red, green, blue and gray gradients (banding, colour);
* ``lines`` - BGR thin-line chart: line pairs 1-4 px wide in both directions and rows of
  text-like glyphs at three sizes (fine detail, sharpening halos);
* ``scene`` - BGR procedural landscape: sky gradient with a sun, three ranges of fractal hills
  fading with distance, a lake with their rippled reflection and a meadow with grass strokes
  (photo-like content with edges, gradients and texture, e.g. for style-transfer galleries).

``python -m gantools.charts DIR`` writes the bundled ``examples/`` images into ``DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

KINDS = ("zoneplate", "star", "bars", "lines", "scene")
#: Sizes of the images in ``examples/`` as (height, width).
EXAMPLE_SIZES = {"zoneplate": (320, 320), "star": (320, 320), "bars": (256, 384), "lines": (256, 384), "scene": (320, 480)}
_SUPERSAMPLE = 4


def make_chart(kind: str, size: int | tuple[int, int] = 256) -> np.ndarray:
    """Return chart ``kind`` as a ``uint8`` array of ``size`` (an int for a square, or ``(h, w)``).

    Gray charts are ``HxW``, colour charts ``HxWx3`` BGR, as OpenCV (and the plugin contract)
    lays them out. Raises ``ValueError`` for an unknown kind or a side below 16 pixels.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if kind not in KINDS:
        raise ValueError(f"unknown chart {kind!r} (choose from {', '.join(KINDS)})")
    if min(height, width) < 16:
        raise ValueError(f"chart size must be at least 16x16, got {width}x{height}")
    maker = {"zoneplate": _zoneplate, "star": _star, "bars": _bars, "lines": _lines, "scene": _scene}[kind]
    out = maker(height, width)
    return np.ascontiguousarray(np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))


def _grid(height: int, width: int, ss: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates relative to the image centre (``ss`` samples per pixel)."""
    y = (np.arange(height * ss) + 0.5) / ss - height / 2
    x = (np.arange(width * ss) + 0.5) / ss - width / 2
    return np.meshgrid(y, x, indexing="ij")


def _downsample(img: np.ndarray, ss: int) -> np.ndarray:
    """Box-filter a supersampled image back to pixel resolution."""
    h, w = img.shape[0] // ss, img.shape[1] // ss
    return img.reshape(h, ss, w, ss, *img.shape[2:]).mean(axis=(1, 3))


def _zoneplate(height: int, width: int) -> np.ndarray:
    y, x = _grid(height, width)
    radius = min(height, width) / 2
    phase = np.pi * (x * x + y * y) / (2 * radius)  # local frequency 0.5 cycle/px at `radius`
    return 0.5 + 0.5 * np.cos(phase)


def _star(height: int, width: int, spokes: int = 48) -> np.ndarray:
    y, x = _grid(height, width, _SUPERSAMPLE)
    theta = np.arctan2(y, x)
    img = np.where(np.sin(spokes / 2 * theta) >= 0, 0.92, 0.08)
    r = np.hypot(x, y)
    radius = 0.47 * min(height, width)
    img = np.where(r > radius, 0.5, img)  # mid-gray surround
    img = np.where(r < radius / 16, 0.5, img)  # centre where spokes are below one pixel
    return _downsample(img, _SUPERSAMPLE)


def _bars(height: int, width: int) -> np.ndarray:
    # SMPTE-like 75% bars, in RGB: white, yellow, cyan, green, magenta, red, blue.
    rgb = np.array(
        [[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]], np.float64
    ) * 0.75
    img = np.zeros((height, width, 3))
    top = height * 3 // 5
    index = np.minimum(np.arange(width) * len(rgb) // width, len(rgb) - 1)
    img[:top] = rgb[index][None]
    ramp = np.linspace(0, 1, width)[None, :]
    strips = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)]  # R, G, B, gray gradients
    bounds = np.linspace(top, height, len(strips) + 1).astype(int)
    for (r, g, b), y0, y1 in zip(strips, bounds[:-1], bounds[1:]):
        img[y0:y1] = (ramp[..., None] * np.array([r, g, b]))
    return img[:, :, ::-1]  # RGB -> BGR


def _lines(height: int, width: int) -> np.ndarray:
    img = np.ones((height, width))
    half = height // 2
    # Line pairs: vertical lines on the left half, horizontal on the right, widths 1-4 px.
    for i, w in enumerate((1, 2, 3, 4)):
        x0, x1 = i * width // 8, (i + 1) * width // 8 - 4
        cols = (np.arange(x0, x1) - x0) // w % 2 == 0
        img[8:half - 8, x0:x1][:, cols] = 0.0
        y_rows = (np.arange(8, half - 8) - 8) // w % 2 == 0
        xs = slice(width // 2 + i * width // 8, width // 2 + (i + 1) * width // 8 - 4)
        img[8:half - 8, xs][y_rows] = 0.0
    # Text-like rows: random glyphs (strokes on a 3x4 cell grid) at 1x, 2x and 3x size.
    rng = np.random.default_rng(2026)
    y = half + 4
    for zoom in (1, 2, 3):
        gh, gw = 9 * zoom, 6 * zoom
        if y + gh > height - 2:
            break
        x = 6
        while x + gw < width - 6:
            if rng.random() < 0.18:  # a space between words
                x += gw
                continue
            img[y:y + gh, x:x + gw] = np.minimum(img[y:y + gh, x:x + gw], _glyph(rng, zoom))
            x += gw + zoom
        y += gh + 6 * zoom
    colour = np.array([0.35, 0.2, 0.05])  # BGR ink: dark blue
    return 1 - (1 - img)[..., None] * (1 - colour)[None, None]


def _glyph(rng: np.random.Generator, zoom: int) -> np.ndarray:
    """One pseudo-letter: 2-5 one-pixel strokes between points of a 3x4 grid, ``zoom``-scaled."""
    cell = np.ones((9, 6))
    points = [(r, c) for r in (1, 4, 7) for c in (1, 4)]
    for _ in range(rng.integers(2, 6)):
        (r0, c0), (r1, c1) = (points[i] for i in rng.choice(len(points), 2, replace=False))
        n = max(abs(r1 - r0), abs(c1 - c0)) + 1
        rows = np.rint(np.linspace(r0, r1, n)).astype(int)
        cols = np.rint(np.linspace(c0, c1, n)).astype(int)
        cell[rows, cols] = 0.0
    return np.kron(cell, np.ones((zoom, zoom)))


def _ridge(width: int, rng: np.random.Generator, octaves: int = 6) -> np.ndarray:
    """A 1-D fractal profile in [0, 1] of ``width`` samples (sum of random-phase sines, 1/f)."""
    x = np.linspace(0, 1, width)
    out = np.zeros(width)
    for k in range(octaves):
        f = 2.0 ** k * (1 + rng.random())
        out += np.sin(2 * np.pi * (f * x + rng.random())) / 2.0 ** k
    return (out - out.min()) / max(1e-9, np.ptp(out))


def _scene(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    horizon = 0.62
    rgb = np.zeros((height, width, 3))
    sky = np.array([0.30, 0.50, 0.85]) * (1 - y[..., None]) + np.array([0.95, 0.80, 0.65]) * y[..., None]
    rgb[:] = sky
    aspect = width / height
    sun = np.hypot((x - 0.72) * aspect, y - 0.22)
    rgb += np.clip(1 - sun / 0.09, 0, 1)[..., None] ** 0.5 * np.array([0.6, 0.45, 0.2])
    rgb += np.exp(-(sun / 0.25) ** 2)[..., None] * np.array([0.25, 0.15, 0.05])
    ranges = [(0.30, 0.20, (0.55, 0.60, 0.75)), (0.42, 0.16, (0.35, 0.45, 0.55)), (0.52, 0.10, (0.20, 0.35, 0.20))]
    for base, amp, colour in ranges:
        top = base + amp * (1 - _ridge(width, rng))[None, :]
        shade = 0.85 + 0.3 * _ridge(width, rng, 4)[None, :] * (1 - (y - top).clip(0, 1) * 3)
        mask = (y >= top) & (y < horizon)
        rgb = np.where(mask[..., None], np.array(colour) * shade[..., None], rgb)
    # lake: the scene above the horizon mirrored, rippled and darkened
    rows = np.arange(height)
    h0 = int(horizon * height)
    lake_rows = rows[h0 : h0 + int(0.18 * height)]
    for r in lake_rows:
        d = r - h0
        src = max(0, h0 - 1 - d + int(round(2 * np.sin(r * 0.9))))
        shift = int(round(3 * np.sin(r * 0.45)))
        rgb[r] = np.roll(rgb[src], shift, axis=0) * 0.75 + np.array([0.02, 0.05, 0.10])
    # meadow with grass strokes below the lake
    m0 = h0 + len(lake_rows)
    meadow = np.array([0.25, 0.55, 0.20]) * (0.7 + 0.5 * (y[m0:] - horizon))[..., None]
    rgb[m0:] = meadow * (0.9 + 0.2 * rng.random((height - m0, width, 1)))
    for _ in range(width * 2):
        gx, gy = int(rng.integers(0, width)), int(rng.integers(m0 + 2, height))
        length = int(2 + (gy - m0) * 0.12)
        for t in range(length):
            yy, xx = gy - t, min(width - 1, gx + t // 3)
            if yy >= m0:
                rgb[yy, xx] = rgb[yy, xx] * 0.6 + np.array([0.15, 0.45, 0.10]) * 0.4
    return rgb.clip(0, 1)[:, :, ::-1]  # RGB -> BGR


def write_examples(folder: str | Path) -> list[Path]:
    """Write one PNG per kind (``EXAMPLE_SIZES``) into ``folder``; return the paths."""
    from gantools.image import encode_image, write_image

    paths = []
    for kind in KINDS:
        path = Path(folder) / f"chart_{kind}.png"
        write_image(path, encode_image(make_chart(kind, EXAMPLE_SIZES[kind]), "png", quality=9))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_examples(sys.argv[1] if len(sys.argv) > 1 else "examples"):
        print(written)
