"""``gantools generate faces --backend``: the synthesis network in ONNX Runtime / OpenVINO.

A tiny random faces generator (``test_faces.TINY``, 32 px) is given as ``--weights``. Latents are
made in torch whatever the backend; the images of each graph backend are compared with the torch
backend's fp32 images of the same seeds (within 1/255), for ``generate`` (two synthesis passes,
truncation and a label), ``interpolate`` and the CLI. The graph cache lives in a temporary
``GANTOOLS_CACHE``; exports are counted by wrapping :func:`gantools.backends.graphs.export`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from clitools import read
from test_faces import TINY

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import gantools  # noqa: E402 - after the skips
import gantools.backends as backends  # noqa: E402
import gantools.backends.graphs as graphs  # noqa: E402
from gantools.backends.table import choices  # noqa: E402
from gantools.cli import main  # noqa: E402
from gantools.plugin import OptionError  # noqa: E402

GRAPH_BACKENDS = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino not installed"))]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache for the module (the tiny generator's synthesis is exported once)."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANTOOLS_CACHE", str(root))
        yield root


def save_random(path: Path, seed: int = 0) -> Path:
    """A random faces export (``gantools train faces`` layout) of the tiny generator."""
    from gantools.nn.facegan import FaceGenerator
    from gantools.train.export import export_generator

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        g = FaceGenerator(**TINY).eval()
    export_generator(path, g, "facegan", TINY, {"task": "faces", "resolution": "32"})
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random(tmp_path_factory.mktemp("weights") / "faces.safetensors")


def faces(weights: Path, backend: str, **options: object) -> gantools.Plugin:
    plugin = gantools.load("faces", weights=str(weights), backend=backend, precision="fp32", threads=1, **options)
    plugin.ensure_setup()
    return plugin


def levels(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    return int(max(np.abs(x.astype(np.int64) - y.astype(np.int64)).max() for x, y in zip(a, b)))


def test_graph_is_exported_once_and_cached(cache, weights, graph_exports):
    done = graph_exports
    for f in graphs.cache_root().glob("*.onnx"):  # order-independent: start from an empty cache
        f.unlink()
    graphs._FOUND.clear()
    graphs._COMPILED.clear()

    first = faces(weights, "onnxruntime").generate(3, 11)
    assert done == ["synthesis"]
    cached = sorted(graphs.cache_root().glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith("facegan-") and cached[0].name.endswith("-synthesis.onnx")
    assert levels(faces(weights, "onnxruntime").generate(3, 11), first) == 0 and done == ["synthesis"]
    graphs._FOUND.clear()  # as a new process: found on disk, not exported again
    graphs._COMPILED.clear()
    assert levels(faces(weights, "onnxruntime").generate(3, 11), first) == 0 and done == ["synthesis"]


def test_cache_key_follows_the_weights(tmp_path):
    """Other weights, another key (no export needed to see it)."""
    from gantools_faces.backend import SynthesisGraphs, descriptor

    keys = [SynthesisGraphs(descriptor(faces(save_random(tmp_path / f"{s}.safetensors", seed=s), "torch").face)).key
            for s in (0, 0, 1)]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_generate_and_interpolate_match_torch(cache, weights, backend):
    opts = dict(truncation=0.7, age="60")
    want = faces(weights, "torch", **opts)
    got = faces(weights, backend, **opts)
    assert want.face.synthesis.name == "torch" and got.face.synthesis.name == backend
    a, b = want.generate(11, 5), got.generate(11, 5)  # two passes of 8, the second short
    assert levels(b, a) <= 1
    assert sum(int(np.any(x != y)) for x, y in zip(a, b[1:])) == 10, "faces of different seeds differ"
    assert np.std(np.stack(a).astype(np.float64)) > 10, "the tiny generator makes non-trivial images"
    assert levels(got.interpolate(3, 9, 4), want.interpolate(3, 9, 4)) <= 1
    assert got.face.synthesis.graph.file().exists()
    assert levels(got.generate(2, 5), b[:2]) == 0  # seed-exact: a face does not depend on n


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_cli_generate_matches_torch(cache, weights, tmp_path, capsys, backend):
    outs = {}
    for b in ("torch", backend):
        outs[b] = tmp_path / b
        code = main(["generate", "faces", "-n", "3", "--seed", "7", "-o", str(outs[b]), "--weights", str(weights),
                     "--backend", b, "--precision", "fp32", "--threads", "1"])
        assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in outs["torch"].iterdir())
    assert names == ["seed0007.png", "seed0008.png", "seed0009.png"]
    assert sorted(p.name for p in outs[backend].iterdir()) == names
    assert levels([read(outs[backend] / n) for n in names], [read(outs["torch"] / n) for n in names]) <= 1


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` look uninstalled to :func:`gantools.backends.missing`."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


def test_missing_extra_is_one_usage_line(weights, tmp_path, capsys, monkeypatch):
    hide(monkeypatch, "openvino")
    with pytest.raises(OptionError, match=r"--backend: openvino needs the export extra .*gantools\[export\]"):
        gantools.load("faces", weights=str(weights), backend="openvino")
    code = main(["generate", "faces", "-n", "1", "-o", str(tmp_path / "out"), "--weights", str(weights),
                 "--backend", "openvino"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: option --backend: openvino needs the export extra") and "pip install" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_auto_resolves_by_the_measured_table(weights, precision, monkeypatch):
    """``auto`` takes the facegan row (nothing is exported before the first image)."""
    monkeypatch.delenv("GANTOOLS_BACKEND", raising=False)  # tests/conftest.py sets torch for the suite
    plugin = gantools.load("faces", weights=str(weights), precision=precision, threads=1)  # backend auto
    plugin.ensure_setup()
    resolved = plugin.face.precision  # bf16 only on CPUs that have it
    first = next((b for b in choices("facegan", resolved) if backends.available(b)), "torch")
    assert plugin.face.synthesis.name == first and plugin.face.synthesis.graph is None
    monkeypatch.setenv("GANTOOLS_BACKEND", "onnxruntime")
    assert plugin.face.use_backend("auto") == "onnxruntime"
    assert plugin.face.use_backend("torch") == "torch"  # a named backend wins


def test_generate_help_lists_backend_and_imports_no_backend_package():
    code = ("import sys\nfrom gantools.cli import main\n"
            "try:\n    main(['generate', 'faces', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('onnx', 'onnxruntime', 'openvino', 'onnxscript', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "--backend" in done.stdout and "onnxruntime" in done.stdout
