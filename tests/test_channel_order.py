"""Channel order end to end: a coloured file read -> every built-in plugin -> written file.

BGR arrays on the outside, RGB tensors inside: a swapped conversion anywhere would turn the red
half of the test image blue. Each plugin runs with its shipped model (faces: a short projection).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import gantools

RED, BLUE = (0, 0, 230), (230, 0, 0)  # BGR


def _red_blue(h: int = 64, w: int = 64) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = RED
    img[:, w // 2 :] = BLUE
    return cv2.GaussianBlur(img, (0, 0), 1.0)


CASES = [
    ("resize", {"scale": 2}),
    ("upscale", {"model": "fidelity", "scale": 2}),
    ("stylize", {"style": "wave", "preserve_color": True}),
    ("faces", {"steps": 30}),
]


@pytest.mark.parametrize("name,options", CASES, ids=[c[0] for c in CASES])
def test_red_stays_red_and_blue_stays_blue(tmp_path, name: str, options: dict) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _red_blue())
    summary = gantools.run(name, [str(src)], str(tmp_path / "out.png"), threads=1, **options)
    assert summary.failed == 0, summary.errors
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED).astype(float)
    w = out.shape[1]
    left, right = out[:, : w // 4].mean((0, 1)), out[:, -w // 4 :].mean((0, 1))  # B, G, R means
    if name == "faces":  # a reconstructed face is no colour chart: the red side must be the redder one
        assert left[2] - left[0] > right[2] - right[0], (left, right)
        return
    assert left[2] > left[0] + 100, left  # red half: R >> B
    assert right[0] > right[2] + 100, right  # blue half: B >> R
