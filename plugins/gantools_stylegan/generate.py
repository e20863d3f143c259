"""Images from a StyleGAN2 generator, as the published tools make them.

Seed convention (NVlabs ``gen_images.py`` / ``generate.py``): image ``s`` draws
``z = np.random.RandomState(s).randn(1, z_dim)`` (float64, cast to float32 by the mapping
network); class-conditional models get the one-hot label of ``--class``; ``w`` is truncated
towards the file's ``w_avg`` (NVlabs) or ``latent_avg`` (rosinality); noise is the constant
buffers; pixels are ``floor(clamp(127.5 x + 128, 0, 255))``. Each image is rendered in its own
forward pass, so image ``i`` of ``generate(n, seed)`` depends only on ``seed + i``.

A rosinality training checkpoint holds no ``latent_avg``: its truncation centre is then the mean
``w`` of :data:`CENTER_SAMPLES` latents drawn from ``RandomState(CENTER_SEED)`` (the role of the
reference ``mean_latent(4096)``, made reproducible).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from gantools.nn.stylegan2 import StyleGAN2Generator, SynthesisLayer, to_uint8

CENTER_SEED = 0x5EED
CENTER_SAMPLES = 4096
MAX_SEED = 2**32 - 1  # numpy RandomState seeds


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """``z`` (1, z_dim) float64 of ``seed``: ``np.random.RandomState(seed).randn(1, z_dim)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed!r} is not a whole number from 0 to {MAX_SEED} (numpy RandomState seeds)")
    return np.random.RandomState(int(seed)).randn(1, z_dim)


class StyleGANModel:
    """A loaded :class:`StyleGAN2Generator` (eval, frozen) with a truncation ``psi`` and a class."""

    def __init__(self, generator: StyleGAN2Generator, *, has_w_avg: bool = True, precision: str = "fp32",
                 device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.G = generator.eval().requires_grad_(False).to(self.device)
        self.precision = precision
        if not has_w_avg:
            self.G.mapping.w_avg.copy_(self._mean_w())

    @classmethod
    def load(cls, path: str | os.PathLike, **kw: Any) -> "StyleGANModel":
        """Read ``path`` (see :mod:`gantools_stylegan.loader`) and build its generator."""
        from gantools.nn import ARCHS, load_arch
        from gantools_stylegan.loader import read_generator

        loaded = read_generator(path)
        config = ARCHS.get("stylegan2").detect(loaded.state)
        if config is None:
            keys = ", ".join(list(loaded.state)[:4])
            raise ValueError(f"unknown layout: not a StyleGAN2 generator of NVlabs stylegan2-ada-pytorch (G_ema) "
                             f"or rosinality stylegan2-pytorch (g_ema) (keys: {keys}, ...)")
        desc = load_arch(loaded.state, "stylegan2", {**config, **loaded.config})
        if desc.config["img_channels"] not in (1, 3):
            raise ValueError(f"a generator of {desc.config['img_channels']}-channel images (1 or 3 are supported)")
        return cls(desc.model, has_w_avg=loaded.has_w_avg, **kw)

    @property
    def resolution(self) -> int:
        return int(self.G.resolution)

    @property
    def c_dim(self) -> int:
        return int(self.G.c_dim)

    def _label(self, class_index: int | None) -> torch.Tensor | None:
        if self.c_dim == 0:
            if class_index is not None:
                raise ValueError("this model is unconditional: it takes no class")
            return None
        if class_index is None or not 0 <= class_index < self.c_dim:
            raise ValueError(f"this model is class-conditional: give a class from 0 to {self.c_dim - 1}")
        c = torch.zeros(1, self.c_dim, device=self.device)
        c[0, class_index] = 1
        return c

    def _mean_w(self) -> torch.Tensor:
        z = np.random.RandomState(CENTER_SEED).randn(CENTER_SAMPLES, self.G.z_dim)
        c = torch.zeros(CENTER_SAMPLES, self.c_dim, device=self.device) if self.c_dim else None
        with torch.no_grad():
            return self.G.mapping(torch.from_numpy(z).to(self.device), c).mean(0)

    def w(self, seed: int, truncation: float = 1.0, class_index: int | None = None) -> torch.Tensor:
        """``w`` (1, w_dim) of ``seed``, truncated by ``psi = truncation`` towards ``w_avg``."""
        if not 0.0 <= truncation <= 1.0:
            raise ValueError(f"truncation {truncation} is not in [0, 1]")
        z = torch.from_numpy(seed_z(seed, self.G.z_dim)).to(self.device)
        with torch.no_grad():
            return self.G.mapping(z, self._label(class_index), truncation)

    def sample_w(self, n: int, seed: int, class_index: int | None = None) -> torch.Tensor:
        """Untruncated ``w`` (n, w_dim) of seeds ``seed .. seed + n - 1``, in one mapping pass."""
        z = torch.from_numpy(np.concatenate([seed_z(seed + i, self.G.z_dim) for i in range(n)])).to(self.device)
        c = self._label(class_index)
        with torch.no_grad():
            return self.G.mapping(z, None if c is None else c.expand(n, -1))

    def modulation_weights(self) -> list[torch.Tensor]:
        """The affine (style) weight (channels, w_dim) of every modulated 3x3 conv, in synthesis order."""
        layers = [m for m in self.G.synthesis.modules() if isinstance(m, SynthesisLayer)]
        return [m.affine.weight.detach().float() for m in layers]

    def render(self, w: torch.Tensor) -> np.ndarray:
        """One image (HxWx3 BGR uint8) of ``w`` (1, w_dim)."""
        from gantools.device import autocast

        with torch.no_grad(), autocast(self.precision, self.device):
            img = self.G.synthesis(w)
        rgb = to_uint8(img)[0].cpu().numpy()
        return np.ascontiguousarray(np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb[:, :, ::-1])

    def generate(self, n: int, seed: int, truncation: float = 1.0, class_index: int | None = None) -> list[np.ndarray]:
        """``n`` images (HxWx3 BGR uint8) of seeds ``seed .. seed + n - 1``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive number of images, got {n!r}")
        return [self.render(self.w(seed + i, truncation, class_index)) for i in range(n)]

    def interpolate(self, seed_a: int, seed_b: int, frames: int, truncation: float = 1.0,
                    class_index: int | None = None) -> list[np.ndarray]:
        """``frames`` images on the straight line in ``w`` from ``seed_a`` to ``seed_b`` (both included)."""
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
            raise ValueError(f"frames must be at least 2, got {frames!r}")
        wa, wb = self.w(seed_a, truncation, class_index), self.w(seed_b, truncation, class_index)
        return [self.render(torch.lerp(wa, wb, k / (frames - 1))) for k in range(frames)]


__all__ = ["CENTER_SAMPLES", "CENTER_SEED", "StyleGANModel", "seed_z"]
