"""``--backend``: ONNX Runtime and OpenVINO run the network exactly as torch does, through the runner.

Tiny random networks (srvgg x4; stylenet, whose instance norms tile with frozen statistics) are
given as ``--weights`` files. Each backend's output is compared with the torch backend's fp32
output of the same plugin (within 1/255), whole, at a size that needs padding and tiled. The
graph cache lives in a temporary ``GANTOOLS_CACHE``; exports are counted by wrapping
:func:`gantools.backends.graphs.export`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from clitools import read, write
from safetensors.torch import save_file

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import gantools  # noqa: E402 - after the skips
import gantools.backends as backends  # noqa: E402
import gantools.backends.graphs as graphs  # noqa: E402
from gantools.backends.table import AUTO, MEASURED  # noqa: E402
from gantools.cli import main  # noqa: E402
from gantools.nn import create_arch  # noqa: E402
from gantools.plugin import OptionError  # noqa: E402

GRAPH_BACKENDS = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino not installed"))]
NETS = {"srvgg": ("upscale", dict(num_feat=8, num_conv=2, upscale=4)),
        "stylenet": ("stylize", dict(base_channels=4, n_res=1))}


def save_random(arch: str, path: Path, seed: int = 0) -> Path:
    """A random network of ``arch`` (non-trivial biases and norm affines) as safetensors."""
    torch.manual_seed(seed)
    net = create_arch(arch, **NETS[arch][1]).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def image(h: int, w: int, seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    """A smooth BGR image with texture (values over the whole range of ``dtype``)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 5 + c) * np.cos(y / 7 - c) for c in range(3)], -1)
    base += rng.normal(0, 0.05, base.shape)
    top = np.iinfo(dtype).max
    return np.clip(base * top, 0, top).astype(dtype)


def levels(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache for the module's comparison tests (each tiny network is exported once)."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANTOOLS_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    return {arch: save_random(arch, root / f"{arch}.safetensors") for arch in NETS}


def run(arch: str, weights: dict[str, Path], img: np.ndarray, backend: str, precision: str = "fp32",
        tile: int = 0, stats_pixels: int | None = None) -> tuple[np.ndarray, gantools.Plugin]:
    plugin = gantools.load(NETS[arch][0], weights=str(weights[arch]), backend=backend, precision=precision,
                           threads=1, tile=tile)
    plugin.ensure_setup()
    if stats_pixels:
        plugin.runner.tiler.stats_pixels = stats_pixels  # statistics from a downscaled copy
    return plugin.process(img), plugin


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
@pytest.mark.parametrize("arch", list(NETS))
def test_whole_image_with_padding_matches_torch(cache, weights, arch, backend):
    img = image(23, 30)  # stylenet needs multiples of 4: padded by the runner, cropped back
    want, _ = run(arch, weights, img, "torch")
    got, plugin = run(arch, weights, img, backend)
    assert plugin.runner.backend.name == backend
    assert got.shape == want.shape == (23 * plugin.scale, 30 * plugin.scale, 3)
    assert levels(got, want) <= 1


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
@pytest.mark.parametrize("arch,tile,stats", [("srvgg", 24, None), ("stylenet", 80, 48 * 64)])
def test_tiled_image_matches_torch_tiled(cache, weights, arch, tile, stats, backend):
    """srvgg: feathered tiles; stylenet: tiles with instance-norm statistics frozen from a
    downscaled copy (the ``net`` graph's statistics outputs fed to the ``frozen`` graph)."""
    img = image(150, 190, seed=1)
    want, _ = run(arch, weights, img, "torch", tile=tile, stats_pixels=stats)
    got, plugin = run(arch, weights, img, backend, tile=tile, stats_pixels=stats)
    runner = plugin.runner
    assert max(tile, runner.tiler.min_tile(runner.descriptor)) < 150, "the image must really be tiled"
    assert levels(got, want) <= 1
    whole, _ = run(arch, weights, img, "torch")
    if arch == "stylenet":  # frozen statistics differ from the whole image's: the tiled path really ran
        assert levels(want, whole) > 1
    if runner.backend.graphs.frozen_stats:
        assert runner.backend.graphs.file("frozen").exists()


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_sixteen_bit_runs_fp32_on_a_bf16_backend(cache, weights, backend):
    img = image(20, 24, seed=2, dtype=np.uint16)
    want, _ = run("srvgg", weights, img, "torch")
    got, plugin = run("srvgg", weights, img, backend, precision="bf16")
    assert got.dtype == np.uint16 and plugin.runner.resolve(img.dtype) == "fp32"
    assert levels(got, want) <= 257  # 1/255 of the 16-bit range


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_cli_run_matches_torch(cache, weights, tmp_path, capsys, backend):
    src = write(tmp_path / "in.png", image(21, 26, seed=3))
    outs = {}
    for b in ("torch", backend):
        outs[b] = tmp_path / f"{b}.png"
        code = main(["run", "upscale", str(src), "-o", str(outs[b]), "--weights", str(weights["srvgg"]),
                     "--backend", b, "--precision", "fp32", "--threads", "1", "--quiet"])
        assert code == 0, capsys.readouterr().err
    a, b = read(outs["torch"]), read(outs[backend])
    assert a.shape == b.shape == (84, 104, 3) and levels(a, b) <= 1


@pytest.fixture
def exports(tmp_path, monkeypatch, graph_exports) -> list[str]:
    """A fresh cache; returns the list of variants exported (appended by each export)."""
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "fresh-cache"))
    return graph_exports


def new_process() -> None:
    """Forget what this process found or compiled (as a new process would)."""
    graphs._FOUND.clear()
    graphs._COMPILED.clear()


def test_cache_hit_miss_and_invalidation(tmp_path, exports):
    path = save_random("srvgg", tmp_path / "w.safetensors", seed=0)
    img = image(16, 18, seed=4)

    def upscale(backend: str) -> np.ndarray:
        return gantools.load("upscale", weights=str(path), backend=backend, precision="fp32", threads=1).process(img)

    first = upscale("onnxruntime")
    assert exports == ["net"]  # miss: exported
    cached = sorted(graphs.cache_root().glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith("srvgg-")
    assert levels(upscale("onnxruntime"), first) == 0 and exports == ["net"]  # same process: no new export
    new_process()
    assert levels(upscale("onnxruntime"), first) == 0 and exports == ["net"]  # new process: found on disk

    save_random("srvgg", path, seed=1)  # the same file, changed weights
    changed = upscale("onnxruntime")
    assert exports == ["net", "net"]  # invalidated: a new key, a new export
    assert len(list(graphs.cache_root().glob("*.onnx"))) == 2
    assert levels(changed, upscale("torch")) <= 1 and levels(changed, first) > 1

    for f in graphs.cache_root().glob("*.onnx"):  # a damaged cache file is exported again
        f.write_bytes(b"not an onnx file")
    new_process()
    assert levels(upscale("onnxruntime"), changed) == 0 and exports == ["net", "net", "net"]


def test_fingerprint_follows_weights_not_their_layout():
    from gantools.nn import describe_arch

    def fingerprint(net: torch.nn.Module) -> str:
        desc = describe_arch("srvgg", NETS["srvgg"][1])
        desc.model = net
        return graphs.fingerprint(desc)

    a = create_arch("srvgg", **NETS["srvgg"][1]).eval()
    b = create_arch("srvgg", **NETS["srvgg"][1]).eval()
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b.to(memory_format=torch.channels_last))  # same weights, other layout
    with torch.no_grad():
        next(b.parameters())[0, 0, 0, 0] += 1e-6
    assert fingerprint(a) != fingerprint(b)


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` look uninstalled to :func:`gantools.backends.missing`."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


def test_missing_extra_is_one_usage_line(tmp_path, capsys, monkeypatch):
    hide(monkeypatch, "openvino")
    with pytest.raises(OptionError, match=r"--backend: openvino needs the export extra .*gantools\[export\]"):
        gantools.load("upscale", backend="openvino")
    src = write(tmp_path / "in.png", image(8, 8))
    code = main(["run", "upscale", str(src), "-o", str(tmp_path / "out.png"), "--backend", "openvino"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: option --backend: openvino needs the export extra") and "pip install" in err[0]
    assert not (tmp_path / "out.png").exists()


def test_auto_uses_the_measured_table():
    assert AUTO == MEASURED


def test_auto_resolves_by_the_measured_table(monkeypatch):
    from gantools.backends import table

    monkeypatch.delenv("GANTOOLS_BACKEND", raising=False)  # tests/conftest.py sets torch for the suite
    monkeypatch.setattr(table, "AUTO", MEASURED)  # the mechanism, with the measured order
    for (arch, precision), order in MEASURED.items():
        first = next(b for b in order if backends.available(b))
        assert backends.resolve_backend("auto", arch, precision, "cpu") == first
        assert backends.resolve_backend("auto", arch, precision, "cuda") == "torch"
    assert backends.resolve_backend("auto", "no-such-family", "bf16", "cpu") == "torch"
    with pytest.raises(backends.BackendUnavailable, match="CPU only"):
        backends.resolve_backend("onnxruntime", "srvgg", "fp32", "cuda")
    hide(monkeypatch, "openvino", "onnxruntime")  # nothing installed: torch whatever the table says
    assert {backends.resolve_backend("auto", a, p, "cpu") for a, p in MEASURED} == {"torch"}


def test_environment_replaces_auto_only(monkeypatch):
    monkeypatch.setenv("GANTOOLS_BACKEND", "onnxruntime")
    assert backends.resolve_backend("auto", "srvgg", "bf16", "cpu") == "onnxruntime"
    assert backends.resolve_backend("torch", "srvgg", "bf16", "cpu") == "torch"  # a named backend wins
    assert backends.resolve_backend("auto", "srvgg", "bf16", "cuda") == "torch"
    monkeypatch.setenv("GANTOOLS_BACKEND", "tensorrt")
    with pytest.raises(backends.BackendUnavailable, match="GANTOOLS_BACKEND='tensorrt'"):
        backends.resolve_backend("auto", "srvgg", "bf16", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_runner_uses_the_table(cache, weights, precision, monkeypatch):
    from gantools.backends.table import choices

    monkeypatch.delenv("GANTOOLS_BACKEND", raising=False)
    plugin = gantools.load("upscale", weights=str(weights["srvgg"]), precision=precision, threads=1)
    plugin.ensure_setup()
    resolved = plugin.runner.resolve(np.uint8)  # bf16 only on CPUs that have it
    family = plugin.runner.descriptor.backend_family  # narrow test networks have their own row
    assert family == ("srvgg-narrow" if plugin.runner.descriptor.config["num_feat"] < 32 else "srvgg")
    assert plugin.runner.backend.name == next((b for b in choices(family, resolved) if backends.available(b)), "torch")


def test_cli_option_lists_every_backend():
    from typing import get_args

    from gantools.cli.options import BACKENDS

    assert set(get_args(BACKENDS)) == set(backends.BACKENDS)


def test_help_imports_no_backend_package():
    code = ("import sys\nfrom gantools.cli import main\n"
            "try:\n    main(['run', 'upscale', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('onnx', 'onnxruntime', 'openvino', 'onnxscript', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs the export extra")
def test_openvino_is_imported_without_its_telemetry_fork(tmp_path):
    """Importing OpenVINO's conversion tools forks a telemetry sender (a hang of the README's main
    job); gantools imports the runtime without them, and leaves them importable for the application."""
    code = ("import sys, multiprocessing\n"
            "from gantools.backends.openvino_backend import core\n"
            "core()\n"
            "print('openvino_telemetry' in sys.modules, len(multiprocessing.active_children()))\n"
            "import openvino.tools.ovc\n"
            "print(hasattr(openvino.tools.ovc, 'convert_model'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "GANTOOLS_CACHE": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "0", "True"]
