"""Adversarial losses and regularisers (kornia-style: small functions on logits tensors).

All functions take raw discriminator logits (any shape) and return a scalar mean loss in fp32.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def d_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss for ``kind`` in ``ns`` (non-saturating / BCE), ``hinge``, ``lsgan``."""
    real, fake = real.float(), fake.float()
    if kind == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1.0).pow(2).mean() + fake.pow(2).mean())
    raise ValueError(f"unknown adversarial loss {kind!r} (ns, hinge, lsgan)")


def g_loss(kind: str, fake: Tensor) -> Tensor:
    """Generator loss: ``ns`` = softplus(-D(G(z))), ``hinge`` = -D(G(z)), ``lsgan`` = (D-1)^2/2."""
    fake = fake.float()
    if kind == "ns":
        return F.softplus(-fake).mean()
    if kind == "hinge":
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1.0).pow(2).mean()
    raise ValueError(f"unknown adversarial loss {kind!r} (ns, hinge, lsgan)")


def r1_penalty(d_fn: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 = E[ ||grad_x D(x)||^2 ] at real samples (Mescheder et al. 2018), unscaled.

    ``d_fn`` maps a batch to logits; gradients are taken with ``create_graph=True`` so the
    penalty can be back-propagated into D's weights. Callers multiply by ``gamma / 2`` and,
    for lazy regularisation, by the interval.
    """
    x = real.detach().float().requires_grad_(True)
    out = d_fn(x).float()
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def feature_matching(real_feats: Sequence[Tensor], fake_feats: Sequence[Tensor]) -> Tensor:
    """Mean L1 distance between D's intermediate features of real (detached) and fake inputs."""
    if not real_feats:
        raise ValueError("feature matching needs at least one feature map")
    total = sum(F.l1_loss(f.float(), r.detach().float()) for r, f in zip(real_feats, fake_feats))
    return total / len(real_feats)
