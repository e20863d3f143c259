"""``gantools export``: networks to ONNX, run by ONNX Runtime against the torch network.

Tiny random networks of every image architecture go through the CLI with ``--weights`` (as a
user's file would); ONNX Runtime then runs them at sizes other than the exported check's (odd
ones included) and is compared with gantools' own torch run (``ImageRunner.whole``, untiled). One
shipped model (fidelity x2) and the faces generator are exported too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gantools.cli import main
from gantools.nn import create_arch, describe_arch
from gantools.runner import ImageRunner

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import gantools.export as export  # noqa: E402 - after the skips

#: arch, tiny config, plugin that runs it, file suffix
ARCHS = [
    ("srvgg", dict(num_feat=8, num_conv=2, upscale=4), "upscale", ".safetensors"),
    ("rrdbnet", dict(num_feat=8, num_block=1, num_grow_ch=4, scale=2), "upscale", ".pth"),
    ("stylenet", dict(base_channels=4, n_res=1), "stylize", ".safetensors"),
    ("cyclegan", dict(ngf=4, n_blocks=1), "stylize", ".pth"),
    ("animegan2", {}, "stylize", ".safetensors"),
]


def save_random(arch: str, config: dict, path: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_arch(arch, **config).eval()
    with torch.no_grad():  # non-trivial norm affines so a wrong normalisation shows
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path)) if path.suffix == ".safetensors" else torch.save(state, path)
    return net


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["export", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def ort_run(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.mark.parametrize("arch,config,plugin,suffix", ARCHS, ids=[a[0] for a in ARCHS])
def test_every_architecture_exports_and_runs_at_other_sizes(tmp_path, capsys, arch, config, plugin, suffix):
    net = save_random(arch, config, tmp_path / f"w{suffix}")
    out = tmp_path / "model.onnx"
    code, stdout, err = run_cli(capsys, plugin, "--weights", str(tmp_path / f"w{suffix}"), "-o", str(out))
    assert code == 0, err
    assert f"({arch}" in stdout and "check: ONNX Runtime vs torch" in stdout and stdout.rstrip().endswith(": ok")
    desc = describe_arch(arch, config)
    desc.model = net
    runner = ImageRunner(desc, precision="fp32", tile=0)  # gantools' own padded/cropped torch run
    meta = props(out)
    assert meta["architecture"] == arch and meta["scale"] == str(desc.scale)
    assert meta["size_multiple"] == str(desc.size.multiple) and meta["precision"] == "fp32"
    assert int(meta["minimum_size"]) >= desc.size.minimum and meta["plugin"] == plugin
    assert len(meta["source_sha256"]) == 64 and meta["gantools_version"]
    for shape in [(1, 3, 19, 33), (2, 3, 40, 17)]:
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[2]))
        want = runner.whole(x, "fp32", tile=0).clamp(0, 1).numpy()
        got = ort_run(out, x)
        assert got.shape == want.shape == (shape[0], 3, shape[2] * desc.scale, shape[3] * desc.scale)
        assert np.abs(got - want).max() <= 1e-3


def test_shipped_fidelity_x2(tmp_path, capsys):
    from gantools.weights import shipped

    out = tmp_path / "x2.onnx"
    code, stdout, err = run_cli(capsys, "upscale", "--model", "fidelity", "--scale", "2", "-o", str(out))
    assert code == 0, err
    meta = props(out)
    assert meta["source_sha256"] == shipped("upscale", name="fidelity", scale=2)[0].sha256
    assert (meta["architecture"], meta["scale"], meta["size_multiple"]) == ("srvgg", "2", "1")
    x = torch.rand(1, 3, 21, 31)
    assert ort_run(out, x).shape == (1, 3, 42, 62)


def test_faces_generator_matches_gantools_generate(tmp_path):
    import gantools
    from gantools.tensor.convert import from_tensor

    plugin = gantools.load("faces", precision="fp32")
    report = export.export_onnx(plugin, tmp_path / "faces.onnx")
    assert report.inputs == ["z", "age", "gender", "truncation"] and report.outputs == ["image"]
    assert len(report.checks) == 2 and props(report.path)["architecture"] == "facegan"
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    face = plugin.face
    for seed, psi in ((7, 1.0), (8, 0.7)):
        lat = face.latent(seed)
        feed = {"z": lat.z[None], "age": np.array([lat.age]), "gender": np.array([lat.gender]),
                "truncation": np.array([psi], np.float32)}
        img = from_tensor(torch.from_numpy(session.run(None, feed)[0]), np.uint8, rgb_to_bgr=True)
        want = plugin.generate(1, seed, truncation=psi)[0]
        assert np.abs(img.astype(int) - want.astype(int)).max() <= 1


def test_fp16_uses_the_looser_tolerance(tmp_path):
    desc = describe_arch("srvgg", dict(num_feat=8, num_conv=2, upscale=2))
    desc.model = create_arch("srvgg", num_feat=8, num_conv=2, upscale=2).eval()
    report = export.export_onnx(desc, tmp_path / "half.onnx", fp16=True)
    assert report.tolerance == export.FP16_TOLERANCE == 1e-2
    assert "fp32 torch" in report.check_line() and props(report.path)["precision"] == "fp16"
    model = onnx.load(str(report.path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    x = torch.rand(1, 3, 15, 22)
    with torch.no_grad():
        want = desc.model(x).clamp(0, 1).numpy()
    assert np.abs(ort_run(report.path, x) - want).max() <= 1e-2


def test_a_failed_check_is_an_error_and_leaves_no_file(tmp_path, monkeypatch):
    desc = describe_arch("srvgg", dict(num_feat=4, num_conv=1, upscale=1))
    desc.model = create_arch("srvgg", num_feat=4, num_conv=1, upscale=1).eval()
    monkeypatch.setattr(export, "TOLERANCE", -1.0)
    with pytest.raises(export.ExportError, match="check failed"):
        export.export_onnx(desc, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_operator_is_named(tmp_path):
    class Zeta(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.zeta(x + 2, torch.full_like(x, 2.0))

    desc = describe_arch("srvgg", dict(num_feat=4, num_conv=1, upscale=1))
    desc.model = Zeta()
    with pytest.raises(export.ExportError) as info:
        export.export_onnx(desc, tmp_path / "zeta.onnx")
    message = str(info.value)
    assert "\n" not in message and "zeta" in message and "operator" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,code,words", [
    (["nope", "-o", "x.onnx"], 2, "unknown plugin 'nope'"),
    (["resize", "-o", "{tmp}/r.onnx"], 2, "no network to export"),
    (["upscale", "-o", "{tmp}/missing/x.onnx"], 2, "does not exist"),
    (["upscale", "--model", "nope", "-o", "{tmp}/x.onnx"], 2, "--model"),
    (["stylize", "--weights", "{tmp}/none.pth", "-o", "{tmp}/x.onnx"], 2, "no such file"),
])
def test_bad_inputs_are_one_line(tmp_path, capsys, args, code, words):
    rc, stdout, err = run_cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert rc == code
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob(".*"))


def test_help_imports_no_export_library():
    probe = ("import sys; from gantools.cli import main\n"
             "for args in (['--help'], ['export', '--help'], ['export', 'upscale', '--help']):\n"
             "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('torch', 'cv2', 'onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "gantools export NAME" in proc.stdout
