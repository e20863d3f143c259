"""Where the faces generator's synthesis network runs: torch, or its exported graph (``--backend``).

``generate``, ``interpolate`` and latent-direction renders make every ``w`` in torch as before
(seeds, mapping, labels, truncation: the contract of :mod:`gantools_faces.generate`); only the
synthesis pass ``w (N, w_dim) -> image (N, 3, R, R)`` in [0, 1] goes through :class:`Synthesis`,
:data:`~gantools_faces.generate.BATCH` faces at a time as before. The backend is chosen like the
runner's (:func:`gantools.backends.resolve_backend`, family ``facegan`` of the measured table,
``GANTOOLS_BACKEND`` for ``auto``, CPU only). ``onnxruntime`` and ``openvino`` run the synthesis
network exported once to the graph cache of :mod:`gantools.backends.graphs` (variant
``synthesis`` of the generator's key: a sha256 of all its weights), ONNX Runtime in fp32 and
OpenVINO at the face model's precision (bf16 as a precision hint). The graph is exported (or
found) on the first render, so loading the plugin for projection or ``gantools export`` costs
nothing; a named backend that cannot export raises :class:`~gantools.export.ExportError` then,
``auto`` falls back to torch. Projection keeps torch (it needs gradients).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gantools.backends.graphs import Graphs, Run, compiled
from gantools.export import Exportable
from gantools.nn.descriptor import ModelDescriptor

VARIANT = "synthesis"


class SynthesisNet(nn.Module):
    """The synthesis network as exported: ``w (N, w_dim) -> image (N, 3, R, R)`` in [0, 1], float32
    (constant noise, as :meth:`gantools_faces.generate.FaceModel.render`)."""

    def __init__(self, synthesis: nn.Module) -> None:
        super().__init__()
        self.synthesis = synthesis
        self.dtype = torch.float32

    def forward(self, w: Tensor) -> Tensor:
        return self.synthesis(w.to(self.dtype), "const").float().clamp(0, 1)

    def half_(self) -> None:
        """Synthesis in float16 (input and output stay float32)."""
        self.synthesis.half()
        self.dtype = torch.float16


def synthesis_exportable(generator: nn.Module) -> Exportable:
    """:class:`SynthesisNet` of a FaceGAN ``generator``, checked on mapped ``w`` of random latents."""
    g = copy.deepcopy(generator).float().eval().to(memory_format=torch.contiguous_format)

    def sized(n: int) -> tuple:
        gen = torch.Generator().manual_seed(n)
        z = torch.randn(n, g.z_dim, generator=gen)
        age = torch.randint(0, g.num_ages, (n,), generator=gen)
        gender = torch.randint(0, g.num_genders, (n,), generator=gen)
        with torch.no_grad():
            return (g.mapping(z, age, gender, update_w_avg=False).float(),)

    def dynamic() -> tuple:
        return ({0: torch.export.Dim("batch", min=1)},)

    meta = {"input": f"w: (N, {g.w_dim}) float32, the mapping network's output (truncated)",
            "output": f"image: (N, 3, {g.resolution}, {g.resolution}) RGB float32 in [0, 1]",
            "resolution": str(g.resolution)}
    return Exportable(SynthesisNet(g.synthesis).eval(), ["w"], ["image"], sized(2), dynamic, [sized(1), sized(3)],
                      meta, SynthesisNet.half_)


def descriptor(face: Any) -> ModelDescriptor:
    """The ``facegan`` descriptor of ``face`` (a :class:`~gantools_faces.generate.FaceModel`) holding its
    generator: the config it was loaded with, else the one its weights show."""
    from gantools.nn import describe_arch, detect_arch

    config = face.config if face.config is not None else detect_arch(face.G.state_dict()).config
    desc = describe_arch("facegan", config)
    desc.model = face.G
    return desc


class SynthesisGraphs(Graphs):
    """The cached graphs of a faces generator (``desc`` from :func:`descriptor`): one variant,
    :data:`VARIANT` (:func:`synthesis_exportable`), keyed like every graph by the weights' sha256."""

    def __init__(self, desc: ModelDescriptor) -> None:
        super().__init__(desc)
        self.makers = {VARIANT: lambda: synthesis_exportable(desc.model)}
        self.frozen_stats = False


def compiler(name: str) -> Any:
    """``compile(file, precision, threads) -> Run`` of graph backend ``name`` (OpenVINO imported here)."""
    if name == "onnxruntime":
        from gantools.backends.ort_backend import compile_session

        return lambda file, precision, threads: compile_session(file, threads)
    from gantools.backends.openvino_backend import compile_model, core

    core()  # import and set up OpenVINO in the thread that renders (see gantools.backends.openvino_backend)
    return compile_model


class GraphSynthesis:
    """The exported synthesis network of ``desc`` in graph backend ``name`` at ``precision`` (the face
    model's; ONNX Runtime runs fp32), exported or found in the cache now."""

    def __init__(self, desc: ModelDescriptor, name: str, precision: str) -> None:
        self.name = name
        self.precision = "fp32" if name == "onnxruntime" else precision
        self.compile = compiler(name)
        self.graphs = SynthesisGraphs(desc)
        self.graphs.path(VARIANT)  # export (or find) now: an unexportable network fails here

    def file(self) -> Path:
        """The cached graph file."""
        return self.graphs.file(VARIANT)

    def __call__(self, w: Tensor) -> Tensor:
        run: Run = compiled(self.name, self.graphs, VARIANT, self.precision, torch.get_num_threads(), self.compile)
        return torch.from_numpy(run([w.detach().float().cpu().contiguous().numpy()])[0])


class Synthesis:
    """``w (N, w_dim) -> image (N, 3, R, R)`` float32 in [0, 1] of ``face`` through backend ``requested``.

    :attr:`name` is the backend resolved at construction (``BackendUnavailable``: not installed,
    or a graph backend off the CPU); a graph backend is built on the first call, and where
    ``auto`` chose one that cannot export, torch runs instead (:attr:`name` says so then)."""

    def __init__(self, face: Any, requested: str = "auto") -> None:
        from gantools.backends import resolve_backend
        from gantools.nn import describe_arch

        self.face, self.requested = face, requested
        family = describe_arch("facegan", face.config).backend_family  # the table's row, as the runner reads it
        self.name = resolve_backend(requested, family, face.precision, face.device.type)
        self.graph: GraphSynthesis | None = None

    def __call__(self, w: Tensor) -> Tensor:
        if self.name == "torch":
            return self.face.render(w)
        if self.graph is None:
            from gantools.export import ExportError

            try:
                self.graph = GraphSynthesis(descriptor(self.face), self.name, self.face.precision)
            except ExportError:
                if self.requested != "auto":  # asked for by name: the one-line export error is the answer
                    raise
                self.name = "torch"
                return self.face.render(w)
        return self.graph(w)


__all__ = ["GraphSynthesis", "Synthesis", "SynthesisGraphs", "SynthesisNet", "VARIANT", "descriptor",
           "synthesis_exportable"]
