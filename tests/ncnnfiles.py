"""A small writer of ncnn model files (``.param`` + ``.bin``) for tests: tiny SRVGG and RRDBNet graphs.

It follows ncnn's file formats (param text graph, bin weights with a storage tag per Convolution
weight) and inserts Split layers where a blob has several consumers, as ncnn needs. Used by
test_ncnn (checked there against ncnn itself) and test_models (fake Real-ESRGAN wheels).
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import torch

from gantools.nn import create_arch
from gantools.nn.ncnn import FP16_TAG


class Graph:
    """Builds an ncnn graph: ``add`` layers in order, then ``write`` the .param and .bin."""

    def __init__(self, fp16: bool = False) -> None:
        self.layers: list[list] = []  # [type, name, inputs, outputs, params]
        self.bin = bytearray()
        self.fp16 = fp16
        self.count = 0

    def add(self, kind: str, inputs: list[str], params: str = "") -> str:
        self.count += 1
        out = f"b{self.count}"
        self.layers.append([kind, f"{kind}_{self.count}", list(inputs), [out], params])
        return out

    def input(self) -> str:
        self.layers.append(["Input", "in0", [], ["data"], ""])
        return "data"

    def conv(self, x: str, conv: torch.nn.Conv2d, act: str = "") -> str:
        w = conv.weight.detach().numpy()
        if self.fp16:
            self.bin += struct.pack("<I", FP16_TAG) + w.astype("<f2").tobytes()
            self.bin += b"\0" * (-len(self.bin) % 4)
        else:
            self.bin += struct.pack("<I", 0) + w.astype("<f4").tobytes()
        self.bin += conv.bias.detach().numpy().astype("<f4").tobytes()
        pad = conv.padding[0]
        return self.add("Convolution", [x], f"0={w.shape[0]} 1={w.shape[2]} 4={pad} 5=1 6={w.size} {act}")

    def prelu(self, x: str, prelu: torch.nn.PReLU) -> str:
        slopes = prelu.weight.detach().numpy()
        self.bin += slopes.astype("<f4").tobytes()
        return self.add("PReLU", [x], f"0={slopes.size}")

    def param_text(self) -> str:
        uses = Counter(b for layer in self.layers for b in layer[2])
        taken: Counter = Counter()

        def use(blob: str) -> str:
            if uses[blob] < 2:
                return blob
            taken[blob] += 1
            return f"{blob}_sp{taken[blob] - 1}"

        lines, blobs = [], 0
        for kind, name, ins, outs, params in self.layers:
            ins = [use(b) for b in ins]
            lines.append(f"{kind} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}".rstrip())
            blobs += len(outs)
            for b in outs:
                if uses[b] > 1:
                    lines.append(f"Split split_{b} 1 {uses[b]} {b} " + " ".join(f"{b}_sp{i}" for i in range(uses[b])))
                    blobs += uses[b]
        return f"7767517\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n"

    def write(self, stem: Path) -> tuple[Path, str]:
        stem.with_suffix(".param").write_text(self.param_text())
        stem.with_suffix(".bin").write_bytes(bytes(self.bin))
        return stem.with_suffix(".param"), self.layers[-1][3][0]


LEAKY = "9=2 -23310=1,2.000000e-01"


def srvgg_graph(model, fp16: bool = False, resize: float | None = None) -> Graph:
    g = Graph(fp16)
    x = g.input()
    t = x
    for layer in model.body:
        t = g.conv(t, layer) if isinstance(layer, torch.nn.Conv2d) else g.prelu(t, layer)
    r = model.upscale
    t = g.add("PixelShuffle", [t], f"0={r}")
    t = g.add("BinaryOp", [t, g.add("Interp", [x], f"0=1 1={r:.6e} 2={r:.6e}")], "0=0")
    if resize:
        g.add("Interp", [t], f"0=3 1={resize:.6e} 2={resize:.6e}")
    return g


def rrdb_graph(model) -> Graph:
    g = Graph()

    def rdb(block, x: str) -> str:
        feats = [x]
        for i in range(1, 5):
            cat = feats[0] if len(feats) == 1 else g.add("Concat", feats, "0=0")
            feats.append(g.conv(cat, getattr(block, f"conv{i}"), LEAKY))
        out = g.conv(g.add("Concat", feats, "0=0"), block.conv5)
        return g.add("BinaryOp", [g.add("BinaryOp", [out], "0=2 1=1 2=2.000000e-01"), x], "0=0")

    fea = g.conv(g.input(), model.conv_first)
    t = fea
    for rrdb in model.body:
        inner = rdb(rrdb.rdb3, rdb(rrdb.rdb2, rdb(rrdb.rdb1, t)))
        t = g.add("BinaryOp", [g.add("BinaryOp", [inner], "0=2 1=1 2=2.000000e-01"), t], "0=0")
    t = g.add("BinaryOp", [g.conv(t, model.conv_body), fea], "0=0")
    for i in range(1, model.num_up + 1):
        t = g.conv(g.add("Interp", [t], "0=1 1=2.000000e+00 2=2.000000e+00"), getattr(model, f"conv_up{i}"), LEAKY)
    t = g.add("ReLU", [g.conv(t, model.conv_hr)], "0=2.000000e-01")  # a separate activation layer
    g.conv(t, model.conv_last)
    return g


def small_srvgg(upscale: int, seed: int = 0):
    torch.manual_seed(seed)
    model = create_arch("srvgg", num_feat=8, num_conv=3, upscale=upscale)
    with torch.no_grad():
        for layer in model.body:
            if isinstance(layer, torch.nn.PReLU):
                layer.weight.uniform_(0.0, 0.3)
    return model.eval()
