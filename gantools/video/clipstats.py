"""No flicker: instance-norm statistics frozen over a whole clip.

An instance-norm generator (the ``stylize`` networks) normalises each image with its own
statistics, so in a video the tone of every frame follows that frame's content and jumps when
the content changes (a bright object enters, the camera pans). :func:`clip_statistics` instead
takes a few sample frames spread over the clip (as the plugin prepares them for its network),
runs the network once on all of them as one batch with every norm layer normalising by the mean
and variance of all their pixels together, and keeps those statistics for every frame of the
clip: one network, one set of statistics, so the tone only changes where the content does.

It works through the runner's public parts: a plugin that holds an
:class:`~gantools.runner.ImageRunner` (``plugin.runner``) whose tiler is a
:class:`~gantools.runner.FrozenStatsTiler` (networks with
:class:`~gantools.nn.layers.norm.TileableInstanceNorm` layers) gets a :class:`ClipStatsTiler` for
the duration of the clip. Tiled frames use the clip's statistics too (not each frame's own), so
tiling adds no tone jumps either. Other plugins (no instance norm) are left alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from gantools.runner import FrozenStatsTiler

if TYPE_CHECKING:
    from torch import Tensor

    from gantools.nn.descriptor import ModelDescriptor

#: sample frames spread over the clip whose pooled statistics every frame uses
SAMPLES = 8


@dataclass
class ClipStatsTiler(FrozenStatsTiler):
    """A :class:`FrozenStatsTiler` whose statistics come from a whole clip.

    ``mode`` ``"capture"``: each call keeps its input (downscaled so that all samples together
    have at most :attr:`stats_pixels` pixels) and returns zeros (the result is not used);
    :meth:`freeze` then runs the network once on the kept inputs as one batch, every norm layer
    normalising with the mean and variance of all their pixels together (so each layer's
    statistics are measured on inputs normalised the clip's way), and keeps those; ``"frozen"``:
    every call uses them, whole or tiled.
    """

    mode: str = "capture"
    #: how many samples will be captured (their pixel budget is shared)
    samples: int = SAMPLES
    _inputs: list[Any] = field(default_factory=list)
    _model: Any = None
    _stats: list[tuple[Any, Any]] = field(default_factory=list)
    #: whether the runner's network function bypasses the torch module (a graph backend): found
    #: on the first frozen call, then the module is run directly
    _graph: bool = False

    def bands(self, net: Callable[[Tensor], Tensor], x: Tensor, model: ModelDescriptor, tile: int) -> Any:
        """One band: zeros while capturing, else the network with the clip's statistics."""
        if self.mode == "capture":
            yield 0, self._capture(x, model)
            return
        yield 0, self._frozen(net, x, model, tile)

    def _capture(self, x: Tensor, model: ModelDescriptor) -> Tensor:
        """Keep ``x`` (downscaled to its share of the pixel budget) for :meth:`freeze`; zeros out."""
        from gantools.runner import resize
        from gantools.tensor.convert import as_float
        from gantools.tensor.tiling import pad_to

        h, w = x.shape[-2:]
        f = min(1.0, (self.stats_pixels / max(1, self.samples) / (h * w)) ** 0.5)
        small = as_float(x) if f >= 1.0 else resize(x, max(1, round(h * f)), max(1, round(w * f)))
        size = model.size
        small = pad_to(small, size.multiple if size.pad else 1, size.minimum)
        if self._inputs and small.shape != self._inputs[0].shape:
            raise ValueError("sample frames of different sizes")
        self._inputs.append(small)
        self._model = model
        return x.new_zeros(x.shape[0], model.out_channels, h * model.scale, w * model.scale)

    @property
    def measured(self) -> int:
        """How many sample images were kept."""
        return len(self._inputs)

    def freeze(self) -> None:
        """Measure the clip's statistics on the kept samples (see the class docstring) and switch
        to ``"frozen"``. ``RuntimeError`` if nothing was captured."""
        import torch

        if not self._inputs:
            raise RuntimeError("no sample frame was measured")
        norms = _norms(self._model)

        def pooled(module: Any, args: tuple) -> None:
            var, mean = torch.var_mean(args[0].float(), dim=(0, 2, 3), keepdim=True, unbiased=False)
            module.mode, module.stats = "frozen", (mean, var)

        hooks = [m.register_forward_pre_hook(pooled) for m in norms]
        try:
            with torch.no_grad():
                self._model.model(torch.cat(self._inputs))  # in torch, fp32, whatever the backend
            self._stats = [m.stats for m in norms]
        finally:
            for hook in hooks:
                hook.remove()
            for m in norms:
                m.mode, m.stats = "instance", None
        self._inputs = []
        self.mode = "frozen"

    def _frozen(self, net: Callable[[Tensor], Tensor], x: Tensor, model: ModelDescriptor, tile: int) -> Tensor:
        """The network on ``x`` with every norm using the clip's statistics (tiled when asked).

        ``net`` is what the runner passes (its network function); when it does not run the torch
        module (an exported-graph backend, which keeps its own statistics), the module runs in
        torch, fp32, so the clip's statistics still apply (from then on without calling ``net``)."""
        from gantools.tensor.tiling import run_tiled

        size = model.size
        tiled = bool(tile) and max(x.shape[-2:]) > tile
        tile = max(tile, self.min_tile(model)) if tiled else 0
        norms = _norms(model)
        for m, (mean, var) in zip(norms, self._stats):
            m.mode, m.stats = "frozen", (mean.to(x.device), var.to(x.device))
        calls: list[int] = []
        hook = norms[0].register_forward_pre_hook(lambda module, args: calls.append(1))

        def run(fn: Callable[[Tensor], Tensor]) -> Tensor:
            return run_tiled(fn, x, scale=model.scale, tile=tile, overlap=self.overlap(model) if tiled else 0,
                             multiple=size.multiple, min_size=size.minimum, pad_multiple=size.pad,
                             **({"feather": self.feather} if tiled else {}))

        try:
            out = None if self._graph else run(net)
            if not calls:
                self._graph = True
                out = run(lambda t: model.model(t.float()).float())
            return out
        finally:
            hook.remove()
            for m in norms:
                m.mode, m.stats = "instance", None


def _norms(model: ModelDescriptor) -> list:
    from gantools.nn.layers.norm import TileableInstanceNorm

    return [m for m in model.model.modules() if isinstance(m, TileableInstanceNorm)]


def freezable(plugin: Any) -> bool:
    """Whether ``plugin`` runs an instance-norm network whose statistics can be frozen (it must be
    set up: ``plugin.ensure_setup()``)."""
    runner = getattr(plugin, "runner", None)
    return isinstance(getattr(runner, "tiler", None), FrozenStatsTiler)


def sample_indices(total: int, samples: int = SAMPLES) -> list[int]:
    """``samples`` frame indices spread evenly over ``total`` frames (each frame's middle of its share)."""
    if total <= 0:
        return []
    count = min(samples, total)
    return sorted({min(total - 1, int((k + 0.5) * total / count)) for k in range(count)})


@contextmanager
def clip_statistics(plugin: Any, samples: Sequence[np.ndarray]) -> Iterator[bool]:
    """Inside the block, ``plugin.process`` normalises with statistics pooled over ``samples``
    (frames as the plugin takes them). Yields ``True`` when it applies (see :func:`freezable`),
    ``False`` for plugins without instance norm (nothing changes). The plugin's own tiler is back
    after the block."""
    if not samples or not freezable(plugin):
        yield False
        return
    runner = plugin.runner
    original = runner.tiler
    clip = ClipStatsTiler(feather=original.feather, stats_pixels=original.stats_pixels, samples=len(samples))
    runner.tiler = clip
    progress = plugin.progress
    plugin.progress = None  # the sample runs are not frames of the output
    try:
        for frame in samples:
            plugin.process(frame)
        plugin.progress = progress
        if not clip.measured:  # the plugin did not run its network (stylize --strength 0)
            runner.tiler = original
            yield False
            return
        clip.freeze()
        yield True
    finally:
        plugin.progress = progress
        runner.tiler = original


__all__ = ["SAMPLES", "ClipStatsTiler", "clip_statistics", "freezable", "sample_indices"]
