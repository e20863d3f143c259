"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for data-efficient GAN training.

The same random policy is applied to real and fake batches before the discriminator, so that D
cannot tell them apart by augmentation and G receives gradients through it. Each sample of a
batch gets its own random parameters, drawn from torch's global RNG (which the engine seeds per
step, so a resumed run draws the same ones).

The three policies are the paper's, as whole-pixel tensor ops that run in the input's dtype
(bf16 included) and memory format:

* ``color``: brightness ``+U(-0.25, 0.25)``, saturation ``x U(0, 2)`` around the pixel's channel
  mean, contrast ``x U(0.5, 1.5)`` around the image mean;
* ``translation``: an integer shift of up to 1/8 of each side, zero fill;
* ``cutout``: a zeroed square of half the side (a quarter of the area) at a random centre.

These are not kornia's ``ColorJiggle`` / ``RandomAffine`` / ``RandomErasing``: those resample
bilinearly, convert to HSV and run in fp32 only, which made augmentation a quarter of a bf16
face-GAN step (``bench/train_speed_faces.py``) for ops the paper defines as plain arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _rand(x: torch.Tensor) -> torch.Tensor:
    """One uniform [0, 1) number per sample, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast per sample of (N, C, H, W)."""
    x = x + (_rand(x) - 0.5) * 0.5
    x = torch.lerp(x.mean(dim=1, keepdim=True), x, _rand(x) * 2)
    return torch.lerp(x.mean(dim=(1, 2, 3), keepdim=True), x, _rand(x) + 0.5)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample of (N, C, H, W) by whole pixels, up to ``ratio`` of each side; zero fill."""
    n, _, h, w = x.shape
    sy, sx = max(1, int(h * ratio)), max(1, int(w * ratio))
    ty = torch.randint(-sy, sy + 1, (n, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (n, 1), device=x.device)
    padded = F.pad(x, [sx, sx, sy, sy])
    rows = (torch.arange(h, device=x.device)[None] + sy - ty)[:, :, None]  # (n, h, 1)
    cols = (torch.arange(w, device=x.device)[None] + sx - tx)[:, None, :]  # (n, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the side at a random centre (clipped at the border) per sample."""
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio)), max(1, int(w * ratio))
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    dy = torch.arange(h, device=x.device)[None, :, None] - top
    dx = torch.arange(w, device=x.device)[None, None, :] - left
    keep = (dy < 0) | (dy >= ch) | (dx < 0) | (dx >= cw)
    return x * keep[:, None].to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[str]:
    """The policy names of a comma-separated ``policy``; ValueError names an unknown one."""
    names = [s for s in policy.split(",") if s]
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r} (choose from {', '.join(POLICIES)})")
    return names


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """Apply ``policy`` (comma-separated subset of color, translation, cutout) to (N, C, H, W).

    Returns a tensor of the input's shape, dtype and memory format; differentiable in ``x``.
    """
    names = parse_policy(policy)
    if not names:
        return x
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    y = x.contiguous()  # broadcasts over 3 channels are much faster in NCHW than channels_last
    for name in names:
        y = _OPS[name](y)
    return y.contiguous(memory_format=torch.channels_last) if channels_last else y


class DiffAugment(torch.nn.Module):
    """Module twin of :func:`diff_augment` with a fixed ``policy``."""

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        self.policy = ",".join(parse_policy(policy))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy)
