"""Sample grids for watching a run: a batch of images tiled into one RGB array."""

from __future__ import annotations

import math

import numpy as np
import torch

from gantools.tensor.convert import tensor_to_images


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) tensor in [0, 1] (C = 1 or 3) -> RGB uint8 array with a ``pad`` px white gap."""
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    arr = tensor_to_images(x, np.uint8, rgb_to_bgr=False)
    for i in range(n):
        r, c = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        grid[y0 : y0 + h, x0 : x0 + w] = arr[i]
    return grid
