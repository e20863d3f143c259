"""The metrics of ``bench/sr.py --realworld`` (bench/niqe.py, bench/sr_realworld.py) on synthetic images.

No network: NIQE's known properties are checked with a pristine model fitted here on synthetic
1/f ("natural-looking") images; the test with BasicSR's real parameters runs only where a
benchmark run already fetched them into ``bench/.cache``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.append(str(BENCH))
import niqe  # noqa: E402
import sr_realworld as rw  # noqa: E402


def pink(seed: int, size: int = 288) -> np.ndarray:
    """A 1/f-spectrum grey image in 0..255 (natural images' power law)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1
    img = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / radius).real
    return (img - img.min()) / (img.max() - img.min()) * 200 + 30


def window() -> np.ndarray:
    k = cv2.getGaussianKernel(7, 7 / 6)
    return k @ k.T


def synthetic_params() -> dict[str, np.ndarray]:
    feats = np.concatenate([niqe.features(np.round(pink(s)), window()) for s in range(3)])
    return {"mu_pris_param": feats.mean(axis=0)[None], "cov_pris_param": np.cov(feats, rowvar=False),
            "gaussian_window": window()}


def test_niqe_rises_with_blur_and_is_deterministic():
    params = synthetic_params()
    sharp = np.round(pink(10))
    blurred = np.round(cv2.GaussianBlur(sharp, (0, 0), 2.0))
    assert niqe.niqe_y(sharp, params) < niqe.niqe_y(blurred, params)
    assert niqe.niqe_y(sharp, params) == niqe.niqe_y(sharp.copy(), params)


def test_niqe_with_basicsr_parameters_where_fetched():
    npz = niqe.CACHE / "niqe" / "niqe_pris_params.npz"
    if not npz.is_file():
        pytest.skip("bench/.cache has no niqe_pris_params.npz (python bench/sr.py --realworld fetches it)")
    params = niqe.pristine_params()
    grey = np.clip(pink(4), 0, 255).astype(np.uint8)
    img = cv2.merge([grey] * 3)
    assert niqe.niqe(img, params) < niqe.niqe(cv2.GaussianBlur(img, (0, 0), 2.5), params)


def test_aggd_fit_of_gaussian_and_laplacian_samples():
    rng = np.random.default_rng(0)
    alpha, left, right = niqe.aggd_fit(rng.normal(0, 2.0, 200_000))
    assert alpha == pytest.approx(2.0, abs=0.05) and left == pytest.approx(2 * np.sqrt(2), rel=0.02)
    assert right == pytest.approx(left, rel=0.02)
    assert niqe.aggd_fit(rng.laplace(0, 1.0, 200_000))[0] == pytest.approx(1.0, abs=0.05)


def test_matlab_half_keeps_constants_and_ramps():
    assert np.allclose(niqe.matlab_half(np.full((10, 12), 7.0)), 7.0)
    ramp = np.tile(np.arange(16, dtype=np.float64), (16, 1))
    half = niqe.matlab_half(ramp)
    assert half.shape == (8, 8)
    # MATLAB's output pixel j (1-based) samples input position 2j - 0.5: the cubic kernel keeps linear ramps
    assert np.allclose(half[:, 2:6], (2 * np.arange(3, 7) - 0.5) - 1)


def test_sliced_wasserstein_and_texture_ratio():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 64))
    assert rw.sliced_wasserstein(a, a[::-1]) == 0.0
    assert rw.sliced_wasserstein(a, a + 1.0) > rw.sliced_wasserstein(a, a + 0.1) > 0
    hr = cv2.merge([np.clip(pink(2, 128), 0, 255).astype(np.uint8)] * 3)
    soft = cv2.GaussianBlur(hr, (0, 0), 2.0)
    assert rw.texture_ratio(soft, hr, soft) == 1.0
    assert rw.texture_ratio(hr, hr, soft) == 0.0


def test_degrade_fixed_is_seeded():
    hr = cv2.merge([np.clip(pink(3, 64), 0, 255).astype(np.uint8)] * 3)
    lr = rw.degrade_fixed(hr, seed=5)
    assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, rw.degrade_fixed(hr, seed=5))
    assert not np.array_equal(lr, rw.degrade_fixed(hr, seed=6))


def test_write_section_replaces_only_its_own(tmp_path):
    out = tmp_path / "sr.md"
    out.write_text("# Super-resolution benchmark\n\nold table\n")
    rw.write_section(out, f"{rw.HEADING}\n\nfirst\n")
    rw.write_section(out, f"{rw.HEADING}\n\nsecond\n")
    assert out.read_text() == f"# Super-resolution benchmark\n\nold table\n\n{rw.HEADING}\n\nsecond\n"
