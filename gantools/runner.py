"""Run a model descriptor on OpenCV-style arrays: composition instead of template hooks.

A plugin that runs a network holds an :class:`ImageRunner`: the
:class:`~gantools.nn.descriptor.ModelDescriptor` (module, scale, size requirements, tiling,
bf16) plus a tiler and the runtime settings. The runner does the array work once for every
plugin: split off alpha, gray and 16-bit handling, array <-> tensor (:mod:`gantools.tensor.convert`),
device, threads, precision, streaming output bands into the result, and the one out-of-memory
back-off (halve the tile and start again). The network itself is evaluated by a backend
(:mod:`gantools.backends`: torch eager with bf16 autocast + channels_last on CPUs that have it,
or the exported graph in ONNX Runtime or OpenVINO; ``backend="auto"`` picks by a measured table). Plugins compose
their own steps around it: a ``transform`` on the RGB tensor (resize, colour, blend) and their
own alpha handling and post-processing on arrays.

Tilers (chosen from the descriptor's ``tiling``):

* :class:`FeatherTiler` (``Tiling.SUPPORTED``): tiles with ``overlap`` pixels of context,
  blended with linear ramps; output bands stream out top to bottom.
* :class:`FrozenStatsTiler` (``Tiling.INTERNAL``): instance-norm statistics are computed once on
  a downscaled copy of the whole image and frozen for every tile; tiles overlap by the
  receptive radius plus half the feather, so there are no seams or tone jumps.
* ``Tiling.DISCOURAGED``: always whole (``tile`` is ignored).

Memory: a uint8/uint16 image stays an integer tensor (:func:`gantools.tensor.convert.to_int_tensor`)
and each tile becomes float as it is run (:mod:`gantools.tensor.tiling`); output bands stream into
the result array, so a tiled run holds the integer input and output plus one band of tiles, never
a float copy of the whole image. The statistics pass of :class:`FrozenStatsTiler` runs on at most
as many pixels as the tile budget lets a network run whole (or one tile, if that is larger).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from gantools.backends.torch_backend import uses_channels_last
from gantools.device import resolve_precision, set_threads, torch_device
from gantools.nn.descriptor import ModelDescriptor, Tiling
from gantools.tensor import convert
from gantools.tensor.tiling import MIN_TILE, auto_tile, budget_pixels, is_oom, iter_tiled, pad_to, run_tiled

if TYPE_CHECKING:
    from torch import Tensor

    from gantools.backends.base import Backend, Network

Bands = Iterator[tuple[int, "Tensor"]]
#: a tensor step around the network: ``transform(x, network) -> (1, C, H', W')``
Transform = Callable[["Tensor", Callable[["Tensor"], "Tensor"]], "Tensor"]


@dataclass
class FeatherTiler:
    """Tiles with ``overlap`` input pixels of context, feathered seams (see :mod:`gantools.tensor.tiling`)."""

    overlap: int = 16

    def min_tile(self, model: ModelDescriptor) -> int:
        return max(MIN_TILE, self.overlap + 1)

    def bands(self, net: Network, x: Tensor, model: ModelDescriptor, tile: int) -> Bands:
        yield from iter_tiled(net, x, scale=model.scale, tile=tile, overlap=self.overlap if tile else 0,
                              multiple=model.size.multiple, min_size=model.size.minimum, pad_multiple=model.size.pad)


@dataclass
class FrozenStatsTiler:
    """Tiles an instance-norm network with statistics frozen from a downscaled whole image."""

    #: feather (input px) of the blend between tiles; overlap = receptive radius + feather / 2
    feather: int = 16
    #: the downscaled whole image used for tile statistics has at most this many pixels (and no
    #: more than :meth:`stats_limit` allows)
    stats_pixels: int = 2 * 1024 * 1024

    def overlap(self, model: ModelDescriptor) -> int:
        m = model.size.multiple
        radius = model.receptive_radius if model.receptive_radius is not None else 64
        return -(-(radius + self.feather // 2) // m) * m

    def min_tile(self, model: ModelDescriptor) -> int:
        return 2 * self.overlap(model)

    def bands(self, net: Network, x: Tensor, model: ModelDescriptor, tile: int) -> Bands:
        size = model.size
        if not tile or max(x.shape[-2:]) <= tile:
            yield 0, run_tiled(net, x, scale=model.scale, tile=0, overlap=0, multiple=size.multiple,
                               min_size=size.minimum, pad_multiple=size.pad)
            return
        tile = max(tile, self.min_tile(model))
        small = self.stats_image(x, self.stats_limit(model, tile))
        small = pad_to(small, size.multiple if size.pad else 1, size.minimum)
        with net.frozen(small) as fn:  # bands stream out: no float copy of the whole result
            yield from iter_tiled(fn, x, scale=model.scale, tile=tile, overlap=self.overlap(model),
                                  multiple=size.multiple, min_size=size.minimum, feather=self.feather,
                                  pad_multiple=size.pad)

    def stats_limit(self, model: ModelDescriptor, tile: int) -> int:
        """The most pixels of the statistics image for tiles of ``tile``: :attr:`stats_pixels`,
        but no more than the tile budget lets the network run whole
        (:func:`~gantools.tensor.tiling.budget_pixels`) or, if larger, one tile with its context."""
        one_tile = (tile + 2 * self.overlap(model)) ** 2
        return min(self.stats_pixels, max(budget_pixels(model.scale), one_tile))

    def stats_image(self, x: Tensor, pixels: int | None = None) -> Tensor:
        """``x`` as a float tensor downscaled to ``pixels`` (default :attr:`stats_pixels`; sides
        rounded, so it may exceed that by about a row and a column): antialiased bicubic for a float
        ``x``; area averaging (OpenCV, row by row, no float copy of ``x``) for an integer one
        (:func:`~gantools.tensor.convert.to_int_tensor`)."""
        h, w = x.shape[-2:]
        pixels = self.stats_pixels if pixels is None else pixels
        f = min(1.0, (pixels / (h * w)) ** 0.5)
        if f >= 1.0:
            return convert.as_float(x)
        sh, sw = max(1, round(h * f)), max(1, round(w * f))
        if x.is_floating_point():
            return resize(x, sh, sw)
        return convert.as_float(area_downscale(x, sh, sw))


def area_downscale(x: Tensor, h: int, w: int) -> Tensor:
    """Area-averaging downscale (OpenCV ``INTER_AREA``) of an integer tensor (1, C, H, W) to
    ``(h, w)``, in its dtype and on its device; OpenCV works row by row, so no float copy is made."""
    import cv2
    import torch

    hwc = x[0].permute(1, 2, 0).cpu().numpy()
    if hwc.flags.c_contiguous:  # channels_last: one call on the interleaved image
        small = cv2.resize(hwc, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
    else:
        planes = [np.ascontiguousarray(p) for p in x[0].cpu().numpy()]  # (H, W) views of NCHW: no copy
        small = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in planes], axis=-1)
    return torch.from_numpy(small).permute(2, 0, 1)[None].contiguous().to(x.device)


def resize(x: Tensor, h: int, w: int) -> Tensor:
    """Antialiased (when shrinking) bicubic resize of a tensor (N, C, H, W) to ``(h, w)``, as float
    (an integer tensor of levels is taken as :func:`~gantools.tensor.convert.as_float` of it)."""
    import torch.nn.functional as F

    down = h * w < x.shape[-2] * x.shape[-1]
    return F.interpolate(convert.as_float(x).float(), size=(h, w), mode="bicubic", align_corners=False,
                         antialias=down)


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
    ``backend``: ``auto``, ``torch``, ``onnxruntime`` or ``openvino`` (:mod:`gantools.backends`);
    one that cannot run here raises ``OptionError``, a network it cannot export ``ExportError``
    (``auto`` then runs torch); the one chosen is :attr:`backend`.
    """

    def __init__(self, model: ModelDescriptor, *, device: str = "cpu", precision: str = "auto",
                 threads: int | None = None, tile: int | None = None, backend: str = "auto") -> None:
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
        if uses_channels_last(model, self.resolve(np.uint8), self.device):
            net = net.to(memory_format=torch.channels_last)
        for p in net.parameters():
            p.requires_grad_(False)
        model.model = net
        self.backend = self._backend(backend)
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

    def _backend(self, name: str) -> Backend:
        """The backend ``name`` resolves to here (:func:`gantools.backends.resolve_backend`)."""
        from gantools.backends import BackendUnavailable, resolve_backend
        from gantools.backends.base import create_backend
        from gantools.plugin import OptionError

        from gantools.export import ExportError

        try:
            chosen = resolve_backend(name, self.descriptor.backend_family, self.resolve(np.uint8), self.device.type)
        except BackendUnavailable as exc:
            raise OptionError(str(exc)) from None
        try:
            return create_backend(chosen, self.descriptor, self.device)
        except ExportError:
            if name != "auto":  # asked for by name: the one-line export error is the answer
                raise
            return create_backend("torch", self.descriptor, self.device)  # auto: what runs everywhere

    # -- tensors -----------------------------------------------------------------------------
    def network(self, x: Tensor, precision: str, tile: int | None = None) -> Bands:
        """Output row bands ``(y0, band)`` (float32) of the network on ``x`` (1, C, H, W), tiled as
        configured; ``x`` is float in [0, 1] or integer levels
        (:func:`~gantools.tensor.convert.to_int_tensor`, made float one tile at a time)."""
        import torch

        fn = self.backend.bind(precision)
        x = fn.prepare(x.to(self.device))
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
        """The network on ``x`` (as for :meth:`network`) as one float tensor (bands concatenated)."""
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
        x = convert.to_int_tensor(color, bgr_to_rgb=True)  # integer levels: tiles become float one by one
        if layout.gray:
            x = x.expand(-1, 3, -1, -1)
        precision = self.resolve(image.dtype)
        if transform is None:  # on the device and in the network's layout once: no second copy kept
            x = self.backend.bind(precision).prepare(x.to(self.device))
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
                bands = iter([(0, transform(convert.as_float(x), lambda t: self.whole(t, precision, tile)))])
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
        # one cheap reduction; the exact test only when it is not finite (huge finite values overflow a sum)
        if not bool(torch.isfinite(band.sum())) and not bool(torch.isfinite(band).all()):
            raise ValueError("the network's output holds NaN or infinite values (damaged weights or a "
                             "diverged model); no image was written")
        if layout.gray:  # of the clamped colours (from_tensor clamps what it converts)
            from kornia.color import rgb_to_grayscale

            band = rgb_to_grayscale(band.clamp(0, 1))
        return convert.from_tensor(band, layout.dtype, rgb_to_bgr=True)

    # -- batches of same-size images (video frames) --------------------------------------------
    def batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``[self(image) for image in images]`` with several images per network pass.

        Images of one shape and dtype that run whole (:meth:`per_pass` > 1) go through the
        network as (N, C, H, W) stacks of up to :meth:`per_pass` images, each result converted as
        :meth:`__call__` converts it (same precision, backend, finite check). Anything else (images
        that are tiled, mixed sizes, a stack that fails to allocate) runs one by one through
        :meth:`__call__`. Values: torch fp32 may pick another convolution kernel for a stack than
        for one small image (below ~20k values per layer input), so results can differ by float
        rounding there; see ``tests/test_video_batch.py`` for what is exact."""
        images = list(images)
        if len(images) < 2 or len({(a.shape, a.dtype) for a in images}) > 1:
            return [self(a) for a in images]
        n = self.per_pass(*images[0].shape[:2])
        out: list[np.ndarray] = []
        for i in range(0, len(images), max(1, n)):
            chunk = images[i : i + max(1, n)]
            if len(chunk) < 2:
                out += [self(a) for a in chunk]
                continue
            try:
                out += self._stack_pass(chunk)
            except RuntimeError as exc:  # allocation failure: one by one (each with its own back-off)
                if not is_oom(exc):
                    raise
                gc.collect()
                out += [self(a) for a in chunk]
        return out

    def per_pass(self, h: int, w: int) -> int:
        """How many ``h`` x ``w`` images :meth:`batch` runs in one pass: as many as fit the pixel
        budget one image may run whole in (:func:`~gantools.tensor.tiling.budget_pixels`,
        ``GANTOOLS_TILE_BUDGET_MB``), 1 when such an image is tiled (``--tile`` below its long side,
        or automatic tiles because it is larger than that budget)."""
        if self.tiler is not None:
            tile = auto_tile(h, w, self.scale) if self.tile is None else self.tile
            if tile and max(h, w) > tile:
                return 1
        return max(1, budget_pixels(self.scale) // max(1, h * w))

    def _stack_pass(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One network pass on the stacked ``images`` (one shape, run whole): the results of
        :meth:`__call__` for each."""
        import torch

        _, _, layout = convert.split(images[0])
        x = torch.cat([convert.to_int_tensor(convert.split(a)[0], bgr_to_rgb=True) for a in images])
        if layout.gray:
            x = x.expand(-1, 3, -1, -1)
        precision = self.resolve(images[0].dtype)
        with torch.inference_mode():
            bands = [band for _, band in self.network(x, precision)]
            y = bands[0] if len(bands) == 1 else torch.cat(bands, dim=-2)
            results = [self._to_array(y[i : i + 1], layout) for i in range(len(images))]
        if self.progress is not None:
            for r in results:
                self.progress(r.shape[0], r.shape[0])
        return results

    def plane(self, plane: np.ndarray) -> np.ndarray:
        """A single plane (e.g. alpha, HxW) through the network as gray, back in its dtype."""
        import torch

        x = convert.to_int_tensor(plane[:, :, None], bgr_to_rgb=False).expand(-1, 3, -1, -1)
        with torch.inference_mode():
            y = self.whole(x, self.resolve(plane.dtype))
        return convert.from_tensor(y.mean(1, keepdim=True), plane.dtype, rgb_to_bgr=False)[:, :, 0]


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic (OpenCV) resize of a single plane to ``size`` = (height, width)."""
    import cv2

    if plane.shape[:2] == size:
        return plane
    return cv2.resize(plane, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


__all__ = ["FeatherTiler", "FrozenStatsTiler", "ImageRunner", "area_downscale", "resize", "resize_plane", "tiler_for"]
