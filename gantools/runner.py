"""Run a model descriptor on OpenCV-style arrays: composition instead of template hooks.

A plugin that runs a network holds an :class:`ImageRunner`: the
:class:`~gantools.nn.descriptor.ModelDescriptor` (module, scale, size requirements, tiling,
bf16) plus a tiler and the runtime settings. The runner does the array work once for every
plugin: split off alpha, gray and 16-bit handling, array <-> tensor (:mod:`gantools.tensor.convert`),
device, threads, bf16 autocast + channels_last on CPUs that have it, streaming output bands into
the result, and the one out-of-memory back-off (halve the tile and start again). Plugins compose
their own steps around it: a ``transform`` on the RGB tensor (resize, colour, blend) and their
own alpha handling and post-processing on arrays.

Tilers (chosen from the descriptor's ``tiling``):

* :class:`FeatherTiler` (``Tiling.SUPPORTED``): tiles with ``overlap`` pixels of context,
  blended with linear ramps; output bands stream out top to bottom.
* :class:`FrozenStatsTiler` (``Tiling.INTERNAL``): instance-norm statistics are computed once on
  a downscaled copy of the whole image and frozen for every tile; tiles overlap by the
  receptive radius plus half the feather, so there are no seams or tone jumps.
* ``Tiling.DISCOURAGED``: always whole (``tile`` is ignored).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from gantools.device import autocast, resolve_precision, set_threads, torch_device
from gantools.nn.descriptor import ModelDescriptor, Tiling
from gantools.tensor import convert
from gantools.tensor.tiling import MIN_TILE, auto_tile, is_oom, iter_tiled, pad_to, run_tiled

if TYPE_CHECKING:
    from torch import Tensor

Bands = Iterator[tuple[int, "Tensor"]]
#: a tensor step around the network: ``transform(x, network) -> (1, C, H', W')``
Transform = Callable[["Tensor", Callable[["Tensor"], "Tensor"]], "Tensor"]


@dataclass
class FeatherTiler:
    """Tiles with ``overlap`` input pixels of context, feathered seams (see :mod:`gantools.tensor.tiling`)."""

    overlap: int = 16

    def min_tile(self, model: ModelDescriptor) -> int:
        return max(MIN_TILE, self.overlap + 1)

    def bands(self, fn: Callable[[Tensor], Tensor], x: Tensor, model: ModelDescriptor, tile: int) -> Bands:
        yield from iter_tiled(fn, x, scale=model.scale, tile=tile, overlap=self.overlap if tile else 0,
                              multiple=model.size.multiple, min_size=model.size.minimum, pad_multiple=model.size.pad)


@dataclass
class FrozenStatsTiler:
    """Tiles an instance-norm network with statistics frozen from a downscaled whole image."""

    #: feather (input px) of the blend between tiles; overlap = receptive radius + feather / 2
    feather: int = 16
    #: the downscaled whole image used for tile statistics has at most this many pixels
    stats_pixels: int = 2 * 1024 * 1024

    def overlap(self, model: ModelDescriptor) -> int:
        m = model.size.multiple
        radius = model.receptive_radius if model.receptive_radius is not None else 64
        return -(-(radius + self.feather // 2) // m) * m

    def min_tile(self, model: ModelDescriptor) -> int:
        return 2 * self.overlap(model)

    def bands(self, fn: Callable[[Tensor], Tensor], x: Tensor, model: ModelDescriptor, tile: int) -> Bands:
        from gantools.nn.layers.norm import frozen_norm_stats

        size = model.size
        if not tile or max(x.shape[-2:]) <= tile:
            yield 0, run_tiled(fn, x, scale=model.scale, tile=0, overlap=0, multiple=size.multiple,
                               min_size=size.minimum, pad_multiple=size.pad)
            return
        tile = max(tile, self.min_tile(model))
        small = pad_to(self.stats_image(x), size.multiple if size.pad else 1, size.minimum)
        with frozen_norm_stats(model.model, small, run=fn):
            yield 0, run_tiled(fn, x, scale=model.scale, tile=tile, overlap=self.overlap(model),
                               multiple=size.multiple, min_size=size.minimum, feather=self.feather,
                               pad_multiple=size.pad)

    def stats_image(self, x: Tensor) -> Tensor:
        """``x`` downscaled (antialiased bicubic) to at most :attr:`stats_pixels` pixels."""
        h, w = x.shape[-2:]
        f = min(1.0, (self.stats_pixels / (h * w)) ** 0.5)
        if f >= 1.0:
            return x
        return resize(x, max(1, round(h * f)), max(1, round(w * f)))


def resize(x: Tensor, h: int, w: int) -> Tensor:
    """Antialiased (when shrinking) bicubic resize of a float tensor (N, C, H, W) to ``(h, w)``."""
    import torch.nn.functional as F

    down = h * w < x.shape[-2] * x.shape[-1]
    return F.interpolate(x.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=down)


def tiler_for(model: ModelDescriptor) -> FeatherTiler | FrozenStatsTiler | None:
    """The tiler a descriptor's ``tiling`` calls for (``None``: run whole)."""
    if model.tiling is Tiling.SUPPORTED:
        return FeatherTiler()
    if model.tiling is Tiling.INTERNAL and _has_tileable_norms(model):
        return FrozenStatsTiler()
    return None


def _has_tileable_norms(model: ModelDescriptor) -> bool:
    from gantools.nn.layers.norm import TileableInstanceNorm

    return model.model is not None and any(isinstance(m, TileableInstanceNorm) for m in model.model.modules())


class ImageRunner:
    """A loaded model on a device, run on arrays (see the module docstring).

    ``tile``: ``None`` sizes tiles automatically (:func:`~gantools.tensor.tiling.auto_tile` on the
    tensor actually tiled), ``0`` runs whole, ``n`` uses tiles of about ``n`` input pixels.
    """

    def __init__(self, model: ModelDescriptor, *, device: str = "cpu", precision: str = "auto",
                 threads: int | None = None, tile: int | None = None) -> None:
        import torch

        set_threads(threads)
        self.device = torch_device(device)
        self.precision, self.tile = precision, tile
        self.descriptor = model
        self.tiler = tiler_for(model)
        if isinstance(self.tiler, FeatherTiler) and tile and tile <= self.tiler.overlap:
            from gantools.plugin import OptionError

            raise OptionError(f"option --tile: {tile} must be 0 (off) or larger than the overlap {self.tiler.overlap}")
        net = model.model.eval().to(self.device)
        if self.device.type == "cpu" and self.resolve(np.uint8) == "bf16":
            net = net.to(memory_format=torch.channels_last)
        for p in net.parameters():
            p.requires_grad_(False)
        model.model = net
        self._used_tile = 0
        #: ``progress(rows done, rows)`` after each output band (a plugin connects its ``report_progress``)
        self.progress: Callable[[int, int], None] | None = None

    @property
    def scale(self) -> int:
        return self.descriptor.scale

    def resolve(self, dtype: np.dtype) -> str:
        """The precision for images of ``dtype``: fp32 for 16-bit, else the runtime setting
        where the network allows bf16."""
        return resolve_precision(self.precision, str(self.device), allow_bf16=self.descriptor.bf16,
                                 sixteen_bit=dtype == np.uint16)

    # -- tensors -----------------------------------------------------------------------------
    def network(self, x: Tensor, precision: str, tile: int | None = None) -> Bands:
        """Output row bands ``(y0, band)`` of the network on ``x`` (1, C, H, W), tiled as configured."""
        import torch

        x = x.to(self.device)
        if precision == "bf16" and self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)

        def fn(t: Tensor) -> Tensor:
            with autocast(precision, self.device):
                return self.descriptor.model(t).float()

        tile = self._tile_for(x, self.tile if tile is None else tile)
        self._used_tile = tile
        if self.tiler is None:
            size = self.descriptor.size
            yield 0, run_tiled(fn, x, scale=self.scale, tile=0, overlap=0, multiple=size.multiple,
                               min_size=size.minimum, pad_multiple=size.pad)
            return
        with torch.no_grad():
            yield from self.tiler.bands(fn, x, self.descriptor, tile)

    def whole(self, x: Tensor, precision: str, tile: int | None = None) -> Tensor:
        """The network on ``x`` as one tensor (bands concatenated)."""
        import torch

        bands = [b for _, b in self.network(x, precision, tile)]
        return bands[0] if len(bands) == 1 else torch.cat(bands, dim=-2)

    def _tile_for(self, x: Tensor, tile: int | None) -> int:
        if self.tiler is None:
            return 0
        if tile is None:
            return auto_tile(x.shape[-2], x.shape[-1], self.scale)
        return tile

    # -- arrays ------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray, transform: Transform | None = None) -> np.ndarray:
        """``image`` (OpenCV layout, alpha already split off or not) through the network.

        Returns the colour result (HxWxC in the input's dtype, gray stays gray, alpha removed:
        the caller decides what to do with alpha, see :func:`gantools.tensor.convert.split`).
        ``transform(x, network)`` replaces the plain network call on the RGB tensor: it receives
        the tensor and a ``network(x) -> tensor`` function and returns the result tensor.
        """
        color, _, layout = convert.split(image)
        x = convert.to_tensor(color, bgr_to_rgb=True)
        if layout.gray:
            x = x.expand(-1, 3, -1, -1)
        precision = self.resolve(image.dtype)
        tile = self.tile
        while True:
            try:
                return self._fill(x, layout, precision, tile, transform)
            except RuntimeError as exc:  # allocation failure: retry with smaller tiles
                tile = self._smaller_tile(exc, x)
                gc.collect()

    def _fill(self, x: Tensor, layout: convert.Layout, precision: str, tile: int | None,
              transform: Transform | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if transform is None:
                bands = self.network(x, precision, tile)
            else:
                bands = iter([(0, transform(x, lambda t: self.whole(t, precision, tile)))])
            out: np.ndarray | None = None
            try:
                for y0, band in bands:
                    arr = self._to_array(band, layout)
                    if out is None:
                        h, w = x.shape[-2:]
                        rows = h * self.scale if transform is None else arr.shape[0]
                        out = np.empty((rows, arr.shape[1], arr.shape[2]), layout.dtype)
                    out[y0 : y0 + arr.shape[0]] = arr
                    if self.progress is not None:
                        self.progress(y0 + arr.shape[0], out.shape[0])
            finally:  # a generator left suspended in no_grad() would disable grad for the thread when collected
                getattr(bands, "close", lambda: None)()
        return out

    def _smaller_tile(self, exc: RuntimeError, x: Tensor) -> int:
        current = self._used_tile or max(x.shape[-2:])
        if not is_oom(exc) or self.tiler is None or current // 2 < self.tiler.min_tile(self.descriptor):
            raise exc
        return current // 2

    @staticmethod
    def _to_array(band: Tensor, layout: convert.Layout) -> np.ndarray:
        """One output band as an array; ``ValueError`` when the network produced NaN or infinity."""
        import torch

        band = band.float()
        if not bool(torch.isfinite(band).all()):
            raise ValueError("the network's output holds NaN or infinite values (damaged weights or a "
                             "diverged model); no image was written")
        band = band.clamp(0, 1)
        if layout.gray:
            from kornia.color import rgb_to_grayscale

            band = rgb_to_grayscale(band)
        return convert.from_tensor(band, layout.dtype, rgb_to_bgr=True)

    def plane(self, plane: np.ndarray) -> np.ndarray:
        """A single plane (e.g. alpha, HxW) through the network as gray, back in its dtype."""
        import torch

        x = convert.to_tensor(plane[:, :, None], bgr_to_rgb=False).expand(-1, 3, -1, -1)
        with torch.inference_mode():
            y = self.whole(x, self.resolve(plane.dtype))
        return convert.from_tensor(y.mean(1, keepdim=True), plane.dtype, rgb_to_bgr=False)[:, :, 0]


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic (OpenCV) resize of a single plane to ``size`` = (height, width)."""
    import cv2

    if plane.shape[:2] == size:
        return plane
    return cv2.resize(plane, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


__all__ = ["FeatherTiler", "FrozenStatsTiler", "ImageRunner", "resize", "resize_plane", "tiler_for"]
