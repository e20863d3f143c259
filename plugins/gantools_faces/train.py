"""Training task ``faces``: the conditional FaceGAN (age group x gender) on aligned face crops.

Data: image folders or zip shards (``../shared/data/faces/*.zip`` are read in place), each
image centre-cropped to a square and resized to the model resolution once, at load (INTER_AREA),
so the in-memory cache is small (23.7k faces at 64 px: 290 MB). Labels come from UTKFace file
names (:mod:`.labels`); images whose name lacks a field keep the image, with that label unknown.

Held-out set: the last ``--holdout`` (default 1,000) images of the shard named
``--holdout-shard`` (default ``utkface-128-03.zip``), by sorted member name, are not trained
on (the benchmark's real faces). The rule is stored in the export metadata.

One step: G renders ``z`` with labels drawn from the training label distribution; D sees
DiffAugment(real) and DiffAugment(fake) in one batch, with the projection term for each label
type masked where the real image's label is unknown (the fake's mask copies the real's, so the
presence of a label term never tells real from fake); lazy R1 on un-augmented reals; G's loss
is the adversarial loss through DiffAugment. The engine adds EMA, checkpoints and the export;
``mapping.w_avg`` (truncation centre) is tracked in G's forward during training.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantools_faces.labels import (
    AGE_GROUPS, GENDERS, NUM_AGES, NUM_GENDERS, LabelDistribution, label_arrays,
)
from gantools.plugin import Option
from gantools.train.data import IMAGE_EXTS, DataError, ImageSet, to_batch_tensor
from gantools.train.task import TASKS, StepContext, TrainTask

#: Labels of the sample grid's columns: (age group, gender) - 4 ages x 2 genders.
SAMPLE_LABELS = tuple((a, g) for a in (1, 3, 5, 7) for g in (0, 1))
SAMPLE_SEEDS = tuple(range(8))


def square_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``img`` (HxWxC) to a square and resize it to ``size`` (INTER_AREA down, cubic up)."""
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    img = img[y : y + s, x : x + s]
    if s != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def holdout_names(paths: list[str], shard: str, count: int) -> set[str]:
    """Member names of the last ``count`` images (sorted by name) of every zip called ``shard``.

    Zips are looked for among ``paths`` and, for folders, inside them (recursively). Names are
    member names as :class:`gantools.train.data.ImageSet` reports them.
    """
    if count <= 0 or not shard:
        return set()
    zips: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            zips += [z for z in p.rglob(shard) if z.is_file()]
        elif p.name == shard:
            zips.append(p)
    held: set[str] = set()
    for z in zips:
        try:
            with zipfile.ZipFile(z) as zf:
                names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXTS)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{z}: not a readable zip archive ({exc})") from None
        held.update(names[-count:])
    return held


@TASKS.decorator("faces")
class FacesTask(TrainTask):
    description = "Conditional face generator (age group, gender from UTKFace names); FaceGAN, 64x64 by default"
    options = (
        Option("resolution", int, 64, "generator resolution", choices=(32, 64, 128)),
        Option("channel_base", int, 1024, "G channels at resolution r = min(base / r, max)", min=64, max=65536),
        Option("channel_max", int, 128, "G channel cap", min=8, max=1024),
        Option("d_channel_base", int, 1024, "D channels at resolution r = min(base / r, max)", min=64, max=65536),
        Option("d_channel_max", int, 128, "D channel cap", min=8, max=1024),
        Option("z_dim", int, 128, "latent size", min=8, max=1024),
        Option("w_dim", int, 256, "intermediate latent (style) size", min=8, max=1024),
        Option("mapping_layers", int, 4, "mapping network layers", min=1, max=8),
        Option("noise", bool, True, "per-layer noise inputs in G"),
        Option("up_order", str, "post", "G upsampling: post = conv at low res then resize (fast), pre = resize then conv",
               choices=("post", "pre")),
        Option("mbstd", int, 4, "minibatch-stddev group size in D (0 = off)", min=0, max=64),
        Option("spectral_norm", bool, False, "spectral norm on D's layers"),
        Option("mirror", bool, True, "random horizontal flips of real images"),
        Option("holdout", int, 1000, "images held back from the hold-out shard (0 = none)", min=0),
        Option("holdout_shard", str, "utkface-128-03.zip", "zip whose last --holdout names are held back"),
    )
    defaults = {
        # batch 64: 15-20 % more images/s than 32 on this CPU; EMA half-life ~10k images; R1 gamma
        # is for D inputs in [0, 1] (4x the StyleGAN convention for [-1, 1]): 0.1 ~ 0.025 there.
        "batch_size": 64, "lr_g": 0.0025, "lr_d": 0.0025, "betas": (0.0, 0.99), "adv_loss": "ns",
        "r1_gamma": 0.1, "r1_every": 16, "ema_decay": 0.995, "augment": "color,translation,cutout",
        "log_every": 20, "sample_every": 500, "checkpoint_every": 1000,
    }

    # -- data ----------------------------------------------------------------------------
    def setup_data(self) -> None:
        res = self.opts["resolution"]
        self.held = holdout_names(self.config.data, self.opts["holdout_shard"], self.opts["holdout"])
        self.images = ImageSet(
            self.config.data, transform=lambda im: square_resize(im, res), exclude=self.held.__contains__,
            workers=self.config.workers, log=self.log,
        )
        self.ages, self.genders = label_arrays(self.images.names)
        self.labels = LabelDistribution.from_labels(self.ages, self.genders)
        self._cdf = np.cumsum(self.labels.counts.ravel()) / self.labels.counts.sum()
        unknown = int(((self.ages < 0) | (self.genders < 0)).sum())
        msg = f"faces: {len(self.images)} training images at {res} px"
        if self.held:
            msg += f", {len(self.held)} held back ({self.opts['holdout_shard']})"
        if unknown:
            msg += f", {unknown} with an incomplete label"
        self.log(msg)

    def make_batch(self, step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        n = self.config.batch_size
        idx = rng.integers(0, len(self.images), n)
        flips = rng.random(n) < 0.5
        imgs = [self.images[i][:, ::-1] if (f and self.opts["mirror"]) else self.images[i] for i, f in zip(idx, flips)]
        k = np.minimum(np.searchsorted(self._cdf, rng.random(n), side="right"), self._cdf.size - 1)
        fake_age, fake_gender = np.divmod(k, NUM_GENDERS)
        z = rng.standard_normal((n, self.opts["z_dim"])).astype(np.float32)
        real_age, real_gender = self.ages[idx], self.genders[idx]
        t = torch.from_numpy
        return {
            "real": to_batch_tensor(imgs),
            "real_age": t(real_age), "real_gender": t(real_gender),
            "z": t(z), "fake_age": t(fake_age.astype(np.int64)), "fake_gender": t(fake_gender.astype(np.int64)),
            # D's view of the fake labels: masked where the paired real label is unknown
            "d_fake_age": t(np.where(real_age < 0, -1, fake_age).astype(np.int64)),
            "d_fake_gender": t(np.where(real_gender < 0, -1, fake_gender).astype(np.int64)),
        }

    # -- models --------------------------------------------------------------------------
    def arch(self) -> tuple[str, dict[str, Any]]:
        """``facegan`` and its complete config (defaults filled in, so exports never depend on them)."""
        import gantools.nn.facegan  # noqa: F401  (registers "facegan")
        from gantools.nn.registry import full_config

        o = self.opts
        return "facegan", full_config("facegan", {
            "resolution": o["resolution"], "z_dim": o["z_dim"], "w_dim": o["w_dim"],
            "mapping_layers": o["mapping_layers"], "channel_base": o["channel_base"],
            "channel_max": o["channel_max"], "num_ages": NUM_AGES, "num_genders": NUM_GENDERS,
            "noise": o["noise"], "up_order": o["up_order"],
        })

    def build_generator(self) -> torch.nn.Module:
        import gantools.nn.facegan  # noqa: F401  (registers "facegan")
        from gantools.nn.registry import create_arch

        name, cfg = self.arch()
        return create_arch(name, **cfg)

    def build_discriminator(self) -> torch.nn.Module:
        from gantools.nn.facegan import FaceDiscriminator

        o = self.opts
        return FaceDiscriminator(o["resolution"], o["d_channel_base"], o["d_channel_max"], NUM_AGES, NUM_GENDERS,
                                 mbstd_group=o["mbstd"], spectral_norm=o["spectral_norm"], stem="s2")

    # -- losses --------------------------------------------------------------------------
    def generate(self, ctx: StepContext, batch: dict) -> torch.Tensor:
        with ctx.autocast():
            return ctx.G(ctx.cl(batch["z"]), ctx.cl(batch["fake_age"]), ctx.cl(batch["fake_gender"])).float()

    def d_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        real = ctx.cl(batch["real"])
        n = real.shape[0]
        # 3-channel images: augmentation runs ~17 % faster on NCHW than on channels_last tensors
        x = ctx.cl(ctx.augment(torch.cat([real, fake.float()]).contiguous()))
        ages = ctx.cl(torch.cat([batch["real_age"], batch["d_fake_age"]]))
        genders = ctx.cl(torch.cat([batch["real_gender"], batch["d_fake_gender"]]))
        with ctx.autocast():
            logits = ctx.D(x, ages, genders).float()
        terms = {"adv": ctx.adv_d(logits[:n], logits[n:])}
        ra, rg = ctx.cl(batch["real_age"]), ctx.cl(batch["real_gender"])
        r1 = ctx.r1(lambda t: ctx.D(t, ra, rg), real)
        if r1 is not None:
            terms["r1"] = r1
        return terms

    def g_losses(self, ctx: StepContext, batch: dict, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ctx.cl(ctx.augment(fake.contiguous()))
        with ctx.autocast():
            logits = ctx.D(x, ctx.cl(batch["d_fake_age"]), ctx.cl(batch["d_fake_gender"])).float()
        return {"adv": ctx.adv_g(logits)}

    # -- samples and export ----------------------------------------------------------------
    def fixed_batch(self) -> dict:
        """Rows = seeds 0..7 (the same z as ``gantools generate faces --seed k``), columns = labels."""
        zs = [np.random.default_rng(s).standard_normal(self.opts["z_dim"]).astype(np.float32) for s in SAMPLE_SEEDS]
        z = np.stack([zs[r] for r in range(len(SAMPLE_SEEDS)) for _ in SAMPLE_LABELS])
        ages = [a for _ in SAMPLE_SEEDS for a, _g in SAMPLE_LABELS]
        genders = [g for _ in SAMPLE_SEEDS for _a, g in SAMPLE_LABELS]
        return {"z": torch.from_numpy(z), "age": torch.tensor(ages), "gender": torch.tensor(genders)}

    def sample(self, generator: torch.nn.Module, fixed: dict) -> torch.Tensor:
        dev = next(generator.parameters()).device
        out = generator(fixed["z"].to(dev), fixed["age"].to(dev), fixed["gender"].to(dev))
        return out.float().clamp(0, 1)

    def export_metadata(self) -> dict[str, str]:
        o = self.opts
        rule = {"shard": o["holdout_shard"], "count": o["holdout"], "held": len(getattr(self, "held", ())),
                "rule": f"last {o['holdout']} image names of {o['holdout_shard']} in sorted order"}
        labels = getattr(self, "labels", None) or LabelDistribution.uniform()
        return {
            "resolution": str(o["resolution"]), "z_dim": str(o["z_dim"]),
            "label_distribution": labels.to_json(), "holdout": json.dumps(rule),
            "age_groups": json.dumps(list(AGE_GROUPS)), "genders": json.dumps(list(GENDERS)),
            "num_ages": str(NUM_AGES),
        }
