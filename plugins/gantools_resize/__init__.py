"""``resize``: classical interpolation with OpenCV, the non-GAN baseline every GAN plugin is
compared against and the plugin the platform's own tests use.

It accepts every layout of the contract (gray, BGR, BGRA; uint8 and uint16) and returns the same
layout and dtype; alpha is interpolated like the colour channels. OpenCV is imported only when an
image is processed, so ``gantools list`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gantools.plugin import Descriptor, Option, OptionError, Plugin
from gantools.registry import register_plugin

if TYPE_CHECKING:  # numpy is imported where it is used, so `gantools list` does not load it
    import numpy as np

METHODS = ("lanczos", "bicubic", "area", "nearest")


@register_plugin
class Resize(Plugin):
    """Scale images by a (possibly fractional) factor with an OpenCV interpolation method."""

    parallel_safe = True  # stateless: a batch may resize several images at once

    descriptor = Descriptor(
        name="resize",
        task="resize",
        description="Classical resize (Lanczos, bicubic, area, nearest) with OpenCV; the non-GAN baseline.",
        scale=2,
        channels=(1, 3, 4),
        tiling=False,
        bf16=False,
        options=(
            Option("scale", float, 2.0, "output size / input size (above 0, at most 16)", max=16),
            Option("method", str, "lanczos", "interpolation method", choices=METHODS),
        ),
    )

    def check_options(self) -> None:
        if self.options["scale"] is None or self.options["scale"] <= 0:
            raise OptionError(f"option --scale: {self.options['scale']} must be above 0")

    @property
    def scale(self) -> float:  # type: ignore[override]
        """The ``scale`` option (the descriptor's 2 is only the default)."""
        return self.options["scale"]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the result: rounded, at least one pixel each."""
        s = self.scale
        return max(1, round(height * s)), max(1, round(width * s))

    def process(self, image: np.ndarray) -> np.ndarray:
        import cv2

        self.check_image(image)
        interpolation = {
            "lanczos": cv2.INTER_LANCZOS4,
            "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA,
            "nearest": cv2.INTER_NEAREST_EXACT,
        }[self.options["method"]]
        height, width = self.output_size(*image.shape[:2])
        out = cv2.resize(image, (width, height), interpolation=interpolation)
        if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a trailing single channel
            out = out[:, :, None]
        return out
