"""Real-ESRGAN-style synthetic degradation: HR photo -> realistic low-resolution input.

Two rounds of (blur, random resize, Gaussian/Poisson noise, JPEG), then a final resize to
exactly ``1/scale`` of the input and a last JPEG, in random order. Ranges are somewhat milder
than Real-ESRGAN's defaults: gantools' "photo" model targets camera photos and scans, which are
rarely as damaged as web images. Every random choice comes from the ``rng`` passed in, so a
batch is a pure function of its step.
"""

from __future__ import annotations

import cv2
import numpy as np

INTERPOLATIONS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Normalised anisotropic Gaussian kernel (``size`` odd), rotated by ``theta`` radians."""
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def random_blur(img: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float]) -> np.ndarray:
    size = int(rng.choice([7, 9, 11, 13, 15, 17, 19, 21]))
    sx = float(rng.uniform(*sigma))
    sy = sx if rng.random() < 0.6 else float(rng.uniform(*sigma))
    k = gaussian_kernel(size, sx, sy, float(rng.uniform(0, np.pi)))
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)


def random_resize(img: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    mode = rng.choice(3, p=[0.2, 0.7, 0.1])  # up, down, keep
    f = float(rng.uniform(1.0, hi)) if mode == 0 else float(rng.uniform(lo, 1.0)) if mode == 1 else 1.0
    h, w = img.shape[:2]
    size = (max(4, round(w * f)), max(4, round(h * f)))
    return cv2.resize(img, size, interpolation=int(rng.choice(INTERPOLATIONS)))


def random_noise(img: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float], poisson: tuple[float, float]) -> np.ndarray:
    gray = rng.random() < 0.4
    shape = img.shape[:2] + ((1,) if gray else (img.shape[2],))
    if rng.random() < 0.5:
        noise = rng.normal(0.0, float(rng.uniform(*sigma)) / 255.0, shape)
    else:
        scale = float(rng.uniform(*poisson))
        vals = 10 ** 2.5 * scale
        base = img.mean(axis=2, keepdims=True) if gray else img
        noise = (rng.poisson(np.clip(base, 0, 1) * vals) / vals - base)
    return np.clip(img + noise.astype(np.float32), 0.0, 1.0)


def jpeg(img: np.ndarray, rng: np.random.Generator, quality: tuple[int, int]) -> np.ndarray:
    """JPEG round trip of a float RGB image in [0, 1] at a random quality in ``quality``.

    OpenCV's codec expects BGR: the image is flipped around the encode so that the JPEG's
    YCbCr conversion (and its chroma subsampling) sees the real colours.
    """
    q = int(rng.integers(quality[0], quality[1] + 1))
    u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise ValueError(f"JPEG encoding of a {u8.shape} image failed")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def degrade(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Degrade an RGB uint8 HR patch (sides divisible by ``scale``) to a 1/scale LR patch."""
    h, w = hr.shape[:2]
    img = hr.astype(np.float32) / 255.0
    # round 1
    img = random_blur(img, rng, (0.2, 2.5))
    img = random_resize(img, rng, 0.3, 1.3)
    img = random_noise(img, rng, (1.0, 20.0), (0.05, 2.0))
    img = jpeg(img, rng, (40, 95))
    # round 2 (not always)
    if rng.random() < 0.6:
        img = random_blur(img, rng, (0.2, 1.2))
        img = random_resize(img, rng, 0.5, 1.2)
        img = random_noise(img, rng, (1.0, 15.0), (0.05, 1.5))
    size = (w // scale, h // scale)
    interp = int(rng.choice(INTERPOLATIONS))
    if rng.random() < 0.5:
        img = jpeg(cv2.resize(img, size, interpolation=interp), rng, (50, 95))
    else:
        img = cv2.resize(jpeg(img, rng, (50, 95)), size, interpolation=interp)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
