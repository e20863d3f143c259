"""Built-in plugin ``stylize``: photo -> painting with GAN-trained feed-forward generators.

``--style NAME`` runs a shipped style (``weights/manifest.toml``); ``--weights FILE`` replaces it
with a ``gantools train stylize`` export, a CycleGAN/pix2pix ResnetGenerator checkpoint
(``latest_net_G*.pth``) or AnimeGANv2 generator weights. ``--strength`` blends the result with
the input, ``--preserve-color`` keeps the input's chroma (YCbCr) and stylises luminance only,
``--size`` processes at a chosen long side and returns the input's size. Alpha is carried
through unchanged.

Large images are processed in tiles. Instance-norm generators (ours, CycleGAN) then normalise
every tile with statistics computed once on a downscaled copy of the whole image, and tiles
overlap by the network's receptive field, so there are no seams or tone jumps. AnimeGANv2
(GroupNorm, not tileable) always runs on the whole image.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gantools_stylize.loader import style_summary
from gantools.plugin import Descriptor, Option
from gantools.registry import register_plugin
from gantools.torch_plugin import TorchPlugin

_STYLES = style_summary()


@register_plugin
class Stylize(TorchPlugin):
    """See the module docstring; options are validated (and weights resolved) at construction."""

    descriptor = Descriptor(
        name="stylize",
        task="stylize",
        description="Style transfer: photos into paintings (shipped styles or your own trained ones)",
        scale=1,
        channels=(1, 3, 4),
        tiling=True,
        options=(
            Option("style", str, None, f"shipped style: {_STYLES}"),
            Option("strength", float, 1.0, "blend with the input: 0 = input, 1 = fully stylised", min=0.0, max=1.0),
            Option("preserve_color", bool, False, "keep the input's colours (chroma), stylise luminance only"),
            Option("size", int, None, "process at this long side (px), return at the input size [default: input size]",
                   min=16, max=16384),
        ),
        weights=_STYLES,
        train_task="gantools_stylize.train:StylizeTask",
    )

    #: feather (input px) of the blend between tiles; overlap = receptive radius + feather / 2
    feather: ClassVar[int] = 16
    #: the downscaled whole image used for tile statistics has at most this many pixels
    stats_pixels: ClassVar[int] = 2 * 1024 * 1024

    def check_options(self) -> None:
        """Resolve the weights now, so a bad --style/--weights fails before any image is read."""
        from gantools_stylize.loader import resolve

        self._weights = resolve(self.options["style"], self.runtime.weights)

    # -- model -----------------------------------------------------------------------------
    def build(self) -> Any:
        from gantools_stylize.loader import receptive_radius
        from gantools.nn import load_arch

        w = self._weights
        try:
            model, info = load_arch(w.state, w.arch, w.config)
        except ValueError as exc:
            raise ValueError(f"{w.label}: {exc}") from None
        self.info = info
        self.size_multiple = info.size_multiple
        self.min_size = info.min_size
        radius = receptive_radius(w.arch, info.config)
        self.tile_overlap = -(-(radius + self.feather // 2) // info.size_multiple) * info.size_multiple
        return model

    @property
    def tileable(self) -> bool:
        """Whether tiles with frozen statistics reproduce the whole-image result."""
        from gantools.nn import TileableInstanceNorm

        if self.model is None or not self.info.tiling:
            return False
        return any(isinstance(m, TileableInstanceNorm) for m in self.model.modules())

    def precision_for(self, image: np.ndarray) -> str:
        """The runtime precision, but fp32 for networks not safe in bf16 (CycleGAN, AnimeGANv2)."""
        self.ensure_setup()
        return super().precision_for(image) if self.info.bf16 else "fp32"

    # -- processing ------------------------------------------------------------------------
    def process(self, image: np.ndarray) -> np.ndarray:
        self.check_image(image)
        if self.options["strength"] == 0.0:
            return image.copy()
        return super().process(image)

    def iter_network(self, x: Any, precision: str, tile: int | None = None) -> Any:
        """Yield the whole result as one band ``(0, y)`` (see :meth:`stylise_image`)."""
        yield 0, self.stylise_image(x, precision, tile)

    def run_network(self, x: Any, precision: str) -> Any:
        return self.stylise_image(x, precision)

    def stylise_image(self, x: Any, precision: str, tile: int | None = None) -> Any:
        """Resize ``x`` (1, 3, H, W) to --size, stylise (tiled if needed), resize back, keep the
        input's colour if asked, blend by --strength. Returns (1, 3, H, W) in [0, 1]."""
        from gantools_stylize.color import blend, preserve_color

        x = x.to(self.device).float()
        h, w = x.shape[-2:]
        work = x
        size = self.options["size"]
        if size and size != max(h, w):
            f = size / max(h, w)
            work = _resize(x, max(1, round(h * f)), max(1, round(w * f)))
        y = self.stylise(work, precision, tile).float()
        if tuple(y.shape[-2:]) != (h, w):
            y = _resize(y, h, w)
        y = y.clamp(0, 1)
        if self.options["preserve_color"]:
            y = preserve_color(y, x)
        return blend(y, x, self.options["strength"]).clamp(0, 1)

    def stylise(self, x: Any, precision: str, tile: int | None = None) -> Any:
        """The network on ``x`` (1, 3, H, W): whole, or tiled with frozen norm statistics.

        ``tile`` None means the runtime's ``--tile`` or, unset, :func:`gantools.tiling.auto_tile`;
        tiles are at least twice the overlap. Networks that cannot tile run whole.
        """
        import torch

        from gantools.device import autocast
        from gantools.nn import frozen_norm_stats
        from gantools.tiling import auto_tile, pad_to, run_tiled

        if precision == "bf16" and self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)

        def fn(t: Any) -> Any:
            with autocast(precision, self.device):
                return self.model(t).float()

        h, w = x.shape[-2:]
        if tile is None:
            tile = self.runtime.tile
        if tile is None:
            tile = auto_tile(h, w, 1)
        if not tile or max(h, w) <= tile or not self.tileable:
            return run_tiled(fn, x, scale=1, tile=0, overlap=0, multiple=self.size_multiple, min_size=self.min_size)
        tile = max(tile, 2 * self.tile_overlap)
        small = pad_to(self.stats_image(x), self.size_multiple, self.min_size)
        with torch.no_grad(), autocast(precision, self.device):
            with frozen_norm_stats(self.model, small):
                return run_tiled(fn, x, scale=1, tile=tile, overlap=self.tile_overlap, multiple=self.size_multiple,
                                 min_size=self.min_size, feather=self.feather)

    def stats_image(self, x: Any) -> Any:
        """``x`` downscaled (area-preserving) to at most :attr:`stats_pixels` pixels."""
        h, w = x.shape[-2:]
        f = min(1.0, (self.stats_pixels / (h * w)) ** 0.5)
        if f >= 1.0:
            return x
        return _resize(x, max(1, round(h * f)), max(1, round(w * f)))


def _resize(x: Any, h: int, w: int) -> Any:
    """Antialiased bicubic resize of a float tensor (N, C, H, W) to ``(h, w)``."""
    import torch.nn.functional as F

    down = h * w < x.shape[-2] * x.shape[-1]
    return F.interpolate(x.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=down)
