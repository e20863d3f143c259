"""Run an image network whole or tile by tile, with padding to the sizes the network needs.

``fn`` maps ``(N, C, h, w)`` to ``(N, C', h*scale, w*scale)``. The image is first padded at the
bottom/right (reflect, or replicate where the image is too small to reflect) to a multiple of
``multiple`` and at least ``min_size``, and the output is cropped back to ``(H*scale, W*scale)``.
With ``pad_multiple=False`` the network takes any size of at least ``min_size`` and returns at
least the scaled size (strided encoders with transposed or resize decoders, e.g. CycleGAN): the
image is not padded to the multiple (padding would enter instance-norm statistics), the output is
cropped, and the multiple only aligns tile boundaries.

Tiling splits the padded image into a grid of cores of about ``tile`` input pixels, aligned to
``multiple`` (so strided networks see the same pixel phase as untiled), each run with
``overlap`` pixels of context on every side. Neighbouring outputs are blended with linear ramps
``feather`` input pixels wide, centred on the seam, and per-pixel weights sum to 1. A tile's
output is exact wherever its context covers the network's receptive field, so the tiled result
equals the untiled one when the receptive-field radius is at most ``overlap - feather / 2``
(``feather=0``: a hard seam, exact for radius <= overlap).

``x`` may also be an integer tensor of levels (:func:`gantools.tensor.convert.to_int_tensor`):
padding and tiling then work on the integers, and each tile becomes float (``as_float``) just
before ``fn`` runs, so no float copy of the whole image is made (unless it is run whole).

torch is imported inside the functions only.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Callable, Iterator

from gantools.tensor.convert import as_float

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_BUDGET_MB = 384
#: activation bytes per *output* pixel assumed by :func:`auto_tile` (64 bf16 channels x a few live buffers, at input resolution)
DEFAULT_BYTES_PER_PIXEL = 256
TILE_HEADROOM = 4
MIN_TILE = 64
OOM_MARKERS = ("out of memory", "defaultcpuallocator")


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _pad_axis(x: Tensor, dim: int, amount: int, reflect: bool | None = None) -> Tensor:
    """``x`` padded by ``amount`` at the end of ``dim``: reflected (default: when ``amount`` is
    less than the axis' length) or replicated."""
    import torch
    import torch.nn.functional as F

    if amount <= 0:
        return x
    n = x.shape[dim]
    reflect = amount < n if reflect is None else reflect
    if x.is_floating_point():
        pad = (0, amount, 0, 0) if dim == -1 else (0, 0, 0, amount)
        return F.pad(x, pad, mode="reflect" if reflect else "replicate")
    # integer levels: the same padding as a gather, which torch has for every integer dtype and device
    # (not all of its padding kernels do); uint16 is gathered as the same bits in int16
    idx = torch.arange(n + amount, device=x.device)
    idx[n:] = 2 * (n - 1) - idx[n:] if reflect else n - 1
    bits = x.view(torch.int16) if x.dtype == torch.uint16 else x
    out = bits.index_select(dim, idx)
    return out.view(torch.uint16) if x.dtype == torch.uint16 else out


def _padded_size(h: int, w: int, multiple: int, min_size: int) -> tuple[int, int]:
    return _round_up(max(h, min_size), multiple), _round_up(max(w, min_size), multiple)


def pad_to(x: Tensor, multiple: int = 1, min_size: int = 1) -> Tensor:
    """Pad ``x`` at the bottom/right so H and W are multiples of ``multiple`` and >= ``min_size``."""
    h, w = x.shape[-2:]
    th, tw = _padded_size(h, w, multiple, min_size)
    return _pad_axis(_pad_axis(x, -1, tw - w), -2, th - h)


def padded_region(x: Tensor, size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
    """``pad_to(x, ...)[..., r0:r1, c0:c1]`` for ``x`` padded to ``size`` = (H', W'), without
    padding (copying) the whole of ``x``: only a region that reaches into the padding is padded,
    from the rows/columns its reflection reads (padding is separable, so the values are the same)."""
    t, pads = x, []
    for dim, (lo, hi), n, total in ((-2, rows, x.shape[-2], size[0]), (-1, cols, x.shape[-1], size[1])):
        if hi <= n:
            t = t.narrow(dim, lo, hi - lo)
            continue
        amount = total - n
        start = min(lo, max(0, n - 1 - amount))  # a reflection of ``amount`` reads rows n-1-amount..n-1
        t = t.narrow(dim, start, n - start)
        pads.append((dim, amount, amount < n, lo - start, hi - lo))
    for dim, amount, reflect, offset, length in pads:  # pad the (views of the) region only
        t = _pad_axis(t, dim, amount, reflect).narrow(dim, offset, length)
    return t


def _call(fn: Callable[[Tensor], Tensor], t: Tensor, scale: int, channels_last: bool, crop: bool = False) -> Tensor:
    import torch

    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    out = fn(as_float(t))
    want = (t.shape[-2] * scale, t.shape[-1] * scale)
    if crop and out.shape[-2] >= want[0] and out.shape[-1] >= want[1]:
        return out[..., : want[0], : want[1]]
    if tuple(out.shape[-2:]) != want:
        raise ValueError(
            f"network output is {tuple(out.shape[-2:])} for input {tuple(t.shape[-2:])}; "
            f"expected {want} for scale {scale}"
        )
    return out


def _bounds(length: int, tile: int, multiple: int) -> list[int]:
    """Core boundaries 0 = b0 < b1 < ... = length, evenly spread, inner ones on multiples of ``multiple``."""
    n = max(1, math.ceil(length / tile))
    units = length // multiple
    return [round(i * units / n) * multiple for i in range(n)] + [length]


def _axis_weights(bounds: list[int], scale: int, half: float, length: int):
    """Per-tile 1D blend weights over the whole output axis (they sum to 1 at every pixel)."""
    import torch

    u = torch.arange(length * scale, dtype=torch.float64) + 0.5
    raw = []
    for i in range(len(bounds) - 1):
        w = torch.ones_like(u)
        for seam, rising in ((bounds[i], True), (bounds[i + 1], False)):
            if 0 < seam < length:
                s = seam * scale
                if half > 0:
                    ramp = ((u - (s - half * scale)) / (2 * half * scale)).clamp(0, 1)
                else:
                    ramp = (u >= s).double()
                w = w * (ramp if rising else 1 - ramp)
        raw.append(w)
    total = torch.stack(raw).sum(0)
    return [(w / total).float() for w in raw]


def run_tiled(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    multiple: int = 1,
    min_size: int = 1,
    feather: int | None = None,
    pad_multiple: bool = True,
) -> Tensor:
    """Apply ``fn`` to ``x`` (N, C, H, W) whole (``tile=0``) or in tiles; see the module docstring.

    ``feather`` defaults to ``overlap`` (a ramp ``overlap`` pixels wide, leaving ``overlap/2``
    clean context). ``tile`` and ``overlap`` are rounded up to multiples of ``multiple``.
    Returns (N, C', H*scale, W*scale) in the dtype ``fn`` returns (blending is done in fp32).
    """
    import torch

    bands = list(iter_tiled(fn, x, scale=scale, tile=tile, overlap=overlap, multiple=multiple,
                            min_size=min_size, feather=feather, pad_multiple=pad_multiple))
    return bands[0][1] if len(bands) == 1 else torch.cat([b for _, b in bands], dim=-2)


def iter_tiled(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    multiple: int = 1,
    min_size: int = 1,
    feather: int | None = None,
    pad_multiple: bool = True,
) -> Iterator[tuple[int, Tensor]]:
    """Like :func:`run_tiled`, but yields finished output row bands ``(y0, band)`` top to bottom.

    Only one row of tiles is held in fp32 at a time, so callers that write each band into their
    own (e.g. uint8) output buffer need memory for that buffer plus one band, not a full-size
    fp32 copy of the output. The input is not padded as a whole (:func:`padded_region` pads the
    edge tiles), and with an integer ``x`` (see the module docstring) only the tile being run is float.
    """
    import torch

    if tile < 0 or overlap < 0:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must not be negative")
    if tile and tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    multiple, min_size = max(1, int(multiple)), max(1, int(min_size))
    h, w = x.shape[-2:]
    oh, ow = h * scale, w * scale
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    pad_m = multiple if pad_multiple else 1
    hp, wp = _padded_size(h, w, pad_m, min_size)
    tile_m = _round_up(tile, multiple)
    crop = not pad_multiple
    if tile == 0 or (hp <= tile_m and wp <= tile_m):
        yield 0, _call(fn, pad_to(x, pad_m, min_size), scale, channels_last, crop)[..., :oh, :ow]
        return

    ov = _round_up(overlap, multiple)
    feather = overlap if feather is None else feather
    half = min(feather / 2, ov)
    min_ext = _round_up(min_size, multiple)
    ys, xs = _bounds(hp, tile_m, multiple), _bounds(wp, tile_m, multiple)
    wy, wx = _axis_weights(ys, scale, half, hp), _axis_weights(xs, scale, half, wp)

    def extent(b: list[int], i: int, length: int) -> tuple[int, int]:
        lo, hi = max(0, b[i] - ov), min(length, b[i + 1] + ov)
        if hi - lo < min_ext:  # grow inside the image rather than pad mid-image
            hi = min(length, lo + min_ext)
            lo = max(0, hi - min_ext)
        return lo, hi

    band = None  # fp32 accumulator for output rows [band_lo, band_lo + band.shape[-2])
    band_lo = 0
    out_dtype = None
    for i in range(len(ys) - 1):
        y0, y1 = extent(ys, i, hp)
        lo, hi = y0 * scale, y1 * scale
        row = None
        for j in range(len(xs) - 1):
            x0, x1 = extent(xs, j, wp)
            t = _call(fn, padded_region(x, (hp, wp), (y0, y1), (x0, x1)), scale, channels_last, crop)
            if row is None:
                out_dtype = t.dtype
                row = torch.zeros((*t.shape[:-2], hi - lo, wp * scale), dtype=torch.float32, device=t.device)
            mask = wy[i][lo:hi, None] * wx[j][None, x0 * scale : x1 * scale]
            row[..., x0 * scale : x1 * scale] += t.float() * mask.to(t.device)
        if band is None:
            band, band_lo = row, lo
        else:  # rows overlap the previous band's tail: extend it, then add
            keep = band.shape[-2]
            grow = hi - (band_lo + keep)
            if grow > 0:
                band = torch.cat([band, row.new_zeros((*row.shape[:-2], grow, row.shape[-1]))], dim=-2)
            band[..., lo - band_lo : hi - band_lo, :] += row
        later = [extent(ys, k, hp)[0] for k in range(i + 1, len(ys) - 1)]
        done = min(later) if later else hp  # no later tile row reaches above this input row
        done = max(band_lo, min(done * scale, band_lo + band.shape[-2]))
        if done > band_lo:
            y_end = min(done, oh)
            if y_end > band_lo:
                yield band_lo, band[..., : y_end - band_lo, :ow].to(out_dtype)
            band = band[..., done - band_lo :, :]
            band_lo = done


def default_budget_bytes() -> int:
    """The activation budget: ``GANTOOLS_TILE_BUDGET_MB`` (MiB) or 384 MiB."""
    env = os.environ.get("GANTOOLS_TILE_BUDGET_MB")
    try:
        mb = float(env) if env else DEFAULT_BUDGET_MB
    except ValueError:
        raise ValueError(f"GANTOOLS_TILE_BUDGET_MB must be a number of MiB, not {env!r}") from None
    return int(mb * 2**20)


def budget_pixels(scale: int, *, budget: int | None = None, bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL) -> int:
    """The most input pixels a network of ``scale`` may run on whole within the activation budget
    (``budget`` bytes, default :func:`default_budget_bytes`): :func:`auto_tile` returns 0 exactly up to here."""
    budget = default_budget_bytes() if budget is None else budget
    return budget // (bytes_per_pixel * max(1, scale) ** 2)


def auto_tile(
    h: int,
    w: int,
    scale: int,
    *,
    budget_bytes: int | None = None,
    bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL,
) -> int:
    """0 when an ``h`` x ``w`` image fits the activation budget whole, else a tile size.

    The estimate is ``bytes_per_pixel`` per output pixel. The budget defaults to
    ``GANTOOLS_TILE_BUDGET_MB`` (MiB) or 384 MiB (:func:`default_budget_bytes`). Tiles are sized with
    ``TILE_HEADROOM`` times that estimate, since the tiled path also holds a full-width band of
    blended rows and per-tile temporaries (measured: 128 px tiles keep a 4000x3000 x4 run at
    output + 1.2 GB). Tile sizes are multiples of 32, at least 64.
    """
    if budget_bytes is None:
        budget_bytes = default_budget_bytes()
    per_input_px = bytes_per_pixel * max(1, scale) ** 2
    if h * w * per_input_px <= budget_bytes:
        return 0
    side = int(math.sqrt(budget_bytes / (per_input_px * TILE_HEADROOM)))
    return max(MIN_TILE, side // 32 * 32)


def is_oom(exc: BaseException) -> bool:
    """True for the RuntimeErrors torch raises when an allocation fails (CPU or GPU)."""
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in msg for m in OOM_MARKERS)
