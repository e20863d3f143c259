"""The Ray engine (gantools.distributed): the local runner's files, summary and errors, on Ray Data.

Ray starts once for this module (embedded, 2 CPUs) and shuts down at the end. Images are tiny.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gantools
from gantools.batch_plan import BatchUsageError

ray = pytest.importorskip("ray")
cv2 = pytest.importorskip("cv2")

import gantools.distributed as distributed  # noqa: E402

#: every built-in plugin with options that make it quick: (name, options)
PLUGINS = [
    ("resize", {"scale": 2}),
    ("upscale", {"model": "fidelity", "scale": 2}),
    ("stylize", {"style": "candy"}),
    ("faces", {"steps": 2}),
]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One embedded 2-CPU Ray for the module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Three tiny images (colour PNG, gray JPEG, BGRA PNG) and one file that is not an image."""
    folder = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(7)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 256, (20, 16, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "b.jpg"), rng.integers(0, 256, (16, 24), dtype=np.uint8))
    cv2.imwrite(str(folder / "c.png"), rng.integers(0, 256, (16, 16, 4), dtype=np.uint8))
    (folder / "bad.png").write_bytes(b"not an image at all")
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def _comparable(summary) -> dict:
    data = summary.to_dict()
    for key in ("seconds", "images_per_second"):
        data.pop(key)
    for entry in data["files"]:
        entry["output"] = Path(entry["output"]).name if entry["output"] else None
    data["files"].sort(key=lambda entry: entry["input"])  # the local runner records in finishing order
    return data


@pytest.mark.parametrize("name,options", PLUGINS, ids=[p[0] for p in PLUGINS])
def test_same_files_and_summary_as_local(inputs: Path, tmp_path: Path, name: str, options: dict) -> None:
    todo = [str(inputs / "a.png"), str(inputs / "b.jpg"), str(inputs / "bad.png")]
    if name != "faces":
        todo.append(str(inputs / "c.png"))
    local = gantools.run(name, todo, tmp_path / "local", progress="off", **options)
    remote = distributed.run(name, todo, tmp_path / "ray", progress="off", batch_size=2, **options)
    assert local.done >= 2 and local.failed == 1
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert _comparable(remote) == _comparable(local)
    assert remote.exit_code == local.exit_code == 1


def test_two_actors_resume_and_json(inputs: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "summary.json"
    first = distributed.run("resize", inputs, out, scale=2, actors=2, progress="off", json=str(report))
    assert (first.done, first.failed) == (3, 1)
    assert json.loads(report.read_text())["done"] == 3
    assert "bad.png: not a recognised image" in first.errors[0][1]
    (out / "a.png").write_bytes(b"")  # a partial output is redone, complete ones are skipped
    again = distributed.run("resize", inputs, out, scale=2, progress="off")
    assert (again.done, again.skipped, again.failed) == (1, 2, 1)
    assert _files(out) == _files(Path(gantools.run("resize", inputs, tmp_path / "l", scale=2,
                                                   progress="off").files[0].output).parent)


def test_local_file_uri(inputs: Path, tmp_path: Path) -> None:
    summary = distributed.run("resize", [f"file://{inputs}/"], tmp_path / "out", scale=2, progress="off")
    assert (summary.done, summary.failed) == (3, 1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg", "c.png"]


def test_stdout_and_stdin_are_usage_errors(inputs: Path) -> None:
    with pytest.raises(BatchUsageError, match="-o -"):
        distributed.run("resize", inputs / "a.png", "-")
    with pytest.raises(BatchUsageError, match="stdin"):
        distributed.run("resize", "-", "out/")


def _cli(*args: str, block_ray: bool = False) -> subprocess.CompletedProcess:
    code = ("import sys\n" + ("sys.modules['ray'] = None\n" if block_ray else "")
            + "from gantools.cli import main\nsys.argv = ['gantools', *sys.argv[1:]]\nsys.exit(main())\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_input_is_one_line_exit_2(inputs: Path, tmp_path: Path) -> None:
    src, out = str(inputs / "a.png"), str(tmp_path / "o/")
    cases = [
        (_cli("run", "resize", src, "-o", out, "--engine", "ray", block_ray=True), "gantools[distributed]"),
        (_cli("run", "resize", src, "-o", "-", "--engine", "ray"), "-o -"),
        (_cli("run", "resize", src, "-o", out, "--engine", "ray", "--address", "127.0.0.1:9"), "--address"),
        (_cli("run", "resize", src, "-o", out, "--actors", "2"), "--engine ray"),
    ]
    for result, needle in cases:
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_help_does_not_import_ray() -> None:
    code = "import sys\nfrom gantools.cli import main\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
