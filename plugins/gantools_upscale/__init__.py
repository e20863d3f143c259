"""Built-in plugin ``upscale``: GAN super-resolution x2/x4 with shipped or user weights.

``--model`` picks a shipped model (``photo``: GAN-trained for real photos, ``fidelity``:
L1-trained, highest PSNR), ``--scale`` its variant. ``--weights FILE`` loads a gantools export
or a third-party checkpoint (Real-ESRGAN RRDBNet / SRVGGNetCompact) instead; its scale comes
from the file. ``--outscale`` resizes the result to any final factor (Lanczos).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gantools.plugin import Descriptor, Option, OptionError
from gantools.registry import register_plugin
from gantools.torch_plugin import TorchPlugin

MODELS = ("photo", "fidelity")


@register_plugin
class Upscale(TorchPlugin):
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
        train_task="gantools_upscale.train:UpscaleTask",
    )

    def check_options(self) -> None:
        """Resolve the weights now so that a bad (model, scale) pair fails at load time."""
        from gantools.nn import detect_arch
        from gantools.checkpoint import read_state_dict

        if self.runtime.weights:
            state, _ = read_state_dict(self.runtime.weights)
            info = detect_arch(state)
            if self.options["scale"] is not None and self.options["scale"] != info.scale:
                raise OptionError(
                    f"option --scale: {self.options['scale']} contradicts {self.runtime.weights}, a x{info.scale} model"
                )
        else:
            from gantools.weights import shipped

            scale = self.options["scale"] or 4
            found = shipped("upscale", name=self.options["model"], scale=scale)
            if not found:
                pairs = ", ".join(f"{m.name} x{m.scale}" for m in shipped("upscale")) or "none"
                raise OptionError(f"no shipped upscale model {self.options['model']!r} x{scale} (shipped: {pairs})")
            state, _ = read_state_dict(found[0].verify())
            info = detect_arch(state)
        self._state, self._info = state, info

    @property
    def scale(self) -> int:
        return self._info.scale

    def build(self) -> Any:
        from gantools.nn import load_arch

        model, info = load_arch(self._state)
        self.size_multiple = info.size_multiple
        self.min_size = info.min_size
        del self._state
        return model

    def process_alpha(self, alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if self.options["alpha"] == "bicubic":
            return super().process_alpha(alpha, size)
        import torch

        from gantools import convert

        x = convert.to_tensor(alpha[:, :, None], bgr_to_rgb=False).expand(-1, 3, -1, -1)
        with torch.inference_mode():
            y = self.run_network(x, "fp32" if alpha.dtype == np.uint16 else self.precision_for(alpha))
        return convert.from_tensor(y.mean(1, keepdim=True), alpha.dtype, rgb_to_bgr=False)[:, :, 0]

    def process(self, image: np.ndarray) -> np.ndarray:
        out = super().process(image)
        outscale = self.options["outscale"]
        if outscale is not None and outscale != self.scale:
            import cv2

            h, w = image.shape[:2]
            size = (max(1, round(w * outscale)), max(1, round(h * outscale)))
            interp = cv2.INTER_AREA if outscale < self.scale else cv2.INTER_LANCZOS4
            out = cv2.resize(out, size, interpolation=interp)
        return out
