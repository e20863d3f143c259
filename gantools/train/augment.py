"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for data-efficient GAN training.

The same random policy is applied to real and fake batches before the discriminator, so that D
cannot tell them apart by augmentation and G receives gradients through it. Built from kornia's
differentiable augmentation modules; each sample of a batch gets its own random parameters.
"""

from __future__ import annotations

import torch
from kornia import augmentation as K

POLICIES = ("color", "translation", "cutout")


class DiffAugment(torch.nn.Module):
    """Apply ``policy`` (comma-separated subset of color, translation, cutout) to (N, C, H, W)."""

    def __init__(self, policy: str = "color,translation,cutout", p: float = 1.0) -> None:
        super().__init__()
        names = [s for s in policy.split(",") if s]
        bad = [n for n in names if n not in POLICIES]
        if bad:
            raise ValueError(f"unknown augmentation {bad[0]!r} (choose from {', '.join(POLICIES)})")
        self.policy = ",".join(names)
        ops: list[torch.nn.Module] = []
        if "color" in names:
            ops.append(K.ColorJiggle(brightness=0.25, contrast=0.5, saturation=1.0, p=p))
        if "translation" in names:
            ops.append(K.RandomAffine(degrees=0.0, translate=(0.125, 0.125), padding_mode="zeros", p=p))
        if "cutout" in names:
            ops.append(K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=p))
        self.ops = torch.nn.Sequential(*ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.ops):
            return x
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return self.ops(x.float()).to(dtype)


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """Functional twin of :class:`DiffAugment`."""
    return DiffAugment(policy)(x)
