"""The ONNX graphs behind the ``onnxruntime`` and ``openvino`` backends, exported once and cached.

:class:`Graphs` exports a loaded network with :func:`gantools.export.save_exportable` (the export
command's exporter and its ONNX Runtime check against torch) in the runner's convention: input
``input`` (N, C, H, W) float32, dynamic batch and size, output ``output`` unclamped float32
(H*scale, W*scale). A network with :class:`~gantools.nn.layers.norm.TileableInstanceNorm` layers
has two graphs: ``net`` also outputs every norm's statistics (``norm_mean``, ``norm_var``: (N, sum C, 1, 1)),
``frozen`` takes them as inputs (batch 1) and uses them instead of its input's: the runner's
frozen-statistics tiling (:class:`gantools.runner.FrozenStatsTiler`) on any backend.

Cache: ``cache_dir() / "graphs" / ARCH-KEY-VARIANT.onnx``, written atomically. ``KEY`` is a
sha256 of the loaded network (every parameter and buffer: names, dtypes, shapes, bytes; its
``repr``; architecture, config, scale and size requirements), the opset, the graph precision
(fp32: bf16 is a compile-time hint of OpenVINO) and the gantools/torch versions and
:data:`FORMAT`. Changed weights (from any source: ``--weights``, shipped, ncnn) therefore give a
new key and a new export; options that do not change the network share one graph. A file that
does not load is deleted and exported again (:meth:`Graphs.discard`). Within a process each graph
is exported or found once, and each (graph, backend, precision, threads) compiled once.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from gantools.export import DEFAULT_OPSET, Exportable, image_exportable, save_exportable
from gantools.nn.layers.norm import TileableInstanceNorm

if TYPE_CHECKING:
    from gantools.nn.descriptor import ModelDescriptor

#: bump to invalidate every cached graph (a change of the wrappers below)
FORMAT = 1
GRAPH_PRECISION = "fp32"
Run = Callable[[Sequence[np.ndarray]], list[np.ndarray]]

_LOCK = threading.RLock()
_FOUND: dict[str, Path] = {}  #: key -> file, exported or found in this process
_COMPILED: OrderedDict[tuple, Run] = OrderedDict()  #: compiled graphs, the most recent last
MAX_COMPILED = 16


def cache_root() -> Path:
    """``cache_dir() / "graphs"`` (:func:`gantools.models.cache_dir`)."""
    from gantools.models import cache_dir

    return cache_dir() / "graphs"


def _norms(module: nn.Module) -> list[TileableInstanceNorm]:
    return [m for m in module.modules() if isinstance(m, TileableInstanceNorm)]


def fingerprint(desc: ModelDescriptor) -> str:
    """sha256 of the network as loaded (see the module docstring)."""
    h = hashlib.sha256()
    facts = {"arch": desc.arch, "config": desc.config, "scale": desc.scale, "in": desc.in_channels,
             "out": desc.out_channels, "size": dataclasses.asdict(desc.size)}
    h.update(json.dumps(facts, sort_keys=True, default=str).encode())
    h.update(repr(desc.model).encode())
    tensors = [*desc.model.named_parameters(remove_duplicate=False), *desc.model.named_buffers(remove_duplicate=False)]
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class StatsOut(nn.Module):
    """``net`` (a padded network) that also returns its norms' statistics: ``(y, mean, var)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.norms = _norms(net)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        for m in self.norms:
            m.mode, m.stats = "capture", None
        try:
            y = self.net(x)
            mean = torch.cat([m.stats[0] for m in self.norms], dim=1)
            var = torch.cat([m.stats[1] for m in self.norms], dim=1)
        finally:
            for m in self.norms:
                m.mode, m.stats = "instance", None
        return y, mean, var


class StatsIn(nn.Module):
    """``net`` with every norm's statistics given: ``(x, mean, var) -> y`` (stats from :class:`StatsOut`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.norms = _norms(net)

    def forward(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        sizes = [m.num_features for m in self.norms]
        for m, mu, v in zip(self.norms, torch.split(mean, sizes, dim=1), torch.split(var, sizes, dim=1)):
            m.mode, m.stats = "frozen", (mu, v)
        try:
            return self.net(x)
        finally:
            for m in self.norms:
                m.mode, m.stats = "instance", None


def exportables(desc: ModelDescriptor) -> dict[str, Callable[[], Exportable]]:
    """``{variant: make exportable}``: ``net``, and ``frozen`` for networks with tileable norms."""
    if not _norms(desc.model):
        return {"net": lambda: image_exportable(desc, clamp=False)}

    def net() -> Exportable:
        ex = image_exportable(desc, clamp=False)
        return dataclasses.replace(ex, module=StatsOut(ex.module).eval(), output_names=["output", "norm_mean", "norm_var"])

    def frozen() -> Exportable:
        ex = image_exportable(desc, clamp=False)
        capture = StatsOut(copy.deepcopy(ex.module)).eval()

        def with_stats(inputs: tuple) -> tuple:
            with torch.no_grad():
                _, mean, var = capture(inputs[0][:1])
            return (inputs[0], mean, var)

        base = ex.dynamic
        return dataclasses.replace(ex, module=StatsIn(ex.module).eval(), input_names=["input", "norm_mean", "norm_var"],
                                   example=with_stats(ex.example), checks=[with_stats(c) for c in ex.checks],
                                   dynamic=lambda: (base()[0], None, None))

    return {"net": net, "frozen": frozen}


class Graphs:
    """The cached ONNX graphs of one loaded network (see the module docstring)."""

    def __init__(self, desc: ModelDescriptor, opset: int = DEFAULT_OPSET) -> None:
        import gantools

        self.desc, self.opset = desc, opset
        self.makers = exportables(desc)
        self.frozen_stats = "frozen" in self.makers
        facts = {"weights": fingerprint(desc), "opset": opset, "precision": GRAPH_PRECISION, "format": FORMAT,
                 "gantools": gantools.__version__, "torch": torch.__version__.split("+")[0]}
        self.key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
        self.weights_sha256 = facts["weights"]

    def file(self, variant: str) -> Path:
        """Where ``variant``'s graph is cached (it may not exist yet)."""
        return cache_root() / f"{self.desc.arch}-{self.key[:24]}-{variant}.onnx"

    def path(self, variant: str = "net") -> Path:
        """``variant``'s graph file: found in the cache or exported now (once per process)."""
        with _LOCK:
            file = self.file(variant)
            known = _FOUND.get(str(file))
            if known is not None and known.exists():
                return known
            if not file.exists():
                export(self, variant, file)
            _FOUND[str(file)] = file
            return file

    def discard(self, variant: str) -> None:
        """Forget and delete ``variant``'s cached file (it did not load): the next :meth:`path` exports it."""
        with _LOCK:
            file = self.file(variant)
            _FOUND.pop(str(file), None)
            with contextlib.suppress(OSError):
                file.unlink()


def export(graphs: Graphs, variant: str, file: Path) -> None:
    """Export ``variant`` of ``graphs`` to ``file`` (atomic, checked in ONNX Runtime)."""
    ex = graphs.makers[variant]()
    save_exportable(ex, graphs.desc.arch, graphs.desc.config, file, opset=graphs.opset,
                    sha256=graphs.weights_sha256, extra_metadata={"gantools_backend_graph": variant})


def compiled(backend: str, graphs: Graphs, variant: str, precision: str, threads: int,
             compile: Callable[[Path, str, int], Run]) -> Run:
    """``compile(file, precision, threads)`` of ``variant``, once per process; a cached file
    that fails to load is exported again once."""
    key = (backend, graphs.key, variant, precision, threads)
    with _LOCK:
        run = _COMPILED.get(key)
        if run is None:
            try:
                run = compile(graphs.path(variant), precision, threads)
            except Exception:  # noqa: BLE001 - a damaged cache file: export again, then let errors raise
                graphs.discard(variant)
                run = compile(graphs.path(variant), precision, threads)
            _COMPILED[key] = run
            while len(_COMPILED) > MAX_COMPILED:
                _COMPILED.popitem(last=False)
        _COMPILED.move_to_end(key)
        return run


def _arrays(tensors: Sequence[Any]) -> list[np.ndarray]:
    return [t if isinstance(t, np.ndarray) else t.detach().float().cpu().contiguous().numpy() for t in tensors]


class GraphNetwork:
    """A graph backend's network at one precision (:class:`gantools.backends.base.Network`)."""

    def __init__(self, backend: GraphBackend, precision: str) -> None:
        self.backend, self.precision = backend, precision

    def prepare(self, x: Tensor) -> Tensor:
        return x

    def run(self, variant: str, *inputs: Any) -> list[np.ndarray]:
        return self.backend.run(variant, self.precision, _arrays(inputs))

    def __call__(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self.run("net", x)[0])

    @contextlib.contextmanager
    def frozen(self, small: Tensor) -> Iterator[Callable[[Tensor], Tensor]]:
        if not self.backend.graphs.frozen_stats:
            raise RuntimeError(f"the {self.backend.graphs.desc.arch} network has no tileable norms")
        _, mean, var = self.run("net", small)
        yield lambda t: torch.from_numpy(self.run("frozen", t, mean, var)[0])


class GraphBackend:
    """A backend that runs the exported graph: subclasses set ``name`` and :meth:`compile`."""

    name = "graph"

    def __init__(self, desc: ModelDescriptor) -> None:
        self.graphs = Graphs(desc)
        self.graphs.path("net")  # export (or find) now: an unexportable network fails at set-up

    def precision(self, precision: str) -> str:
        """The precision this backend really runs for a requested one."""
        return precision

    def compile(self, file: Path, precision: str, threads: int) -> Run:
        """A function running the graph in ``file`` on a list of input arrays."""
        raise NotImplementedError

    def run(self, variant: str, precision: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        run = compiled(self.name, self.graphs, variant, self.precision(precision), torch.get_num_threads(),
                       self.compile)
        return run(arrays)

    def bind(self, precision: str) -> GraphNetwork:
        return GraphNetwork(self, self.precision(precision))


__all__ = ["FORMAT", "GraphBackend", "GraphNetwork", "Graphs", "StatsIn", "StatsOut", "cache_root", "exportables",
           "fingerprint"]
