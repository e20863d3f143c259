"""Export a plugin's network to ONNX, checked against torch in ONNX Runtime.

:func:`export_onnx` takes a plugin (``upscale``, ``stylize``, ``faces`` or any plugin that holds an
:class:`~gantools.runner.ImageRunner` as ``plugin.runner``) or a bare
:class:`~gantools.nn.descriptor.ModelDescriptor`, and writes one ``.onnx`` file:

* image networks: input ``input`` (N, C, H, W) RGB float32 in [0, 1], output ``output``
  (N, C, H*scale, W*scale) in [0, 1]; batch, height and width are dynamic. The padding to the
  size multiple is inside the graph (bottom/right, reflect, output cropped back), so any size of
  at least ``minimum_size`` runs; the model's ``metadata_props`` say so (see :func:`metadata`).
* the faces generator (``plugin.face``, no image input): inputs ``z`` (N, z_dim) float32,
  ``age`` and ``gender`` (N,) int64 label indices and ``truncation`` (N,) float32 psi in (0, 1]
  (pulled towards the label pair's mean ``w``, as ``gantools generate`` does); output ``image``
  (N, 3, R, R) in [0, 1].

The file is written atomically (:func:`gantools.image.atomic.atomic_path`) only after ONNX
Runtime reproduces the torch output on two input sizes (max abs difference at most
:data:`TOLERANCE`, or :data:`FP16_TOLERANCE` against the fp32 torch network with ``fp16``); a
failed check raises :class:`ExportError` and leaves no file. ``fp16`` stores weights and runs the
network in float16 (inputs and outputs stay float32; the faces mapping network stays float32).
Exporting uses the torch.export-based exporter (``onnxscript``); ``onnx``, ``onnxruntime`` and
``onnxscript`` are the ``[export]`` extra and are imported only inside the functions (this module
imports torch: the CLI imports it only when a command runs).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import ModelDescriptor

DEFAULT_OPSET = 18
TOLERANCE = 1e-3
FP16_TOLERANCE = 1e-2
EXTRA_HINT = "ONNX export needs the export extra: pip install 'gantools[export]'"


class ExportError(ValueError):
    """A network that cannot be exported, or an export that failed its check (one line)."""


class NoNetwork(ExportError):
    """The plugin holds no network (e.g. ``resize``): nothing to export."""


@dataclass(frozen=True)
class Check:
    """One ONNX Runtime vs torch comparison: the input shapes and the max abs difference."""

    shapes: tuple[tuple[int, ...], ...]
    max_abs_diff: float


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote: file, interface, metadata and the checks it passed."""

    path: Path
    inputs: list[str]
    outputs: list[str]
    metadata: dict[str, str]
    tolerance: float
    checks: list[Check] = field(default_factory=list)

    def check_line(self) -> str:
        """``"check: ONNX Runtime vs torch ... max abs diff 3.1e-07 (1x3x37x45), ... <= 0.001: ok"``."""
        parts = ", ".join(f"{c.max_abs_diff:.2g} ({' '.join('x'.join(map(str, s)) for s in c.shapes)})"
                          for c in self.checks)
        ref = "fp32 torch" if self.metadata.get("precision") == "fp16" else "torch"
        return f"check: ONNX Runtime vs {ref}, max abs diff {parts} <= {self.tolerance:g}: ok"


# -- the networks as exportable modules ----------------------------------------------------------
@dataclass
class Exportable:
    """A module with ONNX names, an example input for tracing, dynamic axes and check inputs."""

    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    example: tuple
    dynamic: Callable[[], tuple]
    checks: list[tuple]
    metadata: dict[str, str]
    to_fp16: Callable[[Any], None]  #: turns ``module`` to float16 compute in place


class PaddedNet(nn.Module):
    """An image network in the ONNX convention: pad bottom/right (reflect) to ``multiple``, run in
    ``dtype``, crop to (H*scale, W*scale), clamp to [0, 1] (unless ``clamp=False``: the raw
    output, as :mod:`gantools.backends` needs for the runner's blending and finite checks),
    return float32."""

    def __init__(self, net: nn.Module, multiple: int, scale: int, clamp: bool = True) -> None:
        super().__init__()
        self.net, self.multiple, self.scale, self.clamp = net, multiple, scale, clamp
        self.dtype = torch.float32

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        x = x.to(self.dtype)
        if m > 1:
            x = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="reflect")
        y = self.net(x)[..., : h * self.scale, : w * self.scale].float()
        return y.clamp(0, 1) if self.clamp else y

    def half_(self) -> None:
        self.net.half()
        self.dtype = torch.float16


def image_exportable(desc: ModelDescriptor, clamp: bool = True) -> Exportable:
    """An image network (any registered image-to-image architecture) ready to export.

    Padding follows the runner: to ``size.multiple`` unless the descriptor says ``pad=False``
    (the network takes any size and its output is cropped). ``clamp=False``: no clamp to [0, 1]."""
    if desc.model is None:
        raise ExportError(f"the {desc.arch} descriptor holds no network (model=None)")
    m, minimum = max(1, desc.size.multiple), max(1, desc.size.minimum)
    pad = desc.size.pad and m > 1
    low = max(minimum, m) if pad else minimum
    net = copy.deepcopy(desc.model).float().eval().to(memory_format=torch.contiguous_format)
    module = PaddedNet(net, m if pad else 1, desc.scale, clamp).eval()
    c = desc.in_channels

    def dynamic() -> tuple:
        dim = torch.export.Dim
        return ({0: dim("batch", min=1), 2: dim("height", min=low), 3: dim("width", min=low)},)

    def sized(n: int, h: int, w: int) -> tuple:
        return (torch.rand(n, c, max(h, low), max(w, low), generator=torch.Generator().manual_seed(h * w)),)

    how = "in the graph: bottom/right reflect to size_multiple" if pad else "none: the network takes any size"
    meta = {"input": "input: (N, C, H, W) RGB float32 in [0, 1]; any H, W >= minimum_size",
            "output": "output: (N, C, H*scale, W*scale) RGB float32 in [0, 1]",
            "scale": str(desc.scale), "size_multiple": str(m), "minimum_size": str(low),
            "padding": f"{how}; output cropped to H*scale x W*scale", "channels": str(c)}
    return Exportable(module, ["input"], ["output"], sized(2, 37, 45), dynamic,
                      [sized(1, 29, 35), sized(2, 48, 23)], meta, PaddedNet.half_)


class FaceNet(nn.Module):
    """The faces generator with latent inputs: ``(z, age, gender, truncation) -> image`` (see the
    module docstring); ``centers`` (ages, genders, w_dim) are the label pairs' mean ``w``."""

    def __init__(self, g: nn.Module, centers: Tensor) -> None:
        super().__init__()
        self.mapping, self.synthesis = g.mapping, g.synthesis
        self.register_buffer("centers", centers)
        self.dtype = torch.float32

    def forward(self, z: Tensor, age: Tensor, gender: Tensor, truncation: Tensor) -> Tensor:
        w = self.mapping(z, age, gender, update_w_avg=False)
        c = self.centers[age, gender]
        w = c + truncation[:, None] * (w - c)
        return self.synthesis(w.to(self.dtype), "const").float().clamp(0, 1)

    def half_(self) -> None:
        """Synthesis in float16; the mapping network stays float32 (as in gantools generate)."""
        self.synthesis.half()
        self.dtype = torch.float16


def face_exportable(face: Any) -> Exportable:
    """The faces generator (:class:`gantools_faces.generate.FaceModel`) with a latent input."""
    g = copy.deepcopy(face.G).float().eval().to(memory_format=torch.contiguous_format)
    ages, genders = g.num_ages, g.num_genders
    centers = torch.stack([torch.stack([face.center(a, s).float().cpu() for s in range(genders)])
                           for a in range(ages)])

    def sized(n: int) -> tuple:
        gen = torch.Generator().manual_seed(n)
        return (torch.randn(n, g.z_dim, generator=gen), torch.randint(0, ages, (n,), generator=gen),
                torch.randint(0, genders, (n,), generator=gen), torch.linspace(1.0, 0.5, n))

    def dynamic() -> tuple:
        n = torch.export.Dim("batch", min=1)
        return ({0: n}, {0: n}, {0: n}, {0: n})

    meta = {"input": f"z: (N, {g.z_dim}) float32 standard normal; age: (N,) int64 group 0..{ages - 1}; "
                     f"gender: (N,) int64 0..{genders - 1}; truncation: (N,) float32 psi in (0, 1]",
            "output": f"image: (N, 3, {g.resolution}, {g.resolution}) RGB float32 in [0, 1]",
            "resolution": str(g.resolution),
            "truncation": "w = center(age, gender) + psi * (w - center): the label pair's mean w, as gantools generate"}
    return Exportable(FaceNet(g, centers).eval(), ["z", "age", "gender", "truncation"], ["image"], sized(2),
                      dynamic, [sized(1), sized(3)], meta, FaceNet.half_)


def exportable(source: Any) -> tuple[Exportable, str, dict[str, Any]]:
    """``(exportable, architecture, config)`` of a plugin or a :class:`ModelDescriptor`."""
    if isinstance(source, ModelDescriptor):
        return image_exportable(source), source.arch, source.config
    name = getattr(getattr(source, "descriptor", None), "name", type(source).__name__)
    source.ensure_setup()
    runner = getattr(source, "runner", None)
    if runner is not None:
        desc = runner.descriptor
        return image_exportable(desc), desc.arch, desc.config
    face = getattr(source, "face", None)
    if face is not None:
        from gantools.nn import detect_arch

        return face_exportable(face), "facegan", detect_arch(face.G.state_dict()).config
    raise NoNetwork(f"plugin {name!r} has no network to export (it holds no ImageRunner or face generator)")


# -- source weights ------------------------------------------------------------------------------
def source_sha256(plugin: Any) -> str:
    """sha256 of the weights file a plugin runs: ``--weights``, the faces file, or the shipped
    manifest entry of its task named by one of its option values; ``"unknown"`` otherwise."""
    from gantools.weights import sha256_file, shipped

    path = plugin.runtime.weights or getattr(plugin, "weights_path", None)
    if path:
        return sha256_file(path)
    runner = getattr(plugin, "runner", None)
    scale = runner.descriptor.scale if runner is not None else None
    values = {v for v in plugin.options.values() if isinstance(v, str)}
    found = [m for m in shipped(plugin.descriptor.task)
             if m.name in values and m.extra.get("scale") in (None, scale)]
    return found[0].sha256 if len(found) == 1 else "unknown"


def metadata(ex: Exportable, arch: str, config: dict[str, Any], *, fp16: bool, opset: int,
             sha256: str, plugin: str | None) -> dict[str, str]:
    """The ``metadata_props`` of an export (all values are strings)."""
    import gantools

    meta = {"architecture": arch, "arch_config": json.dumps(config, sort_keys=True, default=str),
            **ex.metadata, "precision": "fp16" if fp16 else "fp32", "opset": str(opset),
            "gantools_version": gantools.__version__, "source_sha256": sha256}
    if plugin:
        meta["plugin"] = plugin
    return meta


# -- export, check, write --------------------------------------------------------------------------
_OPERATOR = re.compile(r"(aten[:.]{1,2}[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?|prims[:.]{1,2}[A-Za-z_0-9]+)")


def _operator_error(exc: Exception, arch: str, opset: int) -> ExportError:
    """A one-line :class:`ExportError` naming the operator the exporter refused, when it says."""
    text = f"{exc}"
    op = _OPERATOR.search(text)
    if op:
        return ExportError(f"cannot export {arch} to ONNX (opset {opset}): operator {op.group(1)} is not supported")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return ExportError(f"cannot export {arch} to ONNX (opset {opset}): {type(exc).__name__}: {first}")


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the exporter's progress prints, warnings and log lines."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _to_onnx(ex: Exportable, arch: str, opset: int) -> Any:
    """The ``onnx.ModelProto`` of ``ex.module`` (dynamic axes from ``ex.dynamic``)."""
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(ex.module, ex.example, None, dynamo=True, opset_version=opset,
                                        input_names=ex.input_names, output_names=ex.output_names,
                                        dynamic_shapes=ex.dynamic(), verbose=False)
    except ImportError as exc:
        raise ExportError(f"{EXTRA_HINT} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - the exporter's errors have no common base
        raise _operator_error(exc, arch, opset) from None
    return program.model_proto


def _check(path: Path, ex: Exportable, reference: Any, tolerance: float) -> list[Check]:
    """Run the ONNX file in ONNX Runtime on every check input; :class:`ExportError` past ``tolerance``."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    checks = []
    for inputs in ex.checks:
        with torch.no_grad():
            out = reference(*inputs)
        wants = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
        gots = session.run(None, {n: t.numpy() for n, t in zip(ex.input_names, inputs)})
        shapes = tuple(tuple(t.shape) for t in inputs if t.dim() == 4) or (tuple(inputs[0].shape),)
        if [g.shape for g in gots] != [w.shape for w in wants]:
            raise ExportError(f"check failed: ONNX Runtime outputs {[g.shape for g in gots]} vs torch "
                              f"{[w.shape for w in wants]} for {shapes}")
        diff = max(float(np.abs(g.astype(np.float64) - w).max()) for g, w in zip(gots, wants))
        if not diff <= tolerance:
            raise ExportError(f"check failed: ONNX Runtime vs torch max abs diff {diff:.3g} > {tolerance:g} "
                              f"at input {'x'.join(map(str, shapes[0]))}")
        checks.append(Check(shapes, diff))
    return checks


def export_onnx(source: Any, path: str | Path, opset: int = DEFAULT_OPSET, fp16: bool = False,
                sha256: str | None = None) -> ExportReport:
    """Export a plugin's network (or a descriptor's) to ``path``; see the module docstring.

    ``sha256`` names the source weights in the metadata (default: found from the plugin, see
    :func:`source_sha256`; ``"unknown"`` for a bare descriptor). Raises :class:`ExportError`
    (not exportable, operator unsupported, check failed, extra missing) or ``OSError``.
    """
    import importlib.util

    if importlib.util.find_spec("onnx") is None:  # the extra is there before any work
        raise ExportError(EXTRA_HINT)
    ex, arch, config = exportable(source)
    plugin = None if isinstance(source, ModelDescriptor) else source
    if sha256 is None:
        sha256 = source_sha256(plugin) if plugin is not None else "unknown"
    return save_exportable(ex, arch, config, path, opset=opset, fp16=fp16, sha256=sha256,
                           plugin=getattr(getattr(plugin, "descriptor", None), "name", None))


def save_exportable(ex: Exportable, arch: str, config: dict[str, Any], path: str | Path, *,
                    opset: int = DEFAULT_OPSET, fp16: bool = False, sha256: str = "unknown",
                    plugin: str | None = None, extra_metadata: dict[str, str] | None = None) -> ExportReport:
    """Export ``ex`` to ``path`` (atomic), checked in ONNX Runtime against ``ex.module`` on every
    ``ex.checks`` input (all outputs compared); the second half of :func:`export_onnx`, also used by
    :mod:`gantools.backends` for its cached graphs. Raises :class:`ExportError` or ``OSError``."""
    from gantools.image.atomic import atomic_path

    try:
        import onnx
    except ImportError:
        raise ExportError(EXTRA_HINT) from None
    reference = copy.deepcopy(ex.module)
    if fp16:
        ex.to_fp16(ex.module)
    proto = _to_onnx(ex, arch, opset)
    meta = {**metadata(ex, arch, config, fp16=fp16, opset=opset, sha256=sha256, plugin=plugin),
            **(extra_metadata or {})}
    onnx.helper.set_model_props(proto, meta)
    tolerance = FP16_TOLERANCE if fp16 else TOLERANCE
    with atomic_path(path, suffix=".onnx") as temp:
        onnx.save(proto, str(temp))
        checks = _check(temp, ex, reference, tolerance)
    return ExportReport(Path(path), list(ex.input_names), list(ex.output_names), meta, tolerance, checks)


__all__ = ["Check", "DEFAULT_OPSET", "ExportError", "ExportReport", "FP16_TOLERANCE", "NoNetwork", "TOLERANCE",
           "export_onnx", "image_exportable", "save_exportable"]
