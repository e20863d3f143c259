"""Built-in plugin ``upscale``: GAN super-resolution x2/x3/x4 with shipped, pulled or user weights.

``--model`` picks a shipped model (``photo``: GAN-trained for real photos, ``fidelity``:
L1-trained, highest PSNR, ``fast``: a 16-channel L1 network at OpenCV FSRCNN's speed) or an
official Real-ESRGAN model pulled into the cache by ``gantools models pull realesrgan``
(``realesrgan``: x4plus, ``realesrgan-anime``: x4plus-anime, ``animevideo``: animevideov3
x2/x3/x4; see :mod:`gantools.models`), ``--scale`` its variant;
a pulled model that is not in the cache is an ``OptionError`` naming the pull command.
``--weights FILE`` loads a gantools export or a third-party model instead (Real-ESRGAN RRDBNet /
SRVGGNetCompact, ESRGAN old-arch, SPAN, or a Real-ESRGAN ncnn ``.param``/``.bin`` pair); its
scale comes from the file. ``--outscale`` resizes the result to any final factor (Lanczos). A
``--weights`` file that cannot be used (unreadable, another task's export, a network that does not
upscale) is one ``OptionError`` ``"<file>: <problem>"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path


from gantools import models
from gantools.plugin import Descriptor, Option, OptionError, Plugin
from gantools.registry import register_plugin

if TYPE_CHECKING:  # numpy is imported where it is used, so `gantools list` does not load it
    import numpy as np

SHIPPED = ("photo", "fidelity", "fast")
PULLED = tuple(dict.fromkeys(m.name for m in models.find("upscale")))  # realesrgan, realesrgan-anime, animevideo
MODELS = SHIPPED + PULLED
WHAT = "an upscale (super-resolution) model"
ACCEPTS = "gantools upscale exports or Real-ESRGAN RRDBNet / SRVGGNetCompact weights (scale > 1)"


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
            Option("model", str, "photo", "shipped model: photo (GAN, sharp), fidelity (L1, highest PSNR) or fast "
                   "(x4, L1, 16 channels: FSRCNN's speed); "
                   f"pulled (gantools models pull realesrgan): {', '.join(PULLED)}", choices=MODELS),
            Option("scale", int, None, "upscaling factor of the model: 2, 3 or 4 (default 4, or the weights' own)",
                   choices=(2, 3, 4)),
            Option("outscale", float, None, "final factor after the model (Lanczos), e.g. 3 or 1.5", min=0.05, max=16),
            Option("alpha", str, "bicubic", "how to enlarge an alpha channel: bicubic or model", choices=("bicubic", "model")),
        ),
        weights="photo x2/x4, fidelity x2/x4, fast x4; " + models.summary("upscale"),
        trainable=True,
    )
    parallel_safe = True  # inference only (no per-image state): a batch may run several images at once

    def check_options(self) -> None:
        """Check the shipped model exists, or cheaply that ``--weights`` is a file and not another task's export."""
        if self.runtime.weights:
            from gantools.checkpoint import check_task, check_weights_file, peek_metadata

            check_weights_file(self.runtime.weights)
            check_task(self.runtime.weights, peek_metadata(self.runtime.weights), "upscale", WHAT)
            return
        if self.options["model"] in PULLED:
            self._pulled_path()
            return
        from gantools.weights import shipped

        scale = self.options["scale"] or 4
        if not shipped("upscale", name=self.options["model"], scale=scale):
            pairs = ", ".join(f"{m.name} x{m.scale}" for m in shipped("upscale")) or "none"
            raise OptionError(f"no shipped upscale model {self.options['model']!r} x{scale} (shipped: {pairs})")

    def setup(self) -> None:
        """Read the weights; any problem with them is one ``OptionError`` naming the file."""
        from gantools.checkpoint import load_weights, weights_errors
        from gantools.nn import load_arch
        from gantools.nn.ncnn import is_ncnn, load_ncnn
        from gantools.runner import ImageRunner

        path = self._weights_path()
        with weights_errors(path):  # an ncnn model (.param/.bin) or a checkpoint
            model = load_ncnn(path) if is_ncnn(path) else load_arch(load_weights(path, "upscale", WHAT)[0])
        if model.scale <= 1:
            raise OptionError(f"{path}: a {model.arch!r} network (x{model.scale:g}), not a super-resolution network; "
                              f"upscale takes {ACCEPTS}")
        if self.runtime.weights and self.options["scale"] not in (None, model.scale):
            raise OptionError(
                f"option --scale: {self.options['scale']} contradicts {self.runtime.weights}, a x{model.scale} model"
            )
        rt = self.runtime
        self.runner = ImageRunner(model, device=rt.device, precision=rt.precision, threads=rt.threads, tile=rt.tile,
                                  backend=rt.backend)
        self.runner.progress = self.report_progress  # the batch's bar advances per tile band

    def _weights_path(self) -> str:
        if self.runtime.weights:
            return self.runtime.weights
        if self.options["model"] in PULLED:
            return str(self._pulled_path())
        from gantools.weights import shipped

        return str(shipped("upscale", name=self.options["model"], scale=self.options["scale"] or 4)[0].verify())

    def _pulled_path(self) -> Path:
        """The ``.param`` of the pulled ``--model`` at ``--scale``; ``OptionError`` if absent or not pulled."""
        name, scale = self.options["model"], self.options["scale"] or 4
        found = models.find("upscale", name=name, scale=scale)
        if not found:
            have = "/".join(f"x{m.scale}" for m in models.find("upscale", name=name))
            raise OptionError(f"option --scale: model {name!r} has no x{scale} (it has {have})")
        try:
            return models.path(found[0])
        except models.NotInstalled as exc:
            raise OptionError(str(exc)) from None

    @property
    def scale(self) -> float:  # type: ignore[override]
        """The final factor: ``--outscale`` when given, else the model's (read from the weights, so this loads them)."""
        if self.options["outscale"] is not None:
            return self.options["outscale"]
        self.ensure_setup()
        return self.runner.scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the result: ``--outscale`` times if given, else the model's scale."""
        s = self.options["outscale"] or self.scale
        return max(1, round(height * s)), max(1, round(width * s))

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
        if outscale is not None and outscale != self.runner.scale:
            import cv2

            h, w = image.shape[:2]
            size = (max(1, round(w * outscale)), max(1, round(h * outscale)))
            interp = cv2.INTER_AREA if outscale < self.runner.scale else cv2.INTER_LANCZOS4
            out = cv2.resize(out, size, interpolation=interp)
        return out
