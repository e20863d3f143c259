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
not tileable) always runs on the whole image.

Memory: the steps around the network never hold a float copy of the whole image. The working
image and the network's result stay in the input's dtype (uint8/uint16; OpenCV resizes them row
by row), and colour preservation and blending run on horizontal bands
(:func:`gantools_stylize.color.finish`), so a large ``--size`` costs the tile budget plus a few
integer images. What a network allows is its descriptor's
(:class:`gantools.nn.descriptor.ModelDescriptor`): this plugin only composes the steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gantools.plugin import Descriptor, Option, Plugin
from gantools.registry import register_plugin
from gantools_stylize.loader import style_summary

if TYPE_CHECKING:  # numpy is imported where it is used, so `gantools list` does not load it
    import numpy as np

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
        self.runner = ImageRunner(model, device=rt.device, precision=rt.precision, threads=rt.threads, tile=rt.tile,
                                  backend=rt.backend)
        self.runner.progress = self.report_progress  # the batch's bar advances per tile band

    # -- processing ------------------------------------------------------------------------
    def process(self, image: np.ndarray) -> np.ndarray:
        """Stylise ``image`` (any layout of the array contract); alpha is returned unchanged.

        Resize to --size, network (tiled by the runner), resize back, colour and blend: every
        full-size intermediate is an integer image of the input's dtype.
        """
        from gantools.tensor.convert import merge, split
        from gantools_stylize.color import finish

        self.check_image(image)
        strength = self.options["strength"]
        if strength == 0.0:
            return image.copy()
        self.ensure_setup()
        color, alpha, layout = split(image)
        h, w = color.shape[:2]
        styled = self.runner(self.working_image(color))
        if styled.shape[:2] != (h, w):
            styled = resize_image(styled, h, w)
        preserve = self.options["preserve_color"] and not layout.gray  # a gray result has no chroma to keep
        return merge(finish(styled, color, strength, preserve=preserve), alpha, layout)

    def working_image(self, color: np.ndarray) -> np.ndarray:
        """``color`` resized so its long side is --size (unchanged without --size)."""
        size = self.options["size"]
        h, w = color.shape[:2]
        if not size or size == max(h, w):
            return color
        f = size / max(h, w)
        return resize_image(color, max(1, round(h * f)), max(1, round(w * f)))


def resize_image(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWxC (C = 1 or 3) integer ``image`` resized to ``h`` x ``w`` in its own dtype: area
    averaging when shrinking (antialiased), bicubic otherwise. OpenCV works row by row, so no
    float copy of the image is made."""
    import cv2

    down = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_CUBIC)
    return out.reshape(h, w, image.shape[2])
