"""Frames through a network plugin in batches: one (N, C, H, W) network pass for N frames.

A plugin's ``process(image)`` takes one image; a network plugin calls its
:class:`~gantools.runner.ImageRunner` (``plugin.runner``) inside it, with its own steps around
the call (stylize: ``--size``, colour, blend; upscale: alpha, ``--outscale``). :func:`process_frames`
runs N frames through such a plugin around one batched network call, the plugin unchanged:

1. *capture*: ``plugin.process`` of each frame with a stand-in for ``plugin.runner`` whose
   network call keeps (a copy of) the image it gets and returns zeros of the result's shape and
   dtype; the results of this round are dropped (a frame whose ``process`` made no network call,
   e.g. ``stylize --strength 0``, keeps its result and is not run again);
2. the runner computes the kept images together (:meth:`ImageRunner.batch`: stacks that fit
   its memory budget, tiled frames one by one), grouped by shape;
3. *replay*: ``plugin.process`` of each frame again; each network call gets the result computed
   in step 2 for the same image (compared; a different image is computed there and then), so
   the plugin's own steps run on the real results.

So the results are those of ``[plugin.process(f) for f in frames]`` wherever the runner's batch
equals its one-image calls (``tests/test_video_batch.py``). Instance-norm statistics frozen over
a clip (:mod:`gantools.video.clipstats`) live in the runner's tiler, so every frame of a batch uses
the same ones. The plugin's steps around the network run twice (the first time on zeros): cheap
next to the network. Plugins without a runner (``resize``, ``faces``), a network call with a
``transform``, and a batch of one frame run frame by frame. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: ``--batch-frames auto``: at most this many frames per batch (the runner's budget may allow fewer)
AUTO_FRAMES = 8


def batch_frames(value: int | str | None) -> int | None:
    """``--batch-frames`` as a number of frames, ``None`` for ``auto``; ``ValueError`` (naming
    the option) for anything else."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        frames = int(value)
    except (TypeError, ValueError):
        frames = 0
    if frames < 1 or (isinstance(value, float) and value != frames):
        raise ValueError(f"option --batch-frames: {value!r} is not a number of frames (1 or more) or auto")
    return frames


def frames_per_batch(plugin: Any, value: int | str | None, shape: tuple[int, ...]) -> int:
    """How many frames of ``shape`` :func:`process_frames` gets at once: ``--batch-frames``
    (``auto``: :data:`AUTO_FRAMES`), but no more than the runner runs in one pass
    (:meth:`~gantools.runner.ImageRunner.per_pass`: its memory budget; 1 when such a frame is
    tiled), so a batch holds a bounded number of pixels; 1 for a plugin without a runner."""
    if not batchable(plugin):
        return 1
    frames = batch_frames(value)
    frames = AUTO_FRAMES if frames is None else frames
    return max(1, min(frames, plugin.runner.per_pass(shape[0], shape[1])))


def batchable(plugin: Any) -> bool:
    """Whether ``plugin`` (set up) runs its network through ``plugin.runner``, an
    :class:`~gantools.runner.ImageRunner` (or anything with its ``batch`` and ``per_pass``)."""
    runner = getattr(plugin, "runner", None)
    return callable(getattr(runner, "batch", None)) and callable(getattr(runner, "per_pass", None))


@dataclass
class _Call:
    """One network call of the capture round: its input (a copy) and, once computed, its result."""

    image: np.ndarray
    result: np.ndarray | None = None


class _Unbatchable(Exception):
    """A network call this module cannot defer (one with a ``transform``)."""


class _StandIn:
    """Stands in for ``plugin.runner`` during :func:`process_frames` (see the module docstring);
    everything but the network call and :meth:`plane` is the runner's own."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self.replaying = False
        self.calls: list[_Call] = []
        self.planes: list[_Call] = []
        self._next = {"calls": 0, "planes": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def __call__(self, image: np.ndarray, transform: Any = None) -> np.ndarray:
        if transform is not None:
            if not self.replaying:
                raise _Unbatchable
            return self._runner(image, transform)
        if self.replaying:
            return self._replay("calls", image, self._runner)
        from gantools.tensor.convert import split

        self.calls.append(_Call(image.copy()))
        h, w = image.shape[:2]
        s = self._runner.scale
        return np.zeros((h * s, w * s, split(image)[0].shape[2]), image.dtype)

    def plane(self, plane: np.ndarray) -> np.ndarray:
        """The runner's :meth:`~gantools.runner.ImageRunner.plane`, computed once for both rounds."""
        if self.replaying:
            return self._replay("planes", plane, self._runner.plane)
        self.planes.append(_Call(plane.copy(), self._runner.plane(plane)))
        return self.planes[-1].result  # type: ignore[return-value]

    def _replay(self, kind: str, image: np.ndarray, compute: Any) -> np.ndarray:
        """The next kept result of ``kind`` if it was computed for ``image``, else ``compute(image)``."""
        calls, k = getattr(self, kind), self._next[kind]
        if k < len(calls) and calls[k].image.shape == image.shape and np.array_equal(calls[k].image, image):
            self._next[kind] = k + 1
            result, calls[k].result = calls[k].result, None
            return result
        return compute(image)

    def compute(self) -> None:
        """Step 2: every kept network input through ``runner.batch``, one group per shape and dtype."""
        groups: dict[tuple, list[_Call]] = {}
        for call in self.calls:
            groups.setdefault((call.image.shape, call.image.dtype.str), []).append(call)
        for group in groups.values():
            for call, result in zip(group, self._runner.batch([c.image for c in group])):
                call.result = result


def process_frames(plugin: Any, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``[plugin.process(f) for f in frames]`` with the plugin's network calls batched (see the
    module docstring); frame by frame for one frame or a plugin that is not :func:`batchable`.
    ``plugin.runner`` is replaced during the call: no other thread may use the plugin meanwhile
    (media jobs run alone, as :func:`gantools.video.clipstats.clip_statistics` also requires)."""
    if len(frames) < 2 or not batchable(plugin):
        return [plugin.process(f) for f in frames]
    runner = plugin.runner
    stand_in = _StandIn(runner)
    plugin.runner = stand_in
    try:
        final: list[np.ndarray | None] = []
        try:
            for frame in frames:
                made = len(stand_in.calls)
                result = plugin.process(frame)
                final.append(result if len(stand_in.calls) == made else None)  # no network call: final
        except _Unbatchable:
            plugin.runner = runner
            return [plugin.process(f) for f in frames]
        stand_in.compute()
        stand_in.replaying = True
        return [plugin.process(f) if done is None else done for f, done in zip(frames, final)]
    finally:
        plugin.runner = runner


__all__ = ["AUTO_FRAMES", "batch_frames", "batchable", "frames_per_batch", "process_frames"]
