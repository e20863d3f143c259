"""Projection (GAN inversion): find the ``w`` whose face best reconstructs a given face.

The target is centre-cropped to a square and resized to the generator's resolution. The search
starts from the best of the 18 label-pair mean latents (which also gives the face's estimated
age group and gender), then optimises one ``w`` (W space, shared by all layers) with Adam on
``L1(pixels) + ssim_weight * multi-scale SSIM loss`` (kornia's ``ssim_loss`` at up to three
scales, window 7; no pretrained network is used). A little Gaussian noise is added to ``w``
during the first three quarters of the run (fading out) to escape poor starts, the learning rate
ramps up for 5 % and down (cosine) over the last 25 % of the steps, and the best ``w`` seen is
kept. Noise inputs stay at their fixed buffers. The generator's weights are never changed.

Re-rendering with other labels moves ``w`` by the difference of the label-pair means:
``w' = w + c(age', gender') - c(age, gender)``.
"""

from __future__ import annotations

import math
from typing import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from gantools.tensor import convert
from gantools_faces.generate import FaceModel
from gantools_faces.labels import NUM_AGES, NUM_GENDERS

MIN_SIDE = 8
SSIM_WINDOW = 7


@dataclass
class Projection:
    """Result of :func:`project`: ``w`` (1, w_dim), its reconstruction (1, 3, R, R) in [0, 1],
    the PSNR (dB) against the resized target, and the estimated labels."""

    w: torch.Tensor
    image: torch.Tensor
    psnr: float
    age: int
    gender: int
    losses: list[float] = field(default_factory=list)


def prepare_target(color: np.ndarray, resolution: int) -> torch.Tensor:
    """HxWx3 BGR or HxW(x1) gray array (uint8/uint16) -> (1, 3, R, R) RGB float tensor in [0, 1].

    Centre-crops to a square and resizes (INTER_AREA down, cubic up). ``ValueError`` when the
    shorter side is below :data:`MIN_SIDE` pixels.
    """
    import cv2

    h, w = color.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image of {w}x{h} px is too small to project (at least {MIN_SIDE}x{MIN_SIDE} px)")
    img = color.astype(np.float32) / convert.maxval(color.dtype)
    if img.ndim == 2:
        img = img[:, :, None]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0 : y0 + s, x0 : x0 + s]
    if s != resolution:
        img = cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_AREA if s > resolution else cv2.INTER_CUBIC)
        if img.ndim == 2:
            img = img[:, :, None]
    img = np.clip(img, 0.0, 1.0)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return convert.to_tensor(img, bgr_to_rgb=True)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [0, 1] (inf when identical)."""
    mse = float(F.mse_loss(a.float().clamp(0, 1), b.float().clamp(0, 1)))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ms_ssim_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3, window: int = SSIM_WINDOW) -> torch.Tensor:
    """Mean of kornia's SSIM loss ``(1 - SSIM) / 2`` over up to ``scales`` 2x-downsampled scales."""
    from kornia.losses import ssim_loss

    total, n = x.new_zeros(()), 0
    for k in range(scales):
        if min(x.shape[-2:]) < 2 * window and k > 0:
            break
        total = total + ssim_loss(x, y, window, reduction="mean")
        n += 1
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return total / max(1, n)


def reconstruction_loss(img: torch.Tensor, target: torch.Tensor, ssim_weight: float = 1.0) -> torch.Tensor:
    """``L1 + ssim_weight * multi-scale SSIM loss`` in fp32."""
    img, target = img.float(), target.float()
    return F.l1_loss(img, target) + ssim_weight * ms_ssim_loss(img, target)


def _lr(step: int, steps: int, base: float) -> float:
    t = step / max(1, steps)
    ramp = min(1.0, t / 0.05) if steps > 20 else 1.0
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / 0.25))
    return base * ramp * down


def start_point(model: FaceModel, target: torch.Tensor, ssim_weight: float = 1.0) -> tuple[torch.Tensor, int, int]:
    """The label-pair mean ``w`` that reconstructs ``target`` best, and its (age, gender)."""
    best: tuple[float, int, int] | None = None
    for a in range(NUM_AGES):
        for g in range(NUM_GENDERS):
            img = model.render(model.center(a, g)[None])
            loss = float(reconstruction_loss(img, target, ssim_weight))
            if best is None or loss < best[0]:
                best = (loss, a, g)
    assert best is not None
    _, a, g = best
    return model.center(a, g)[None].clone(), a, g


def project(model: FaceModel, target: torch.Tensor, steps: int = 200, *, lr: float = 0.1,
            ssim_weight: float = 1.0, noise: float = 0.05, seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> Projection:
    """Optimise ``w`` to reconstruct ``target`` (1, 3, R, R) in [0, 1] (see the module docstring).

    Deterministic for a given ``seed``. ``steps`` 0 returns the start point. ``progress(step, steps)``
    is called after each optimisation step.
    """
    from gantools.device import autocast

    if target.shape[-2:] != (model.resolution, model.resolution):
        raise ValueError(f"target must be {model.resolution}x{model.resolution}, got {tuple(target.shape[-2:])}")
    target = target.to(model.device).float()
    w0, age, gender = start_point(model, target, ssim_weight)
    w_std = float((model.center(age, gender) - model.G.mapping.w_avg.float()).norm()) / math.sqrt(w0.shape[1])
    w_std = max(w_std, 0.1)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    best_w, best_loss = w0.clone(), float("inf")
    losses: list[float] = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, lr)
        t = step / max(1, steps)
        sigma = w_std * noise * max(0.0, 1.0 - t / 0.75) ** 2
        jitter = torch.randn(w.shape, generator=gen).to(w.device) * sigma
        with autocast(model.precision, model.device):
            img = model.G.synthesis(w + jitter, "const")
        loss = reconstruction_loss(img, target, ssim_weight)
        value = float(loss.detach())
        losses.append(value)
        if sigma == 0.0 and value < best_loss:  # the loss of w as it is before this update
            best_loss, best_w = value, w.detach().clone()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    final = w.detach().clone()
    if steps:
        final_loss = float(reconstruction_loss(model.render(final), target, ssim_weight))
        if best_loss < final_loss:
            final = best_w
    image = model.render(final)
    return Projection(final, image, psnr(image, target), age, gender, losses)


def relabel(model: FaceModel, proj: Projection, age: int | None = None, gender: int | None = None) -> torch.Tensor:
    """``w`` of the projected face with the given labels (``None`` keeps the estimated one)."""
    a = proj.age if age is None else age
    g = proj.gender if gender is None else gender
    return proj.w + (model.center(a, g) - model.center(proj.age, proj.gender))[None]
