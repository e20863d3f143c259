"""The ``gantools run`` flags for videos (declared here, added by :mod:`gantools.cli.run`).

Their values go to :class:`gantools.batch.BatchOptions` (group ``batch``), like the platform's
batch flags; they only matter for video inputs (``--batch-frames``: and animations). Nothing here imports PyAV.
"""

from __future__ import annotations

from typing import Any

from gantools.cli.options import RUN, Param

VIDEO_PANEL = "Video (PyAV: the video extra)"


def _param(name: str, type_: Any, default: Any, help: str, *decls: str, **extra: Any) -> Param:
    return Param(name, type_, default, help, decls, group="batch", commands=frozenset({RUN}), extra=extra)


#: the video flags of ``gantools run``
VIDEO_PARAMS: tuple[Param, ...] = (
    _param("frames", bool, False, "Write each video's processed frames as numbered images NAME_000001.png "
           "into the -o folder instead of a video.", "--frames"),
    _param("codec", str, None, "Video encoder of the bundled FFmpeg [default: libx264; libvpx-vp9 for .webm].",
           metavar="NAME"),
    _param("crf", int, None, "Constant rate factor (lower = better, larger) [default: 18 for libx264].",
           min=0, max=63),
    _param("pix_fmt", str, None, "Pixel format of the encoded video [default: yuv420p].", metavar="FMT"),
    _param("batch_frames", str, "auto", "Video and animation frames per network pass (same results). N: up to "
           "N, auto: up to 8; either way no more than fit the memory budget in which one frame runs untiled "
           "(GANTOOLS_TILE_BUDGET_MB, 384 MiB: about 1.5 megapixels of input at x1, 0.1 at x4). Frames that "
           "are tiled, and plugins without a network (resize), go one at a time; 1 = one frame at a time.",
           metavar="N|auto"),
)
