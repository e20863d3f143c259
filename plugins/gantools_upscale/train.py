"""Training task ``upscale``: SRVGG-compact super-resolution, stage 1 (L1) and stage 2 (GAN).

``--mode fidelity`` trains on clean bicubic LR (Pillow's bicubic, the SR benchmark protocol)
with L1 only. ``--mode photo`` trains on Real-ESRGAN-style degraded LR with L1, a U-Net
discriminator with spectral norm and discriminator feature matching; start it from a fidelity
model with ``--init``. ``--mode distill --teacher NAME|FILE`` trains on the same degraded LR
against a teacher's outputs, computed once into a cache (:mod:`gantools_upscale.distill`): L1 to
the teacher (plus ``--w-hr`` L1 to the real photo) and, with ``--w-adv`` > 0, the discriminator
judging the teacher's outputs as real.
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
        Option("mode", str, "fidelity", "fidelity: L1 on bicubic LR; photo: GAN on degraded LR; distill: "
               "match --teacher on degraded LR", choices=("fidelity", "photo", "distill")),
        Option("patch", int, 32, "LR patch size (HR patch = patch * scale)", min=8, max=256),
        Option("num_feat", int, 64, "generator channels", min=8, max=256),
        Option("num_conv", int, 12, "generator body convolutions", min=1, max=64),
        Option("block", str, "conv", "training form of each convolution: conv, or ecb (edge-oriented "
               "branches collapsed into one 3x3 convolution at export: same inference cost)", choices=("conv", "ecb")),
        Option("scale_aug", float, 0.5, "smallest random HR rescale factor (1 = off)", min=0.2, max=1.0),
        Option("w_l1", float, 1.0, "L1 weight", min=0.0),
        Option("w_adv", float, 0.1, "adversarial weight (photo mode)", min=0.0),
        Option("w_fm", float, 1.0, "D feature-matching weight (photo mode)", min=0.0),
        Option("d_feat", int, 32, "U-Net discriminator channels (photo mode)", min=8, max=128),
        Option("teacher", str, None, "distill mode: the upscaler to match, a model name of upscale or a weights file "
               "(default: none; distill mode needs one)"),
        Option("teacher_patches", int, 2000, "distill mode: degraded patches the teacher upscales (cached)", min=1),
        Option("teacher_cache", str, None, "distill mode: cache folder (default: RUN/teacher-cache)"),
        Option("w_hr", float, 0.0, "distill mode: L1 weight against the real photo", min=0.0),
    )
    defaults = {"batch_size": 32, "lr_g": 5e-4, "betas": (0.9, 0.99), "lr_schedule": "cosine",
                "adv_loss": "ns", "sample_every": 2000, "checkpoint_every": 2000}

    def setup_data(self) -> None:
        s, p = self.opts["scale"], self.opts["patch"]
        if self.opts["mode"] == "distill":
            return self._setup_teacher()
        self.images = ImageSet(self.config.data, min_side=p * s, small="skip", workers=self.config.workers, log=self.log)

    def _cache_patch(self) -> int:
        return max(64, self.opts["patch"])  # LR side of cached patches; training crops lie inside

    def _setup_teacher(self) -> None:
        from pathlib import Path

        from gantools.plugin import OptionError
        from gantools.train.data import step_rng
        from gantools_upscale.degrade import degrade
        from gantools_upscale.distill import TeacherCache, load_teacher, teacher_identity

        spec, s, cp = self.opts["teacher"], self.opts["scale"], self._cache_patch()
        if not spec:
            raise OptionError("--mode distill needs --teacher NAME|FILE (the upscaler to match)")
        teacher = load_teacher(spec, precision="fp32")
        root = self.opts["teacher_cache"] or Path(self.config.out) / "teacher-cache"
        settings = {**teacher_identity(spec, teacher), "scale": s, "lr_patch": cp, "seed": self.config.seed,
                    "degradation": "gantools_upscale.degrade", "scale_aug": self.opts["scale_aug"], "data": self.config.data}
        cache = TeacherCache(root, settings)
        count = self.opts["teacher_patches"]
        cache.check()
        if any(not cache.path(i).exists() for i in range(count)):
            self.images = ImageSet(self.config.data, min_side=cp * s, small="skip", workers=self.config.workers, log=self.log)

            def make_pair(i: int) -> tuple[np.ndarray, np.ndarray]:
                rng = step_rng(self.config.seed, i, stream=7)
                hr = self._hr_patch(rng, cp * s)
                return hr, degrade(hr, s, rng)

            cache.build(count, make_pair, teacher, s, log=self.log)
        self.patches = cache.load(count)

    def arch(self) -> tuple[str, dict[str, Any]]:
        return "srvgg", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": self.opts["num_feat"],
                         "num_conv": self.opts["num_conv"], "upscale": self.opts["scale"], "act_type": "prelu"}

    def build_generator(self) -> torch.nn.Module:
        from gantools.nn import create_arch

        name, cfg = self.arch()
        if self.opts["block"] == "ecb":
            from gantools_upscale.reparam import ECBSRNet

            return ECBSRNet(**{k: v for k, v in cfg.items() if k != "act_type"})
        return create_arch(name, **cfg)

    def export_module(self, generator: torch.nn.Module) -> torch.nn.Module:
        return generator.to_srvgg() if self.opts["block"] == "ecb" else generator

    def build_discriminator(self) -> torch.nn.Module | None:
        if self.opts["mode"] == "fidelity" or (self.opts["mode"] == "distill" and self.opts["w_adv"] == 0):
            return None
        from gantools.nn.discriminators import UNetDiscriminatorSN

        return UNetDiscriminatorSN(3, self.opts["d_feat"])

    # -- data ------------------------------------------------------------------------------
    def _hr_patch(self, rng: np.random.Generator, hr: int | None = None) -> np.ndarray:
        hr = hr or self.opts["patch"] * self.opts["scale"]
        img = self.images[int(rng.integers(len(self.images)))]
        f = float(rng.uniform(self.opts["scale_aug"], 1.0))
        side = min(min(img.shape[:2]), max(hr, int(round(hr / f))))
        y = int(rng.integers(0, img.shape[0] - side + 1))
        x = int(rng.integers(0, img.shape[1] - side + 1))
        crop = img[y : y + side, x : x + side]
        if side != hr:
            crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((hr, hr), Image.BICUBIC))
        return np.ascontiguousarray(random_flip_rot(crop, rng))

    def _distill_item(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lr, target, hr) crop of a cached patch, one random flip/rotation for all three."""
        s, p = self.opts["scale"], self.opts["patch"]
        item = self.patches[int(rng.integers(len(self.patches)))]
        y, x = (int(rng.integers(0, item["lr"].shape[i] - p + 1)) for i in (0, 1))
        flip, rot = rng.random() < 0.5, int(rng.integers(0, 4))

        def view(a: np.ndarray, f: int) -> np.ndarray:
            a = a[y * f : (y + p) * f, x * f : (x + p) * f]
            return np.ascontiguousarray(np.rot90(a[:, ::-1] if flip else a, rot))

        return view(item["lr"], 1), view(item["target"], s), view(item["hr"], s)

    def make_batch(self, step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        s = self.opts["scale"]
        if self.opts["mode"] == "distill":
            lrs, targets, hrs = zip(*(self._distill_item(rng) for _ in range(self.config.batch_size)))
            return {"lr": to_batch_tensor(list(lrs)), "target": to_batch_tensor(list(targets)), "hr": to_batch_tensor(list(hrs))}
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
        real = ctx.cl(batch.get("target", batch["hr"]))  # distill: the teacher's output is "real"
        terms = {"l1": self.opts["w_l1"] * F.l1_loss(fake, real)}
        if self.opts["mode"] == "distill" and self.opts["w_hr"] > 0:
            terms["l1_hr"] = self.opts["w_hr"] * F.l1_loss(fake, ctx.cl(batch["hr"]))
        if ctx.D is not None:
            with ctx.autocast():
                fake_logits, fake_feats = ctx.D(fake, return_features=True)
                with torch.no_grad():
                    _, real_feats = ctx.D(real, return_features=True)
            from gantools.train.losses import feature_matching

            terms["adv"] = self.opts["w_adv"] * ctx.adv_g(fake_logits)
            terms["fm"] = self.opts["w_fm"] * feature_matching(real_feats, fake_feats)
        return terms

    def d_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        hr = ctx.cl(batch.get("target", batch["hr"]))
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
        rows = [up, sr] + ([fixed["target"].float()] if "target" in fixed else []) + [hr.float()]
        return torch.cat(rows, 0)

    def export_metadata(self) -> dict[str, str]:
        meta = {"scale": str(self.opts["scale"]), "mode": self.opts["mode"]}
        return meta | ({"teacher": self.opts["teacher"]} if self.opts["mode"] == "distill" else {})

    def export_options(self) -> dict[str, Any]:
        return {**self.opts, "block": "conv"}  # the export holds the collapsed network: --init trains it as conv
