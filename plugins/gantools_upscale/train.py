"""Training task ``upscale``: SRVGG-compact super-resolution, stage 1 (L1) and stage 2 (GAN).

``--mode fidelity`` trains on clean bicubic LR (Pillow's bicubic, the SR benchmark protocol)
with L1 only. ``--mode photo`` trains on Real-ESRGAN-style degraded LR with L1, a U-Net
discriminator with spectral norm and discriminator feature matching; start it from a fidelity
model with ``--init``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gantools.plugin import Option
from gantools.train.data import ImageSet, random_flip_rot, to_batch_tensor
from gantools.train.task import TASKS, StepContext, TrainTask


def bicubic_down(img: np.ndarray, scale: int) -> np.ndarray:
    """Pillow bicubic downscale by ``scale`` (RGB uint8; size must be divisible)."""
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((w // scale, h // scale), Image.BICUBIC))


@TASKS.decorator("upscale")
class UpscaleTask(TrainTask):
    description = "Super-resolution x2/x4 (SRVGG-compact generator; U-Net SN discriminator in photo mode)"
    options = (
        Option("scale", int, 4, "upscaling factor", choices=(2, 4)),
        Option("mode", str, "fidelity", "fidelity: L1 on bicubic LR; photo: GAN on degraded LR", choices=("fidelity", "photo")),
        Option("patch", int, 32, "LR patch size (HR patch = patch * scale)", min=8, max=256),
        Option("num_feat", int, 64, "generator channels", min=8, max=256),
        Option("num_conv", int, 12, "generator body convolutions", min=1, max=64),
        Option("scale_aug", float, 0.5, "smallest random HR rescale factor (1 = off)", min=0.2, max=1.0),
        Option("w_l1", float, 1.0, "L1 weight", min=0.0),
        Option("w_adv", float, 0.1, "adversarial weight (photo mode)", min=0.0),
        Option("w_fm", float, 1.0, "D feature-matching weight (photo mode)", min=0.0),
        Option("d_feat", int, 32, "U-Net discriminator channels (photo mode)", min=8, max=128),
    )
    defaults = {"batch_size": 32, "lr_g": 5e-4, "betas": (0.9, 0.99), "lr_schedule": "cosine",
                "adv_loss": "ns", "sample_every": 2000, "checkpoint_every": 2000}

    def setup_data(self) -> None:
        s, p = self.opts["scale"], self.opts["patch"]
        self.images = ImageSet(self.config.data, min_side=p * s, small="skip", workers=self.config.workers, log=self.log)

    def arch(self) -> tuple[str, dict[str, Any]]:
        return "srvgg", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": self.opts["num_feat"],
                         "num_conv": self.opts["num_conv"], "upscale": self.opts["scale"], "act_type": "prelu"}

    def build_generator(self) -> torch.nn.Module:
        from gantools.nn import create_arch

        name, cfg = self.arch()
        return create_arch(name, **cfg)

    def build_discriminator(self) -> torch.nn.Module | None:
        if self.opts["mode"] != "photo":
            return None
        from gantools.nn.discriminators import UNetDiscriminatorSN

        return UNetDiscriminatorSN(3, self.opts["d_feat"])

    # -- data ------------------------------------------------------------------------------
    def _hr_patch(self, rng: np.random.Generator) -> np.ndarray:
        s, p = self.opts["scale"], self.opts["patch"]
        hr = p * s
        img = self.images[int(rng.integers(len(self.images)))]
        f = float(rng.uniform(self.opts["scale_aug"], 1.0))
        side = min(min(img.shape[:2]), max(hr, int(round(hr / f))))
        y = int(rng.integers(0, img.shape[0] - side + 1))
        x = int(rng.integers(0, img.shape[1] - side + 1))
        crop = img[y : y + side, x : x + side]
        if side != hr:
            crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((hr, hr), Image.BICUBIC))
        return np.ascontiguousarray(random_flip_rot(crop, rng))

    def make_batch(self, step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        s = self.opts["scale"]
        hrs = [self._hr_patch(rng) for _ in range(self.config.batch_size)]
        if self.opts["mode"] == "photo":
            from gantools_upscale.degrade import degrade

            lrs = [degrade(h, s, rng) for h in hrs]
        else:
            lrs = [bicubic_down(h, s) for h in hrs]
        return {"lr": to_batch_tensor(lrs), "hr": to_batch_tensor(hrs)}

    # -- losses ----------------------------------------------------------------------------
    def generate(self, ctx: StepContext, batch: dict) -> torch.Tensor:
        with ctx.autocast():
            return ctx.G(ctx.cl(batch["lr"])).float()

    def g_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        hr = ctx.cl(batch["hr"])
        terms = {"l1": self.opts["w_l1"] * F.l1_loss(fake, hr)}
        if ctx.D is not None:
            with ctx.autocast():
                fake_logits, fake_feats = ctx.D(fake, return_features=True)
                with torch.no_grad():
                    _, real_feats = ctx.D(hr, return_features=True)
            from gantools.train.losses import feature_matching

            terms["adv"] = self.opts["w_adv"] * ctx.adv_g(fake_logits)
            terms["fm"] = self.opts["w_fm"] * feature_matching(real_feats, fake_feats)
        return terms

    def d_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        hr = ctx.cl(batch["hr"])
        with ctx.autocast():
            real_logits = ctx.D(hr)
            fake_logits = ctx.D(fake)
        terms = {"adv": ctx.adv_d(real_logits, fake_logits)}
        r1 = ctx.r1(lambda x: ctx.D(x), hr)
        if r1 is not None:
            terms["r1"] = r1
        return terms

    def fixed_batch(self) -> dict:
        batch = self.make_batch(-1, np.random.default_rng(12345))
        return {k: v[:8] for k, v in batch.items()}

    def sample(self, generator: torch.nn.Module, fixed: dict) -> torch.Tensor:
        lr, hr = fixed["lr"], fixed["hr"]
        sr = generator(lr).float().clamp(0, 1)
        up = F.interpolate(lr, scale_factor=self.opts["scale"], mode="bicubic", align_corners=False).clamp(0, 1)
        return torch.cat([up, sr, hr.float()], 0)

    def export_metadata(self) -> dict[str, str]:
        return {"scale": str(self.opts["scale"]), "mode": self.opts["mode"]}
