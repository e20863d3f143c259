"""Built-in plugin ``stylegan``: StyleGAN2 generators from published files (``gantools generate stylegan``).

``--weights FILE`` is required (nothing is shipped): an NVlabs ``stylegan2-ada-pytorch`` network
pickle (``.pkl``; its ``G_ema``) or a rosinality ``stylegan2-pytorch`` ``.pt`` (``g_ema`` and
``latent_avg``, or a training checkpoint), read without running code from the file
(:mod:`.loader`). Images equal the reference tools' for the same seed (:mod:`.generate`):
``--truncation`` psi in [0, 1] (1 = none) pulls ``w`` towards the file's average ``w``;
class-conditional NVlabs models need ``--class N`` and unconditional ones refuse it. fp32 unless
``--precision bf16`` is asked for. ``process()`` refuses: this plugin generates, it does not
transform images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any


from gantools.plugin import Descriptor, Option, OptionError, Plugin
from gantools.registry import register_plugin

if TYPE_CHECKING:  # numpy is imported where it is used, so `gantools list` does not load it
    import numpy as np

NEEDS_WEIGHTS = "stylegan needs --weights FILE: an NVlabs stylegan2-ada-pytorch .pkl or a rosinality stylegan2-pytorch .pt"


@register_plugin
class StyleGAN(Plugin):
    descriptor = Descriptor(
        name="stylegan",
        task="stylegan",
        description="StyleGAN2 generator (NVlabs .pkl / rosinality .pt via --weights), images as the reference code",
        channels=(3,),
        bf16=False,
        kind="generator",
        options=(
            Option("truncation", float, 1.0, "truncation psi in [0, 1] (1 = none; lower = more typical images)",
                   min=0.0, max=1.0),
            Option("class_", int, None, "class index, for class-conditional models only", min=0),
        ),
        weights="none shipped: --weights FILE (NVlabs .pkl or rosinality .pt)",
    )

    def check_options(self) -> None:
        from gantools.checkpoint import check_weights_file

        if not 0.0 <= self.options["truncation"] <= 1.0:
            raise OptionError(f"option --truncation: {self.options['truncation']} is not in [0, 1]")
        if not self.runtime.weights:
            raise OptionError(NEEDS_WEIGHTS)
        if self.runtime.backend not in ("auto", "torch"):  # auto: torch (no exported graph for these yet)
            raise OptionError(f"option --backend: stylegan runs on torch only, not {self.runtime.backend}")
        check_weights_file(self.runtime.weights)
        self.weights_path = Path(self.runtime.weights)

    def setup(self) -> None:
        from gantools.checkpoint import weights_errors
        from gantools.device import set_threads, torch_device
        from gantools_stylegan.generate import StyleGANModel

        set_threads(self.runtime.threads)
        precision = "bf16" if self.runtime.precision == "bf16" else "fp32"
        with weights_errors(self.weights_path):
            self.model = StyleGANModel.load(self.weights_path, precision=precision,
                                            device=torch_device(self.runtime.device))
        self._check_class(self.options["class_"])

    def _check_class(self, index: int | None) -> None:
        c_dim = self.model.c_dim
        if c_dim == 0 and index is not None:
            raise OptionError(f"option --class: {self.weights_path} is an unconditional model; leave --class out")
        if c_dim and (index is None or index >= c_dim):
            got = "missing" if index is None else f"{index} is out of range"
            raise OptionError(f"option --class: {got}; {self.weights_path} is class-conditional: give --class 0..{c_dim - 1}")

    @property
    def resolution(self) -> int:
        self.ensure_setup()
        return self.model.resolution

    def generate(self, n: int, seed: int) -> list[np.ndarray]:
        """``n`` images (HxWx3 BGR uint8) of seeds ``seed .. seed + n - 1`` (NVlabs seed convention)."""
        self.ensure_setup()
        return self.model.generate(n, seed, self.options["truncation"], self.options["class_"])

    def interpolate(self, seed_a: int, seed_b: int, frames: int) -> list[np.ndarray]:
        """``frames`` images on the line in ``w`` from ``seed_a`` to ``seed_b``."""
        self.ensure_setup()
        return self.model.interpolate(seed_a, seed_b, frames, self.options["truncation"], self.options["class_"])

    # -- latent directions (gantools.latent.LatentGenerator) -------------------------------------
    def sample_w(self, n: int, seed: int) -> np.ndarray:
        """Untruncated ``w`` (n, w_dim) float32 of seeds ``seed .. seed + n - 1`` (``--class`` applied)."""
        self.ensure_setup()
        return self.model.sample_w(n, seed, self.options["class_"]).cpu().numpy()

    def seed_w(self, seed: int) -> np.ndarray:
        """The ``w`` (w_dim,) float32 that ``generate(1, seed)`` renders."""
        self.ensure_setup()
        return self.model.w(seed, self.options["truncation"], self.options["class_"])[0].cpu().numpy()

    def render_w(self, ws: np.ndarray) -> list[np.ndarray]:
        """Images of the rows of ``ws`` (n, w_dim), each in its own pass as ``generate`` renders."""
        import numpy as np
        import torch

        self.ensure_setup()
        return [self.model.render(torch.from_numpy(np.array(w[None], np.float32)).to(self.model.device)) for w in ws]

    def modulation_weights(self) -> list[np.ndarray]:
        """Affine (style) weights (channels, w_dim) of the synthesis network's modulated 3x3 convs."""
        self.ensure_setup()
        return [w.cpu().numpy() for w in self.model.modulation_weights()]

    def process(self, image: Any) -> np.ndarray:
        raise OptionError("stylegan generates; use gantools generate stylegan")
