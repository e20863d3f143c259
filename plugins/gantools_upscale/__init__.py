"""Built-in plugin ``upscale``: GAN super-resolution x2/x4 with shipped or user weights.

``--model`` picks a shipped model (``photo``: GAN-trained for real photos, ``fidelity``:
L1-trained, highest PSNR), ``--scale`` its variant. ``--weights FILE`` loads a gantools export
or a third-party checkpoint (Real-ESRGAN RRDBNet / SRVGGNetCompact) instead; its scale comes
from the file. ``--outscale`` resizes the result to any final factor (Lanczos).
"""

from __future__ import annotations


import numpy as np

from gantools.plugin import Descriptor, Option, OptionError, Plugin
from gantools.registry import register_plugin

MODELS = ("photo", "fidelity")


@register_plugin
class Upscale(Plugin):
    descriptor = Descriptor(
        name="upscale",
        task="upscale",
        description="GAN super-resolution (x2/x4) of real photos",
        scale=4,
        channels=(1, 3, 4),
        tiling=True,
        options=(
            Option("model", str, "photo", "shipped model: photo (GAN, sharp) or fidelity (L1, highest PSNR)", choices=MODELS),
            Option("scale", int, None, "upscaling factor of the model: 2 or 4 (default 4, or the weights' own)", choices=(2, 4)),
            Option("outscale", float, None, "final factor after the model (Lanczos), e.g. 3 or 1.5", min=0.05, max=16),
            Option("alpha", str, "bicubic", "how to enlarge an alpha channel: bicubic or model", choices=("bicubic", "model")),
        ),
        weights="photo x4, fidelity x2/x4",
        trainable=True,
    )

    def check_options(self) -> None:
        """Check that the shipped model exists (a user's ``--weights`` file is read in :meth:`setup`)."""
        if self.runtime.weights:
            return
        from gantools.weights import shipped

        scale = self.options["scale"] or 4
        if not shipped("upscale", name=self.options["model"], scale=scale):
            pairs = ", ".join(f"{m.name} x{m.scale}" for m in shipped("upscale")) or "none"
            raise OptionError(f"no shipped upscale model {self.options['model']!r} x{scale} (shipped: {pairs})")

    def setup(self) -> None:
        from gantools.checkpoint import read_state_dict
        from gantools.nn import load_arch
        from gantools.runner import ImageRunner

        state, _ = read_state_dict(self._weights_path())
        model = load_arch(state)
        if self.runtime.weights and self.options["scale"] not in (None, model.scale):
            raise OptionError(
                f"option --scale: {self.options['scale']} contradicts {self.runtime.weights}, a x{model.scale} model"
            )
        rt = self.runtime
        self.runner = ImageRunner(model, device=rt.device, precision=rt.precision, threads=rt.threads, tile=rt.tile)

    def _weights_path(self) -> str:
        if self.runtime.weights:
            return self.runtime.weights
        from gantools.weights import shipped

        return str(shipped("upscale", name=self.options["model"], scale=self.options["scale"] or 4)[0].verify())

    @property
    def scale(self) -> int:
        """The model's factor (read from the weights, so this loads them)."""
        self.ensure_setup()
        return self.runner.scale

    def process(self, image: np.ndarray) -> np.ndarray:
        from gantools.runner import resize_plane
        from gantools.tensor.convert import merge, split

        self.check_image(image)
        self.ensure_setup()
        _, alpha, layout = split(image)
        out = self.runner(image)
        if alpha is not None:
            bicubic = self.options["alpha"] == "bicubic"
            alpha = resize_plane(alpha, out.shape[:2]) if bicubic else self.runner.plane(alpha)
        out = merge(out, alpha, layout)
        outscale = self.options["outscale"]
        if outscale is not None and outscale != self.scale:
            import cv2

            h, w = image.shape[:2]
            size = (max(1, round(w * outscale)), max(1, round(h * outscale)))
            interp = cv2.INTER_AREA if outscale < self.scale else cv2.INTER_LANCZOS4
            out = cv2.resize(out, size, interpolation=interp)
        return out
