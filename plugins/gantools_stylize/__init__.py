"""Built-in plugin ``stylize``: photo -> painting with GAN-trained feed-forward generators.

``--style NAME`` runs a shipped style (``weights/manifest.toml``); ``--weights FILE`` replaces it
with a ``gantools train stylize`` export, a CycleGAN/pix2pix ResnetGenerator checkpoint
(``latest_net_G*.pth``) or AnimeGANv2 generator weights. ``--strength`` blends the result with
the input, ``--preserve-color`` keeps the input's chroma (YCbCr) and stylises luminance only,
``--size`` processes at a chosen long side and returns the input's size. Alpha is carried
through unchanged.

Large images are processed in tiles (sized on the ``--size`` working image). Instance-norm
generators (ours, CycleGAN) then normalise every tile with statistics computed once on a
downscaled copy of the whole image, and tiles overlap by the network's receptive field, so there
are no seams or tone jumps (:class:`gantools.runner.FrozenStatsTiler`). AnimeGANv2 (GroupNorm,
not tileable) always runs on the whole image. What a network allows is its descriptor's
(:class:`gantools.nn.descriptor.ModelDescriptor`): this plugin only composes the steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from gantools.plugin import Descriptor, Option, Plugin
from gantools.registry import register_plugin
from gantools_stylize.loader import style_summary

if TYPE_CHECKING:
    from torch import Tensor

_STYLES = style_summary()


@register_plugin
class Stylize(Plugin):
    """See the module docstring; ``--style``/``--weights`` are checked at construction, read in setup."""

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
        trainable=True,
    )

    def check_options(self) -> None:
        """Check --style/--weights cheaply; the weights are read in :meth:`setup`."""
        from gantools_stylize.loader import check

        check(self.options["style"], self.runtime.weights)

    def setup(self) -> None:
        from gantools.checkpoint import weights_errors
        from gantools.nn import load_arch
        from gantools.runner import ImageRunner
        from gantools_stylize.loader import resolve

        w = resolve(self.options["style"], self.runtime.weights)
        with weights_errors(w.label):
            model = load_arch(w.state, w.arch, w.config)
        rt = self.runtime
        self.runner = ImageRunner(model, device=rt.device, precision=rt.precision, threads=rt.threads, tile=rt.tile)
        self.runner.progress = self.report_progress  # the batch's bar advances per tile band

    # -- processing ------------------------------------------------------------------------
    def process(self, image: np.ndarray) -> np.ndarray:
        from gantools.tensor.convert import merge, split

        self.check_image(image)
        if self.options["strength"] == 0.0:
            return image.copy()
        self.ensure_setup()
        _, alpha, layout = split(image)
        return merge(self.runner(image, transform=self.stylise_image), alpha, layout)

    def stylise_image(self, x: Tensor, network: Callable[[Tensor], Tensor]) -> Tensor:
        """Resize ``x`` (1, 3, H, W) to --size, apply ``network``, resize back, keep the input's
        colour if asked, blend by --strength. Returns (1, 3, H, W) in [0, 1]."""
        from gantools.runner import resize
        from gantools_stylize.color import blend, preserve_color

        x = x.to(self.runner.device).float()
        h, w = x.shape[-2:]
        work = x
        size = self.options["size"]
        if size and size != max(h, w):
            f = size / max(h, w)
            work = resize(x, max(1, round(h * f)), max(1, round(w * f)))
        y = network(work).float()
        if tuple(y.shape[-2:]) != (h, w):
            y = resize(y, h, w)
        y = y.clamp(0, 1)
        if self.options["preserve_color"]:
            y = preserve_color(y, x)
        return blend(y, x, self.options["strength"]).clamp(0, 1)
