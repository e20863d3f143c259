"""A non-editable install works: build the wheel, install it into a fresh venv, run it.

The fresh venv has no system site-packages; the wheel is installed with ``--no-deps`` and the
dependencies (torch, OpenCV, ...) come from the development venv through a ``.pth`` file, so the
test needs no network. A ``.pth`` line only adds a folder to ``sys.path``: the development
venv's own ``.pth`` files (its editable gantools) are not run, so ``gantools`` must come from
the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from clitools import ROOT, read, write
from imagegen import gradient

pytestmark = pytest.mark.slow
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "gantools", "plugins", "weights")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build from a copy of the sources (keeps build/ and egg-info out of the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    (src / "weights" / "state").mkdir(exist_ok=True)  # a training state, which must stay out of the wheel
    (src / "weights" / "state" / "wheel-test.d.safetensors").write_bytes(b"state")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp / "dist"), str(src)],
        check=True, capture_output=True,
    )
    (built,) = (tmp / "dist").glob("gantools-*.whl")
    return built


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    plugin_packages = {"gantools_resize", "gantools_upscale", "gantools_stylize", "gantools_faces", "gantools_stylegan"}
    assert tops == {"gantools", *plugin_packages, wheel.name.split("-py3")[0] + ".dist-info"}  # no bare `plugins`
    for needed in ("gantools_resize/__init__.py", "gantools_stylize/loader.py",
                   "gantools/weights_data/__init__.py", "gantools/weights_data/manifest.toml", "gantools/batch.py"):
        assert needed in names
    sources = {str(p.relative_to(ROOT)) for root in ("gantools", "plugins") for p in (ROOT / root).rglob("*.py")}
    packaged = {n.replace("gantools/weights_data", "weights") for n in names if n.endswith(".py")}
    packaged = {n if n.startswith("gantools/") or n.startswith("weights") else "plugins/" + n for n in packaged}
    assert sources <= packaged, f"source files missing from the wheel: {sorted(sources - packaged)}"
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if "/state/" in n], "training states (weights/state/) are not packed into the wheel"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gantools = gantools.cli:main" in entry_points
    for name in ("resize", "upscale", "stylize", "faces", "stylegan"):  # built-ins register like third-party plugins
        assert f"{name} = gantools_{name}" in entry_points


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, capture_output=True)
    return root


def in_venv(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, check=False,
                          env={**env, "COLUMNS": "200", "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"})


def test_installed_wheel_lists_and_runs(venv, tmp_path):
    work = tmp_path / "elsewhere"  # outside the repository: nothing can come from the checkout
    src = write(work / "in" / "a.png", gradient(8, 10))
    listing = in_venv(venv, str(venv / "bin" / "gantools"), "list", cwd=work)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]  # not a TTY: tab-separated
    assert any(row[0] == "resize" and "ok" in row for row in rows), listing.stdout
    run = in_venv(venv, str(venv / "bin" / "gantools"), "run", "resize", "in", "-o", "out", "--scale", "2", cwd=work)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(read(work / "out" / "a.png").shape, (16, 20, 3))
    assert src.exists()


def test_installed_packages_come_from_the_wheel(venv, tmp_path):
    code = ("import gantools, gantools_resize as r, gantools.weights_data as w, importlib.util; "
            "print(gantools.__file__); print(r.__file__); print(w.__file__); "
            "print(importlib.util.find_spec('plugins'))")
    proc = in_venv(venv, str(venv / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    *paths, plugins_spec = proc.stdout.split()
    for path in paths:
        assert Path(path).is_relative_to(venv) and not Path(path).is_relative_to(ROOT), path
    assert plugins_spec == "None"
