"""Base class for plugins that run a torch network on the image.

Subclasses implement :meth:`TorchPlugin.build` (return the ``nn.Module``) and may override
:meth:`TorchPlugin.forward` (tensor ``(1, 3, H, W)`` RGB in [0, 1] -> tensor of the same kind,
``scale`` times larger). The base does everything else once: array/tensor conversion, gray
and 16-bit handling, alpha carried through (resized with the image), device, threads, bf16
autocast + channels_last on CPUs with AMX or AVX512-BF16, and tiling for large images.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gantools import convert
from gantools.device import autocast, resolve_precision, set_threads, torch_device
from gantools.plugin import Plugin


class TorchPlugin(Plugin):
    """A plugin whose work is one network applied to an RGB tensor."""

    #: pixels of context on each side of a tile (in input pixels)
    tile_overlap: ClassVar[int] = 16
    #: input sizes must be a multiple of this (padded by reflection, then cropped)
    size_multiple: ClassVar[int] = 1
    #: smallest input side the network accepts (smaller inputs are padded)
    min_size: ClassVar[int] = 1

    model: Any = None

    # -- hooks ---------------------------------------------------------------------------
    def build(self) -> Any:
        """Return the network (an ``nn.Module``); called once from :meth:`setup`."""
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        """Run the network on ``x`` (1, 3, H, W) in [0, 1]; override for pre/post steps."""
        return self.model(x)

    def process_alpha(self, alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Resize the alpha plane to ``size`` = (height, width); default bicubic via OpenCV."""
        import cv2

        if alpha.shape[:2] == size:
            return alpha
        out = cv2.resize(alpha, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        return out

    # -- machinery -----------------------------------------------------------------------
    @property
    def device(self) -> Any:
        return torch_device(self.runtime.device)

    def precision_for(self, image: np.ndarray) -> str:
        """The precision used for ``image``: fp32 for 16-bit input, else the runtime setting."""
        return resolve_precision(
            self.runtime.precision,
            str(self.device),
            allow_bf16=self.descriptor.bf16,
            sixteen_bit=image.dtype == np.uint16,
        )

    def setup(self) -> None:
        import torch

        set_threads(self.runtime.threads)
        model = self.build()
        if isinstance(model, torch.nn.Module):
            model = model.eval().to(self.device)
            if self.device.type == "cpu" and resolve_precision(self.runtime.precision, "cpu", allow_bf16=self.descriptor.bf16) == "bf16":
                model = model.to(memory_format=torch.channels_last)
            for p in model.parameters():
                p.requires_grad_(False)
        self.model = model

    def _tile_for(self, x: Any) -> int:
        tile = self.runtime.tile
        if tile is None:
            from gantools.tiling import auto_tile

            tile = auto_tile(x.shape[-2], x.shape[-1], self.scale) if self.descriptor.tiling else 0
        if tile and not self.descriptor.tiling:
            tile = 0
        return tile

    def iter_network(self, x: Any, precision: str, tile: int | None = None) -> Any:
        """Yield ``(y0, band)``: output row bands of :meth:`forward` on the whole image ``x``."""
        import torch

        from gantools.tiling import iter_tiled

        x = x.to(self.device)
        if precision == "bf16" and self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)

        def fn(t: Any) -> Any:
            with autocast(precision, self.device):
                return self.forward(t).float()

        tile = self._tile_for(x) if tile is None else tile
        yield from iter_tiled(fn, x, scale=self.scale, tile=tile, overlap=self.tile_overlap if tile else 0,
                              multiple=self.size_multiple, min_size=self.min_size)

    def run_network(self, x: Any, precision: str) -> Any:
        """Apply :meth:`forward` to a full image tensor, tiling when configured or needed."""
        import torch

        bands = [b for _, b in self.iter_network(x, precision)]
        return bands[0] if len(bands) == 1 else torch.cat(bands, dim=-2)

    def process(self, image: np.ndarray) -> np.ndarray:
        import torch

        from gantools.tiling import MIN_TILE, is_oom

        self.check_image(image)
        self.ensure_setup()
        color, alpha, layout = convert.split(image)
        x = convert.to_tensor(color)
        if layout.gray:
            x = x.expand(-1, 3, -1, -1)
        precision = self.precision_for(image)
        h, w = image.shape[:2]
        out = np.empty((h * self.scale, w * self.scale, color.shape[2]), layout.dtype)
        tile = self._tile_for(x)
        while True:
            try:
                with torch.inference_mode():
                    for y0, band in self.iter_network(x, precision, tile):
                        out[y0 : y0 + band.shape[-2]] = self._to_array(band, layout)
                break
            except RuntimeError as exc:  # allocation failure: retry with smaller tiles
                current = tile or max(h, w)
                if not is_oom(exc) or not self.descriptor.tiling or current // 2 < max(MIN_TILE, self.tile_overlap + 1):
                    raise
                tile = current // 2
        if alpha is not None:
            alpha = self.process_alpha(alpha, out.shape[:2])
        return convert.merge(out, alpha, layout)

    def _to_array(self, band: Any, layout: convert.Layout) -> np.ndarray:
        band = band.float().clamp(0, 1)
        if layout.gray:
            from kornia.color import rgb_to_grayscale

            band = rgb_to_grayscale(band)
        return convert.from_tensor(band, layout.dtype)
