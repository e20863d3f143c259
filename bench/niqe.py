"""NIQE, the "completely blind" natural image quality evaluator (Mittal, Soundararajan, Bovik 2013).

Written from the paper: the luminance is normalised into MSCN coefficients (Eq. 1: local mean and
deviation under a 7x7 Gaussian window, ``(I - mu) / (sigma + 1)``); each 96x96 block gives 18
features (an AGGD fit of the coefficients: shape and mean scale; and for the products of
neighbouring coefficients along four orientations: shape, mean, left and right scale, Eq. 7-8),
at two scales (the second after a 0.5 MATLAB-bicubic downscale with antialiasing, blocks 48x48);
a multivariate Gaussian fitted to the blocks' 36 features is compared with the pristine model
(Eq. 10: ``sqrt((nu1 - nu2)^T ((S1 + S2) / 2)^-1 (nu1 - nu2))``). Lower is more natural.

Conventions match the MATLAB release as BasicSR 1.4.2 reproduces it (``basicsr/metrics/niqe.py``,
read to check): Y of BT.601 ``[16, 235]`` rounded, blocks without overlap from the top-left corner,
``nearest`` (replicate) borders for the window, neighbour products by circular shift inside a
block, NaN feature rows left out of the covariance, a pseudo-inverse. The pristine parameters
(``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``) are those BasicSR ships in its sdist:
:func:`pristine_params` fetches ``basicsr==1.4.2`` with pip into ``bench/.cache`` and extracts only
``niqe_pris_params.npz`` (never vendored in this repository).
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
BASICSR = "basicsr==1.4.2"
SDIST_MEMBER = "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
BLOCK = 96


def pristine_params(cache: Path = CACHE) -> dict[str, np.ndarray]:
    """``mu_pris_param`` (1, 36), ``cov_pris_param`` (36, 36), ``gaussian_window`` (7, 7) from BasicSR's sdist."""
    npz = cache / "niqe" / "niqe_pris_params.npz"
    if not npz.is_file():
        sdists = cache / "sdists"
        sdists.mkdir(parents=True, exist_ok=True)
        # --no-build-isolation: pip prepares the sdist's metadata with this environment's setuptools
        # (with isolation and --no-binary :all: it would try to build setuptools itself from source).
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
               BASICSR, "-d", str(sdists)]
        print(f"fetching NIQE parameters: {' '.join(cmd[1:])}", file=sys.stderr)
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        tar = sdists / "basicsr-1.4.2.tar.gz"
        if res.returncode or not tar.is_file():
            tail = (res.stderr.strip().splitlines() or ["no file"])[-1]
            raise SystemExit(f"error: pip download {BASICSR} failed ({tail})")
        npz.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar) as tf, tf.extractfile(SDIST_MEMBER) as src:  # type: ignore[union-attr]
            npz.write_bytes(src.read())
    with np.load(npz) as data:
        return {k: data[k] for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}


@functools.lru_cache(maxsize=1)
def _gamma_table() -> tuple[np.ndarray, np.ndarray]:
    """The AGGD shape grid 0.2..10 (step 0.001) and ``r(g) = G(2/g)^2 / (G(1/g) G(3/g))``."""
    g = np.arange(0.2, 10.001, 0.001)
    gam = np.vectorize(math.gamma)
    return g, gam(2 / g) ** 2 / (gam(1 / g) * gam(3 / g))


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Moment-matching AGGD fit of ``x``: ``(shape alpha, left scale beta_l, right scale beta_r)``."""
    x = x.ravel()
    left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
    gamma_hat = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    grid, r = _gamma_table()
    alpha = float(grid[np.argmin((r - r_norm) ** 2)])
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, float(left * k), float(right * k)


def block_features(block: np.ndarray) -> list[float]:
    """The paper's 18 features of one block of MSCN coefficients."""
    alpha, bl, br = aggd_fit(block)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):  # horizontal, vertical, two diagonals
        alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * math.gamma(2 / alpha) / math.gamma(1 / alpha)
        feats += [alpha, mean, bl, br]
    return feats


def mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1), replicate borders."""
    blur = lambda a: cv2.filter2D(a, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)  # noqa: E731
    mu = blur(img)
    sigma = np.sqrt(np.abs(blur(img * img) - mu * mu))
    return (img - mu) / (sigma + 1)


def _matlab_half_weights(n: int) -> np.ndarray:
    """``(ceil(n/2), n)`` matrix of MATLAB ``imresize(.., 0.5)`` (bicubic, antialiasing, symmetric borders)."""
    scale, width = 0.5, 4.0 / 0.5
    out_n = math.ceil(n * scale)
    x = np.arange(1, out_n + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    d = scale * (u[:, None] - idx)
    a = np.abs(d)
    cubic = np.where(a <= 1, 1.5 * a**3 - 2.5 * a**2 + 1,
                     np.where(a <= 2, -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2, 0.0))
    w = scale * cubic
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])  # MATLAB's symmetric padding
    cols = mirror[np.mod(idx.astype(int) - 1, 2 * n)]
    m = np.zeros((out_n, n))
    np.add.at(m, (np.repeat(np.arange(out_n), taps), cols.ravel()), w.ravel())
    return m


def matlab_half(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` (bicubic with antialiasing) of a 2-D float image."""
    return _matlab_half_weights(img.shape[0]) @ img @ _matlab_half_weights(img.shape[1]).T


def features(y: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``(blocks, 36)`` features of a luminance image (float, 0..255): 18 per block at each of two scales.

    The image is cropped to whole 96x96 blocks from the top-left corner (at least two of them).
    """
    h, w = (y.shape[0] // BLOCK) * BLOCK, (y.shape[1] // BLOCK) * BLOCK
    if h * w < 2 * BLOCK * BLOCK:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks, got a {y.shape[1]}x{y.shape[0]} image")
    img = y[:h, :w].astype(np.float64)
    per_scale = []
    for scale in (1, 2):
        coeffs, b = mscn(img, window), BLOCK // scale
        per_scale.append([block_features(coeffs[i:i + b, j:j + b])
                          for j in range(0, w // scale, b) for i in range(0, h // scale, b)])
        if scale == 1:
            img = matlab_half(img / 255.0) * 255.0
    return np.concatenate([np.asarray(f) for f in per_scale], axis=1)


def niqe_y(y: np.ndarray, params: dict[str, np.ndarray]) -> float:
    """NIQE of a luminance image (float, 0..255): distance of its features' MVG to the pristine one (Eq. 10)."""
    feats = features(y, params["gaussian_window"])
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
    diff = params["mu_pris_param"].ravel() - mu
    return float(np.sqrt(diff @ np.linalg.pinv((params["cov_pris_param"] + cov) / 2) @ diff))


def niqe(bgr: np.ndarray, params: dict[str, np.ndarray], shave: int = 0) -> float:
    """NIQE of a BGR uint8 image: BT.601 Y in [16, 235], rounded, ``shave`` px off each border."""
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    y = np.round(16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0)
    if shave:
        y = y[shave:-shave, shave:-shave]
    return niqe_y(y, params)
