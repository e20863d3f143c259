"""Synthetic charts: deterministic, the documented layouts, and the committed examples match."""

from __future__ import annotations

import numpy as np
import pytest

from clitools import ROOT, read
from gantools.charts import EXAMPLE_SIZES, KINDS, make_chart


@pytest.mark.parametrize("kind", KINDS)
def test_chart_layout_and_determinism(kind):
    img = make_chart(kind, (40, 64))
    assert img.dtype == np.uint8 and img.shape[:2] == (40, 64)
    assert img.ndim == (2 if kind in ("zoneplate", "star") else 3)
    assert np.array_equal(img, make_chart(kind, (40, 64)))
    assert img.min() < 40 and img.max() > 200  # real contrast, not a flat image


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown chart"):
        make_chart("mandrill")
    with pytest.raises(ValueError, match="at least 16"):
        make_chart("star", 8)


@pytest.mark.parametrize("kind", KINDS)
def test_committed_examples_are_the_charts(kind):
    path = ROOT / "examples" / f"chart_{kind}.png"
    assert path.stat().st_size < 300_000
    assert np.array_equal(read(path), make_chart(kind, EXAMPLE_SIZES[kind]))
