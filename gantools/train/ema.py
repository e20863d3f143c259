"""Exponential moving average of generator weights, with a decay that ramps up.

A fixed decay of 0.999 leaves the average at ~90 % of the random initialisation after 100 steps,
so the effective decay is ``min(decay, (1 + step) / (10 + step))``: early averages follow the
weights closely and the horizon grows with training.
"""

from __future__ import annotations

import copy

import torch


def ema_decay(step: int, decay: float) -> float:
    """Decay used for the update after ``step`` optimiser steps (0-based)."""
    return min(decay, (1.0 + step) / (10.0 + step))


class EMA:
    """Holds ``shadow``, a frozen copy of ``model`` updated as ``s = d*s + (1-d)*w``.

    Buffers (e.g. normalisation statistics) are copied, not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> float:
        d = ema_decay(step, self.decay)
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach().to(s.dtype), 1.0 - d)
        for s, b in zip(self.shadow.buffers(), model.buffers()):
            s.copy_(b)
        return d

    def state_dict(self) -> dict:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state)
