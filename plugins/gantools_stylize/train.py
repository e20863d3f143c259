"""Training task ``stylize``: learn a photo -> painting generator adversarially.

Two modes (``--mode``; by default ``painting`` for up to 5 style images, else ``domain``):

* ``painting``: a PatchGAN discriminator with spectral norm sees crops of the style image(s) at
  several scales against crops of G(photo). Content is kept by losses that need no pretrained
  network (see :mod:`.losses`): L1 on blurred, normalised luminance, Sobel-gradient L1 and
  matching of D's feature statistics; style is also pulled in directly by a sliced Wasserstein
  distance between output and style-crop patches (``--w-patch``, both modes). ``--cycle`` adds a painting -> photo generator and a cycle
  loss (G is then a :class:`~.pair.GeneratorPair`).
* ``domain``: CycleGAN-style unpaired training between the content photos and a folder of
  paintings: two generators (a ``GeneratorPair``), two discriminators (a
  ``DiscriminatorPair``), adversarial + cycle + identity losses.

The exported generator always maps photo -> painting: a ``stylenet`` in painting mode, or a
``stylize_pair`` whose forward is its ``ab`` generator (the plugin and
:func:`~.pair.slim_export` take the ``ab`` half). Export metadata: ``style``, ``source``
(style file names, or the folder), ``mode``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantools_stylize import losses as L
from gantools_stylize.data import StyleImages, center_square, content_images, label, scaled_crop
from gantools_stylize.split import HOLDOUT_EVERY, held_out_names
from gantools.nn.pair import PAIR_ARCH, DiscriminatorPair, GeneratorPair
from gantools.plugin import Option, OptionError
from gantools.train.data import DataError, scan, to_batch_tensor
from gantools.train.task import TASKS, StepContext, TrainTask

MODES = ("painting", "domain")
#: up to this many style images, --mode defaults to painting
PAINTING_MAX_IMAGES = 5
SAMPLE_PHOTOS = 8


@TASKS.decorator("stylize")
class StylizeTask(TrainTask):
    description = "Style transfer photo -> painting (StyleNet): a few paintings, or a folder of them CycleGAN-style"
    data_flags = {
        "style_images": "style image file(s) or folder (repeatable)",
        "content": "content photo folder(s) (repeatable; --data adds more)",
    }
    options = (
        Option("mode", str, None, "painting (few style images) or domain (a folder; CycleGAN-style) "
               f"[auto: painting for <= {PAINTING_MAX_IMAGES} images]", choices=MODES),
        Option("style_name", str, None, "name stored in the export (default: style file or folder name)"),
        Option("crop", int, 128, "training crop size (px, multiple of 16)", min=32, max=512),
        Option("style_size", int, 512, "painting mode: style images larger than this (long side, px) are downscaled to it",
               min=64, max=4096),
        Option("scale_range", float, 2.0, "style/content crops cover windows of crop..crop*scale_range px",
               min=1.0, max=8.0),
        Option("channels", int, 32, "generator base channels", min=8, max=128),
        Option("blocks", int, 5, "generator residual blocks", min=1, max=16),
        Option("d_channels", int, 64, "discriminator base channels", min=8, max=256),
        Option("d_layers", int, 3, "discriminator stride-2 layers (3: 70 px patches)", min=1, max=5),
        Option("cycle", bool, False, "painting mode: also train a painting -> photo generator with a cycle loss"),
        Option("w_adv", float, 1.0, "adversarial weight", min=0.0),
        Option("w_content", float, 1.0, "blurred-luminance content weight (painting mode)", min=0.0),
        Option("w_edge", float, 0.25, "luminance-gradient content weight (painting mode)", min=0.0),
        Option("content_sigma", float, 2.0, "Gaussian blur (px) before the content losses", min=0.0, max=16.0),
        Option("w_patch", float, 5.0, "sliced Wasserstein weight: 8x8 RGB and band-pass patches of G(photo) vs the "
               "style crops", min=0.0),
        Option("w_fm", float, 10.0, "D feature-statistics matching weight", min=0.0),
        Option("w_cycle", float, 10.0, "cycle-consistency weight (domain mode, or --cycle)", min=0.0),
        Option("w_identity", float, 5.0, "identity weight (domain mode)", min=0.0),
        Option("sample_size", int, 256, "side of the sample-grid photos (multiple of 4)", min=32, max=1024),
        Option("holdout", int, HOLDOUT_EVERY, "hold back about 1 in N content photos (by file name; see "
               "gantools_stylize.split) and Set5/Set14 for bench/style.py; 0 = train on every photo", min=0),
    )
    defaults = {"batch_size": 8, "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.99), "adv_loss": "lsgan",
                "augment": "translation,cutout", "sample_every": 250, "checkpoint_every": 1000,
                "log_every": 10, "ema_decay": 0.999}

    def __init__(self, config: Any, log: Any = print) -> None:
        super().__init__(config, log)
        crop, size = self.opts["crop"], self.opts["sample_size"]
        if crop % 16:
            raise OptionError(f"option --crop: {crop} must be a multiple of 16")
        if size % 4:
            raise OptionError(f"option --sample-size: {size} must be a multiple of 4")
        self.style_paths = [str(p) for p in config.options.get("style_images") or []]
        self.content_paths = [str(p) for p in (config.options.get("content") or [])] + list(config.data)
        if not self.style_paths:
            raise DataError("no style images: give --style-images PAINTING (a file or a folder)")
        self.mode = self.opts["mode"] or self._auto_mode()

    def _auto_mode(self) -> str:
        n = len(scan(self.style_paths).items)
        return "painting" if n <= PAINTING_MAX_IMAGES else "domain"

    @property
    def paired(self) -> bool:
        """True when G is a :class:`GeneratorPair` (domain mode, or painting mode with --cycle)."""
        return self.mode == "domain" or bool(self.opts["cycle"])

    # -- data ------------------------------------------------------------------------------
    def setup_data(self) -> None:
        crop, w = self.opts["crop"], self.config.workers
        style_size = self.opts["style_size"] if self.mode == "painting" else None
        self.style = StyleImages(self.style_paths, crop=crop, style_size=style_size, workers=w, log=self.log)
        held = held_out_names((it.name for it in scan(self.content_paths).items), self.opts["holdout"])
        self.content = content_images(self.content_paths, crop=crop, exclude=held.__contains__, workers=w, log=self.log)
        kept = f", {len(held)} held out for bench/style.py (--holdout)" if held else ""
        self.log(f"stylize: {self.mode} mode, {len(self.style)} style image(s), {len(self.content)} content photos{kept}")

    def make_batch(self, step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        crop, sr, n = self.opts["crop"], self.opts["scale_range"], self.config.batch_size
        photos = [scaled_crop(self.content[int(rng.integers(len(self.content)))], rng, crop, crop * sr)
                  for _ in range(n)]
        styles = [self.style.crop(rng, crop, sr) for _ in range(n)]
        return {"content": to_batch_tensor(photos), "style": to_batch_tensor(styles)}

    def fixed_batch(self) -> dict:
        size = self.opts["sample_size"]
        idx = np.linspace(0, len(self.content) - 1, min(SAMPLE_PHOTOS, len(self.content))).round().astype(int)
        return {"content": to_batch_tensor([center_square(self.content[int(i)], size) for i in idx])}

    # -- models ----------------------------------------------------------------------------
    def _g_config(self) -> dict[str, Any]:
        return {"base_channels": self.opts["channels"], "n_res": self.opts["blocks"], "norm": "instance",
                "in_channels": 3, "out_channels": 3}

    def arch(self) -> tuple[str, dict[str, Any]]:
        if self.paired:
            return PAIR_ARCH, {"generator": "stylenet", "generator_config": self._g_config(), "reverse": True}
        return "stylenet", self._g_config()

    def build_generator(self) -> torch.nn.Module:
        from gantools.nn import create_arch

        name, cfg = self.arch()
        return create_arch(name, **cfg)

    def _patch_d(self) -> torch.nn.Module:
        from gantools.nn.discriminators import PatchDiscriminator

        return PatchDiscriminator(3, self.opts["d_channels"], self.opts["d_layers"], spectral=True)

    def build_discriminator(self) -> torch.nn.Module:
        return DiscriminatorPair(self._patch_d(), self._patch_d() if self.mode == "domain" else None)

    # -- steps -----------------------------------------------------------------------------
    def generate(self, ctx: StepContext, batch: dict) -> dict[str, torch.Tensor]:
        photo = ctx.cl(batch["content"])
        out: dict[str, torch.Tensor] = {}
        with ctx.autocast():
            if not self.paired:
                out["fake"] = ctx.G(photo).float()
                return out
            G: GeneratorPair = ctx.G
            out["fake"] = G.ab(photo).float()
            out["rec_photo"] = G.ba(out["fake"]).float()
            if self.mode == "domain":
                painting = ctx.cl(batch["style"])
                out["fake_photo"] = G.ba(painting).float()
                out["rec_painting"] = G.ab(out["fake_photo"]).float()
        return out

    def _d_terms(self, ctx: StepContext, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, key: str) -> dict:
        with ctx.autocast():
            real_logits = D(ctx.augment(real))
            fake_logits = D(ctx.augment(fake))
        terms = {key: ctx.adv_d(real_logits, fake_logits)}
        r1 = ctx.r1(lambda x: D(ctx.augment(x)), real)
        if r1 is not None:
            terms[f"{key}_r1"] = r1
        return terms

    def d_losses(self, ctx: StepContext, batch: dict, fake: dict) -> dict[str, torch.Tensor]:
        Dp: DiscriminatorPair = ctx.D
        terms = self._d_terms(ctx, Dp.painting, ctx.cl(batch["style"]), fake["fake"], "adv")
        if self.mode == "domain":
            terms.update(self._d_terms(ctx, Dp.photo, ctx.cl(batch["content"]), fake["fake_photo"], "adv_photo"))
        return terms

    def _g_adv(self, ctx: StepContext, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(adversarial term, feature-statistics term) for ``fake`` against ``real`` under ``D``."""
        use_fm = self.opts["w_fm"] > 0
        with ctx.autocast():
            logits, fake_feats = D(ctx.augment(fake), return_features=True)
            if use_fm:
                with torch.no_grad():
                    _, real_feats = D(ctx.augment(real), return_features=True)
        adv = ctx.adv_g(logits)
        return adv, (L.feature_stats_loss(real_feats, fake_feats) if use_fm else adv.new_zeros(()))

    def g_losses(self, ctx: StepContext, batch: dict, fake: dict) -> dict[str, torch.Tensor]:
        o = self.opts
        photo, painting = ctx.cl(batch["content"]), ctx.cl(batch["style"])
        Dp: DiscriminatorPair = ctx.D
        adv, fm = self._g_adv(ctx, Dp.painting, painting, fake["fake"])
        terms = {"adv": o["w_adv"] * adv}
        if o["w_fm"] > 0:
            terms["fm"] = o["w_fm"] * fm
        if o["w_patch"] > 0:
            terms["patch"] = o["w_patch"] * L.patch_swd_loss(fake["fake"], painting)
        if self.mode == "painting":
            if o["w_content"] > 0:
                terms["content"] = o["w_content"] * L.content_loss(fake["fake"], photo, o["content_sigma"])
            if o["w_edge"] > 0:
                terms["edge"] = o["w_edge"] * L.edge_loss(fake["fake"], photo, o["content_sigma"])
            if self.paired and o["w_cycle"] > 0:
                terms["cycle"] = o["w_cycle"] * L.cycle_loss(fake["rec_photo"], photo)
            return terms
        adv_p, fm_p = self._g_adv(ctx, Dp.photo, photo, fake["fake_photo"])
        terms["adv_photo"] = o["w_adv"] * adv_p
        if o["w_fm"] > 0:
            terms["fm_photo"] = o["w_fm"] * fm_p
        terms["cycle"] = o["w_cycle"] * (L.cycle_loss(fake["rec_photo"], photo)
                                         + L.cycle_loss(fake["rec_painting"], painting))
        if o["w_identity"] > 0:
            G: GeneratorPair = ctx.G
            with ctx.autocast():
                same_painting = G.ab(painting).float()
                same_photo = G.ba(photo).float()
            terms["identity"] = o["w_identity"] * (L.cycle_loss(same_painting, painting)
                                                   + L.cycle_loss(same_photo, photo))
        return terms

    # -- samples and export ----------------------------------------------------------------
    def sample(self, generator: torch.nn.Module, fixed: dict) -> torch.Tensor:
        """Pairs (photo, stylised) interleaved: 8 photos give a 4-wide grid of 2 pairs per row."""
        photo = fixed["content"]
        out = generator(photo).float().clamp(0, 1)
        return torch.stack([photo.float(), out], 1).flatten(0, 1)

    def style_name(self) -> str:
        if self.opts["style_name"]:
            return self.opts["style_name"]
        first = Path(self.style_paths[0])
        return first.stem if first.is_file() else (first.name or "style")

    def export_metadata(self) -> dict[str, str]:
        names = getattr(self, "style", None)
        if self.mode == "painting" and names is not None:
            source = ", ".join(names.names)
        else:
            source = label(self.style_paths)
        return {"style": self.style_name(), "source": source, "mode": self.mode,
                "crop": str(self.opts["crop"]), "style_size": str(self.opts["style_size"])}

    def dataset_name(self) -> str:
        return f"style: {label(self.style_paths)}; content: {label(self.content_paths)}"
