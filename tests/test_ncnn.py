"""ncnn model files: written by a small writer of our own (tests/ncnnfiles.py), run by ncnn itself and by gantools."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from ncnnfiles import Graph, rrdb_graph, small_srvgg, srvgg_graph

from gantools.nn import create_arch
from gantools.nn.ncnn import NcnnError, is_ncnn, load_ncnn

ncnn = pytest.importorskip("ncnn")


def run_ncnn(param: Path, out_blob: str, x: torch.Tensor) -> np.ndarray:
    net = ncnn.Net()
    for opt in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage",
                "use_vulkan_compute"):
        setattr(net.opt, opt, False)
    assert net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(np.ascontiguousarray(x[0].numpy())))
    ret, out = ex.extract(out_blob)
    assert ret == 0
    return np.array(out)


def check(tmp_path: Path, graph: Graph, scale: int, size=(10, 12), tol: float = 1 / 255) -> None:
    param, out_blob = graph.write(tmp_path / "model")
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    ref = run_ncnn(param, out_blob, x)
    for path in (param, param.with_suffix(".bin")):
        desc = load_ncnn(path)
        assert desc.scale == scale
        with torch.no_grad():
            got = desc.model(x)[0].numpy()
        assert got.shape == ref.shape == (3, size[0] * scale, size[1] * scale)
        assert np.abs(got - ref).max() < tol


@pytest.mark.parametrize("upscale", [2, 4])
def test_srvgg_prelu_matches_ncnn(tmp_path, upscale):
    check(tmp_path, srvgg_graph(small_srvgg(upscale)), upscale)


def test_tiny_rrdbnet_matches_ncnn(tmp_path):
    torch.manual_seed(0)
    model = create_arch("rrdbnet", num_feat=8, num_block=2, num_grow_ch=4).eval()
    check(tmp_path, rrdb_graph(model), 4)
    assert load_ncnn(tmp_path / "model.param").arch == "rrdbnet"


@pytest.mark.parametrize("resize,scale", [(0.5, 2), (0.75, 3)])
def test_srvgg_with_trailing_interp_matches_ncnn(tmp_path, resize, scale):
    """realesr-animevideov3-x2/x3 style: the x4 network, then bicubic Interp to the final scale."""
    check(tmp_path, srvgg_graph(small_srvgg(4), resize=resize), scale, size=(12, 16))
    desc = load_ncnn(tmp_path / "model.param")
    assert desc.arch == "srvgg" and desc.config["upscale"] == 4 and desc.scale == scale


def test_fp16_storage(tmp_path):
    model = small_srvgg(2)
    check(tmp_path, srvgg_graph(model, fp16=True), 2)
    desc = load_ncnn(tmp_path / "model.bin")
    w = desc.model.state_dict()["body.0.weight"]
    assert torch.equal(w, model.body[0].weight.detach().half().float())


# -- bad inputs: one line each ---------------------------------------------------------------
def one_line_error(path: Path, match: str, exc: type[Exception] = NcnnError) -> None:
    with pytest.raises(exc, match=match) as info:
        load_ncnn(path)
    assert "\n" not in str(info.value)


def test_unknown_layer(tmp_path):
    g = srvgg_graph(small_srvgg(2))
    g.layers.insert(3, ["Sigmoid", "sig_x", ["b2"], ["b2s"], ""])
    g.layers[4][2] = ["b2s"]
    param, _ = g.write(tmp_path / "model")
    one_line_error(param, "layer sig_x of type Sigmoid is not supported")


def test_param_without_bin(tmp_path):
    param, _ = srvgg_graph(small_srvgg(2)).write(tmp_path / "model")
    param.with_suffix(".bin").unlink()
    one_line_error(param, r"model\.param: model\.bin not found beside it")
    (tmp_path / "torch.bin").write_bytes(b"\0")
    assert is_ncnn(param) and not is_ncnn(tmp_path / "torch.bin")


@pytest.mark.parametrize("delta", [-4, 4])
def test_bin_of_wrong_size(tmp_path, delta):
    param, _ = srvgg_graph(small_srvgg(2)).write(tmp_path / "model")
    data = param.with_suffix(".bin").read_bytes()
    param.with_suffix(".bin").write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)
    one_line_error(param, "file too short" if delta < 0 else "but the graph's weights take")


def test_unknown_storage_flag(tmp_path):
    param, _ = srvgg_graph(small_srvgg(2)).write(tmp_path / "model")
    data = bytearray(param.with_suffix(".bin").read_bytes())
    data[:4] = struct.pack("<I", 0x000D4B38)  # int8
    param.with_suffix(".bin").write_bytes(bytes(data))
    one_line_error(param, "storage flag 0x000D4B38")


def test_graph_that_only_looks_like_srvgg(tmp_path):
    g = srvgg_graph(small_srvgg(2))
    binary = next(layer for layer in g.layers if layer[0] == "BinaryOp")
    binary[4] = "0=1"  # subtract the upsampled input instead of adding it
    param, _ = g.write(tmp_path / "model")
    one_line_error(param, "looks like srvgg but does not compute it")


def test_upscale_plugin_runs_ncnn_weights_whole_and_tiled(tmp_path):
    from gantools.plugin import OptionError
    from gantools.registry import load

    param, _ = srvgg_graph(small_srvgg(4), resize=0.75).write(tmp_path / "x3")
    image = (np.random.default_rng(0).random((40, 44, 3)) * 255).astype(np.uint8)
    whole = load("upscale", weights=str(param), precision="fp32").process(image)
    tiled = load("upscale", weights=str(param.with_suffix(".bin")), precision="fp32", tile=32).process(image)
    assert whole.shape == (120, 132, 3)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    param.with_suffix(".bin").unlink()
    with pytest.raises(OptionError, match="x3.bin not found") as info:
        load("upscale", weights=str(param)).ensure_setup()
    assert "\n" not in str(info.value)
