"""ncnn model files (``MODEL.param`` + ``MODEL.bin``) of the SR networks we know, as our modules.

``.param`` is ncnn's text graph: the magic ``7767517``, a ``layer_count blob_count`` line, then
one line per layer: type, name, input and output counts, the blob names, and ``k=v`` params
(an integer, a float when written with ``.`` or ``e``, or an array ``-233xx=n,v1,...`` for param
``xx``). ``.bin`` holds the weights in layer order, as ncnn's ModelBin reads them: per
Convolution a 4-byte storage tag (0: fp32, 0x01306B47: fp16 padded to 4 bytes) then the
weights, then the bias as raw fp32; per PReLU its slopes as raw fp32; other layers have none.

Recognised graphs (Real-ESRGAN ncnn releases and the like): compact SRVGG (Convolution + PReLU
or fused activations, PixelShuffle, plus the nearest-upsampled input: Interp + BinaryOp) and
RRDBNet (x4plus, x4plus-anime: dense blocks of Convolution/Concat/BinaryOp, nearest Interp
upsampling). A trailing ``Interp`` after the network (realesr-animevideov3-x2/x3 are the x4
network resized by 0.5/0.75, bicubic) is reproduced: the descriptor's ``scale`` is the final
factor and its ``model`` applies the resize (``arch``/``config`` stay those of the network).

The convolutions are assigned in graph order to our module, then the graph itself is run on a
small input by a torch interpreter of the supported layers and compared with our module, so
a graph that only looks like a known one is refused. Every problem raises :class:`NcnnError`,
a ``ValueError`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantools.nn.descriptor import ModelDescriptor
from gantools.nn.registry import load_arch

MAGIC = 7767517
FP32_TAG, FP16_TAG = 0, 0x01306B47
SUPPORTED = ("Input", "Split", "Convolution", "PReLU", "ReLU", "BinaryOp", "Eltwise", "Concat", "Interp",
             "PixelShuffle")
INTERP_MODES = {1: "nearest", 2: "bilinear", 3: "bicubic"}


class NcnnError(ValueError):
    """An ncnn model file we cannot read or reproduce (one-line message)."""


@dataclass
class Layer:
    """One ``.param`` line; ``weights`` are filled from the ``.bin``."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, Any]
    weights: list[Tensor] = field(default_factory=list)

    def p(self, key: int, default: Any = 0) -> Any:
        return self.params.get(key, default)


def is_ncnn(path: str | os.PathLike) -> bool:
    """``path`` is an ncnn ``.param``, or a ``.bin`` with a ``.param`` beside it."""
    p = Path(path)
    suffix = p.suffix.lower()
    return suffix == ".param" or (suffix == ".bin" and p.with_suffix(".param").is_file())


def _value(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _params(fields: list[str], where: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        try:
            k = int(key)
            if k <= -23300:
                out[-23300 - k] = [_value(v) for v in value.split(",")[1:]]
            else:
                out[k] = _value(value)
        except ValueError:
            raise NcnnError(f"{where}: bad param {item!r}") from None
    return out


def parse_param(text: str, source: str = "param") -> list[Layer]:
    """The layers of an ncnn ``.param`` text (raises :class:`NcnnError` on a malformed file)."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise NcnnError(f"{source}: not an ncnn param file (first line is not the magic {MAGIC})")
    layers = []
    for n, fields in enumerate(lines[2:], start=3):
        where = f"{source} line {n}"
        try:
            nin, nout = int(fields[2]), int(fields[3])
            blobs = fields[4:4 + nin + nout]
            if len(blobs) != nin + nout:
                raise ValueError
        except (IndexError, ValueError):
            raise NcnnError(f"{where}: malformed layer line") from None
        params = _params(fields[4 + nin + nout:], where)
        layers.append(Layer(fields[0], fields[1], blobs[:nin], blobs[nin:], params))
    if len(lines) < 2 or len(lines[1]) != 2 or lines[1][0] != str(len(layers)):
        raise NcnnError(f"{source}: layer count line does not match the {len(layers)} layers")
    return layers


class _Reader:
    """Sequential reads from the ``.bin`` bytes, as ncnn's ModelBin does."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, nbytes: int, what: str) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise NcnnError(f"{self.source}: file too short ({len(self.data)} bytes) while reading {what}")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw(self, count: int, what: str) -> Tensor:
        return torch.from_numpy(np.frombuffer(self.take(4 * count, what), "<f4").copy())

    def tagged(self, count: int, what: str) -> Tensor:
        (tag,) = struct.unpack("<I", self.take(4, what))
        if tag == FP32_TAG:
            return self.raw(count, what)
        if tag == FP16_TAG:
            data = self.take((2 * count + 3) // 4 * 4, what)[:2 * count]
            return torch.from_numpy(np.frombuffer(data, "<f2").astype(np.float32))
        raise NcnnError(f"{self.source}: {what} has storage flag 0x{tag:08X} "
                        f"(supported: fp32 0, fp16 0x{FP16_TAG:08X})")


def _check_supported(layers: list[Layer], source: str) -> None:
    for layer in layers:
        if layer.type not in SUPPORTED:
            raise NcnnError(f"{source}: layer {layer.name} of type {layer.type} is not supported "
                            f"(supported: {', '.join(SUPPORTED)})")
        if layer.type == "Convolution" and (layer.p(8) or layer.p(19)):
            raise NcnnError(f"{source}: layer {layer.name}: int8 or dynamic-weight Convolution is not supported")


def read_bin(layers: list[Layer], data: bytes, source: str = "bin") -> None:
    """Fill ``layer.weights`` from the ``.bin`` bytes (Convolution: weight [out,in,kh,kw], bias)."""
    reader = _Reader(data, source)
    for layer in layers:
        if layer.type == "Convolution":
            out, kw = layer.p(0), layer.p(1)
            kh, size = layer.p(11, kw), layer.p(6)
            if not out or not kw or size % (out * kh * kw):
                raise NcnnError(f"{source}: layer {layer.name} has inconsistent sizes (0={out} 1={kw} 6={size})")
            weight = reader.tagged(size, f"{layer.name} weights").reshape(out, -1, kh, kw)
            layer.weights = [weight] + ([reader.raw(out, f"{layer.name} bias")] if layer.p(5) else [])
        elif layer.type == "PReLU":
            layer.weights = [reader.raw(layer.p(0, 1), f"{layer.name} slopes")]
    if reader.pos != len(data):
        raise NcnnError(f"{source}: {len(data)} bytes, but the graph's weights take {reader.pos}")


# -- a torch interpreter of the supported layers: the reference our modules are checked against --
def _activation(x: Tensor, kind: int, args: list, name: str) -> Tensor:
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, args[0] if args else 0.0)
    if kind == 4:
        return torch.sigmoid(x)
    raise NcnnError(f"layer {name}: fused activation type {kind} is not supported")


def _conv(layer: Layer, x: Tensor) -> Tensor:
    pad_l = layer.p(4)
    pads = (pad_l, layer.p(15, pad_l), layer.p(14, pad_l), layer.p(16, layer.p(14, pad_l)))
    if min(pads) < 0:
        raise NcnnError(f"layer {layer.name}: automatic ('same') padding is not supported")
    x = F.pad(x, pads)
    stride, dil = (layer.p(13, layer.p(3, 1)), layer.p(3, 1)), (layer.p(12, layer.p(2, 1)), layer.p(2, 1))
    bias = layer.weights[1] if len(layer.weights) > 1 else None
    return _activation(F.conv2d(x, layer.weights[0], bias, stride, 0, dil), layer.p(9), layer.p(10, []), layer.name)


_BINARY: dict[int, Callable[[Any, Any], Tensor]] = {
    0: torch.add, 1: torch.sub, 2: torch.mul, 3: torch.div, 4: torch.maximum, 5: torch.minimum,
    7: lambda a, b: b - a, 8: lambda a, b: b / a,
}


def _binary(layer: Layer, xs: list[Tensor]) -> Tensor:
    op = _BINARY.get(layer.p(0))
    if op is None:
        raise NcnnError(f"layer {layer.name}: BinaryOp type {layer.p(0)} is not supported")
    if layer.p(1):
        return op(xs[0], torch.full_like(xs[0], float(layer.p(2, 0.0))))
    return op(xs[0], xs[1])


def _eltwise(layer: Layer, xs: list[Tensor]) -> Tensor:
    op, coeffs = layer.p(0, 1), layer.p(1, [])
    if op == 1:
        return sum((c * x for c, x in zip(coeffs or [1.0] * len(xs), xs)), torch.zeros_like(xs[0]))
    if op in (0, 2):
        out = xs[0]
        for x in xs[1:]:
            out = out * x if op == 0 else torch.maximum(out, x)
        return out
    raise NcnnError(f"layer {layer.name}: Eltwise type {op} is not supported")


def interp_size(layer: Layer, h: int, w: int) -> tuple[int, int]:
    """Output size of an ncnn Interp on an ``h`` x ``w`` input (fixed size, else ``int(size * scale)``)."""
    if layer.p(3) and layer.p(4):
        return layer.p(3), layer.p(4)
    return int(h * float(layer.p(1, 1.0))), int(w * float(layer.p(2, 1.0)))


def _interp(layer: Layer, x: Tensor) -> Tensor:
    mode = INTERP_MODES.get(layer.p(0))
    if mode is None or layer.p(5):
        raise NcnnError(f"layer {layer.name}: Interp type {layer.p(0)} (dynamic {layer.p(5)}) is not supported")
    align = None if mode == "nearest" else bool(layer.p(6))
    return F.interpolate(x, size=interp_size(layer, *x.shape[-2:]), mode=mode, align_corners=align)


def _run_layer(layer: Layer, xs: list[Tensor]) -> list[Tensor]:
    kind = layer.type
    if kind == "Split":
        return xs * len(layer.outputs)
    if kind == "Convolution":
        return [_conv(layer, xs[0])]
    if kind == "PReLU":
        return [F.prelu(xs[0], layer.weights[0])]
    if kind == "ReLU":
        return [F.leaky_relu(xs[0], float(layer.p(0, 0.0)))]
    if kind == "BinaryOp":
        return [_binary(layer, xs)]
    if kind == "Eltwise":
        return [_eltwise(layer, xs)]
    if kind == "Concat":
        return [torch.cat(xs, dim=layer.p(0) + 1)]
    if kind == "Interp":
        return [_interp(layer, xs[0])]
    if layer.p(1):
        raise NcnnError(f"layer {layer.name}: PixelShuffle mode {layer.p(1)} is not supported")
    return [F.pixel_shuffle(xs[0], layer.p(0, 1))]


@torch.no_grad()
def run_graph(layers: list[Layer], x: Tensor) -> Tensor:
    """Run the graph on ``x`` (N, C, H, W) with torch; returns the last layer's first output."""
    blobs: dict[str, Tensor] = {}
    for layer in layers:
        if layer.type == "Input":
            blobs[layer.outputs[0]] = x
            continue
        outs = _run_layer(layer, [blobs[b] for b in layer.inputs])
        blobs.update(zip(layer.outputs, outs))
    return blobs[layers[-1].outputs[0]]


# -- recognition: the graph's weights as one of our state dicts ------------------------------
def _conv_sd(names: list[str], convs: list[Layer]) -> dict[str, Tensor]:
    sd = {}
    for name, layer in zip(names, convs):
        sd[f"{name}.weight"] = layer.weights[0]
        if len(layer.weights) > 1:
            sd[f"{name}.bias"] = layer.weights[1]
    return sd


def _srvgg(layers: list[Layer], convs: list[Layer]) -> ModelDescriptor:
    sd = _conv_sd([f"body.{2 * i}" for i in range(len(convs))], convs)
    prelus = [layer for layer in layers if layer.type == "PReLU"]
    feat = convs[0].p(0)
    for i, layer in enumerate(prelus):
        sd[f"body.{2 * i + 1}.weight"] = layer.weights[0].expand(feat).clone()
    slopes = {float(layer.p(10, [0.0])[0]) for layer in convs if layer.p(9) == 2}
    slopes |= {float(layer.p(0, 0.0)) for layer in layers if layer.type == "ReLU"}
    act = "prelu" if prelus else ("leakyrelu" if slopes - {0.0} else "relu")
    return load_arch(sd, config=None if prelus else {"act_type": act})


def _rrdbnet(convs: list[Layer], source: str) -> ModelDescriptor:
    num_up = (len(convs) - 4) % 15
    num_block = (len(convs) - 4 - num_up) // 15
    if num_up > 3 or num_block < 1:
        raise NcnnError(f"{source}: {len(convs)} convolutions do not make an RRDBNet of known scale")
    names = ["conv_first"] + [f"body.{b}.rdb{r}.conv{c}" for b in range(num_block) for r in (1, 2, 3)
                              for c in range(1, 6)]
    names += ["conv_body"] + [f"conv_up{i}" for i in range(1, num_up + 1)] + ["conv_hr", "conv_last"]
    return load_arch(_conv_sd(names, convs))


class Resized(nn.Module):
    """``net`` followed by a fixed resize to ``scale`` times the input size (a trailing ncnn Interp)."""

    def __init__(self, net: nn.Module, scale: int, mode: str, align_corners: bool = False) -> None:
        super().__init__()
        self.net, self.scale, self.mode = net, scale, mode
        self.align_corners = None if mode == "nearest" else align_corners

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        return F.interpolate(self.net(x), size=size, mode=self.mode, align_corners=self.align_corners)


def _with_resize(desc: ModelDescriptor, layer: Layer, source: str) -> ModelDescriptor:
    mode = INTERP_MODES.get(layer.p(0))
    factors = {float(layer.p(1, 1.0)), float(layer.p(2, 1.0))}
    final = desc.scale * factors.pop() if len(factors) == 1 else 0.0
    if mode is None or layer.p(3) or layer.p(5) or final < 1 or abs(final - round(final)) > 1e-6:
        raise NcnnError(f"{source}: trailing {layer.type} {layer.name} does not resize to a whole final scale")
    model = Resized(desc.model, round(final), mode, bool(layer.p(6))).eval()
    radius = None if desc.receptive_radius is None else desc.receptive_radius + 2
    return dataclasses.replace(desc, scale=round(final), model=model, receptive_radius=radius)


def _recognise(layers: list[Layer], source: str) -> ModelDescriptor:
    inputs = [layer.outputs[0] for layer in layers if layer.type == "Input"]
    if len(inputs) != 1 or len(layers) < 3:
        raise NcnnError(f"{source}: expected one Input layer, found {len(inputs)}")
    last = layers[-1]
    trailing = last if last.type == "Interp" and last.inputs[0] not in inputs else None
    body = layers[:-1] if trailing else layers
    convs = [layer for layer in body if layer.type == "Convolution"]
    if any(layer.type == "PixelShuffle" for layer in body):
        desc = _srvgg(body, convs)
    elif any(layer.type == "Concat" for layer in body):
        desc = _rrdbnet(convs, source)
    else:
        raise NcnnError(f"{source}: the graph is neither a compact SRVGG nor an RRDBNet network")
    return _with_resize(desc, trailing, source) if trailing else desc


def _verify(desc: ModelDescriptor, layers: list[Layer], source: str) -> None:
    m = desc.size.multiple
    x = torch.rand(1, desc.in_channels, 8 * m, 6 * m, generator=torch.Generator().manual_seed(0))
    want = run_graph(layers, x)
    with torch.no_grad():
        got = desc.model(x)
    err = (got - want).abs().max().item() if got.shape == want.shape else float("inf")
    if not err <= 1e-4 * max(1.0, want.abs().max().item()):
        raise NcnnError(f"{source}: the graph looks like {desc.arch} but does not compute it "
                        f"(max difference {err:.3g} on a test input)")


def ncnn_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(param, bin)`` for either file of a pair: ``FileNotFoundError`` when ``path`` is missing,
    :class:`NcnnError` when its partner is."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such ncnn model file", str(p))
    param, binary = p.with_suffix(".param"), p.with_suffix(".bin")
    missing = binary if p == param else param
    if not missing.is_file():
        raise NcnnError(f"{p}: {missing.name} not found beside it (an ncnn model is a .param and a .bin)")
    return param, binary


def load_ncnn(path: str | os.PathLike) -> ModelDescriptor:
    """Read the ncnn model at ``path`` (``.param`` or ``.bin``) into our module; see the module docstring.

    Raises ``FileNotFoundError`` when ``path`` is missing and :class:`NcnnError` (one line) for
    anything else: the other file missing, a file we cannot read, a graph we cannot recognise or
    reproduce.
    """
    param, binary = ncnn_paths(path)
    try:
        text = param.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NcnnError(f"{param}: not an ncnn param file (not text)") from None
    layers = parse_param(text, str(param))
    _check_supported(layers, str(param))
    read_bin(layers, binary.read_bytes(), str(binary))
    try:
        desc = _recognise(layers, str(param))
        _verify(desc, layers, str(param))
    except (KeyError, IndexError, RuntimeError, ValueError) as exc:
        if isinstance(exc, NcnnError):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NcnnError(f"{param}: not a graph we can load ({type(exc).__name__}: {first[:160]})") from exc
    return desc


__all__ = ["Layer", "NcnnError", "Resized", "is_ncnn", "load_ncnn", "ncnn_paths", "parse_param", "read_bin",
           "run_graph"]
