"""A tiny GAN task for engine tests: a 2-D mixture of 8 Gaussians on a circle."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from gantools.plugin import Option
from gantools.train.task import TASKS, StepContext, TrainTask

CENTERS = np.array([[2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)] for k in range(8)], np.float32)
STD = 0.05


def mlp(inp: int, out: int, width: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(inp, width), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(width, width), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(width, out),
    )


def modes_covered(points: np.ndarray, min_share: float = 0.02) -> int:
    """Modes that receive at least ``min_share`` of points within 4 std of their centre."""
    d = np.linalg.norm(points[:, None, :] - CENTERS[None], axis=2)
    nearest, dist = d.argmin(1), d.min(1)
    ok = dist < 4 * STD * 2
    counts = np.bincount(nearest[ok], minlength=8)
    return int((counts >= min_share * len(points)).sum())


@TASKS.decorator("toy")
class ToyTask(TrainTask):
    options = (Option("width", int, 128, "MLP width"),)
    defaults = {"batch_size": 256, "lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.5, 0.9), "precision": "fp32",
                "sample_every": 10_000, "checkpoint_every": 10_000, "log_every": 50}

    def setup_data(self) -> None:
        pass

    def arch(self) -> tuple[str, dict[str, Any]]:
        return "toy-mlp", {"width": self.opts["width"]}

    def build_generator(self) -> torch.nn.Module:
        return mlp(8, 2, self.opts["width"])

    def build_discriminator(self) -> torch.nn.Module:
        return mlp(2, 1, self.opts["width"])

    def make_batch(self, step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        n = self.config.batch_size
        k = rng.integers(0, 8, n)
        real = CENTERS[k] + rng.normal(0, STD, (n, 2)).astype(np.float32)
        z = rng.normal(0, 1, (n, 8)).astype(np.float32)
        return {"real": torch.from_numpy(real), "z": torch.from_numpy(z)}

    def generate(self, ctx: StepContext, batch: dict) -> torch.Tensor:
        return ctx.G(batch["z"])

    def d_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {"adv": ctx.adv_d(ctx.D(batch["real"]), ctx.D(fake))}
        r1 = ctx.r1(ctx.D, batch["real"])
        if r1 is not None:
            terms["r1"] = r1
        return terms

    def g_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"adv": ctx.adv_g(ctx.D(fake))}

    def sample(self, generator: torch.nn.Module, fixed: dict) -> torch.Tensor:
        return torch.zeros(1, 3, 4, 4)
