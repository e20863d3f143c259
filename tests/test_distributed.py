"""The Ray engine (gantools.distributed): the local runner's files, summary and errors, on Ray Data.

Ray starts once for this module (``ray_session`` in conftest.py: embedded, 2 CPUs, no GPUs) and each
Ray job covers several checks; the bad-input tests that need no cluster start no Ray. Images are
tiny.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gantools

ray = pytest.importorskip("ray")
cv2 = pytest.importorskip("cv2")

import gantools.distributed as distributed  # noqa: E402
from gantools.cli import main  # noqa: E402

#: the built-in plugins with shipped weights but resize (the CLI test's), options that make them quick
PLUGINS = [
    ("upscale", {"model": "fidelity", "scale": 2}),
    ("stylize", {"style": "candy"}),
    ("faces", {"steps": 1}),
]


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
    """A summary (or its ``--json`` text, parsed) without timings, outputs as names, files sorted."""
    data = json.loads(json.dumps(summary if isinstance(summary, dict) else summary.to_dict()))
    for key in ("seconds", "images_per_second"):
        data.pop(key)
    for entry in data["files"]:
        entry["output"] = Path(entry["output"]).name if entry["output"] else None
    data["files"].sort(key=lambda entry: entry["input"])  # the local runner records in finishing order
    return data


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# -- without a cluster -----------------------------------------------------------------------

def test_help_imports_no_ray_and_missing_extra_is_named(inputs: Path, tmp_path: Path) -> None:
    """One interpreter: ``gantools --help`` loads no ray module; then, with ray unimportable,
    ``--engine ray`` is one error line naming the extra, exit 2."""
    code = (
        "import contextlib, io, json, sys\n"
        "from gantools.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    helped = main(['--help'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'ray')\n"
        "sys.modules['ray'] = None\n"
        "ran = main(['run', 'resize', sys.argv[1], '-o', sys.argv[2], '--engine', 'ray'])\n"
        "print(json.dumps({'helped': helped, 'loaded': loaded, 'ran': ran}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(inputs / "a.png"), f"{tmp_path}/o/"],
                            capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout) == {"helped": 0, "loaded": [], "ran": 2}, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "gantools[distributed]" in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_usage_errors_before_ray_starts(inputs: Path, tmp_path: Path, capsys) -> None:
    """Each a one-line error, exit 2, no output written and no Ray started."""
    src, out, running = str(inputs / "a.png"), f"{tmp_path}/o/", ray.is_initialized()
    cases = [
        (["run", "resize", src, "-o", "-", "--engine", "ray"], "-o -"),
        (["run", "resize", "-", "-o", out, "--engine", "ray"], "stdin"),
        (["run", "resize", "foo://bucket/a.png", "-o", out, "--engine", "ray"], "unknown URI scheme 'foo://'"),
        (["run", "resize", src, "-o", "foo://bucket/out/", "--engine", "ray"], "-o foo://bucket/out/: unknown URI"),
        (["run", "resize", src, "-o", "s3://bucket/out/"], "needs --engine ray"),
        (["run", "resize", src, "-o", out, "--actors", "2"], "--engine ray"),
        (["run", "resize", src, "-o", out, "--engine", "ray", "--address", "127.0.0.1:9"], "--address"),
        (["run", "resize", src, "-o", "file:///tmp/o/", "--engine", "ray", "--compare"], "not - or a URI"),
    ]
    for argv, needle in cases:
        assert main([*argv, "--scale", "2"]) == 2, argv
        assert needle in _one_error_line(capsys), argv
    assert ray.is_initialized() == running
    assert not (tmp_path / "o").exists()


def test_python_api_refuses_a_uri_output_on_the_local_engine(inputs: Path, tmp_path: Path, monkeypatch) -> None:
    """``gantools.run(..., "s3://...")`` is the CLI's usage error, and makes no local ``s3:`` folder."""
    import gantools
    from gantools.batch_plan import BatchUsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BatchUsageError, match="needs --engine ray"):
        gantools.run("resize", str(inputs / "a.png"), "s3://bucket/out/", scale=2)
    assert list(tmp_path.iterdir()) == []


# -- on the session's embedded Ray -------------------------------------------------------------

def test_gpus_the_cluster_lacks(ray_session, inputs: Path, tmp_path: Path, capsys) -> None:
    argv = ["run", "resize", str(inputs / "a.png"), "-o", f"{tmp_path}/o/", "--engine", "ray",
            "--gpus-per-actor", "1", "--scale", "2"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "--gpus-per-actor" in line and "the Ray cluster has 0" in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name,options", PLUGINS, ids=[p[0] for p in PLUGINS])
def test_same_files_and_summary_as_local(ray_session, inputs: Path, tmp_path: Path, name: str,
                                         options: dict) -> None:
    """One Ray job per plugin over several inputs (a bad one included): byte-identical files, the
    same summary and exit code as the local runner."""
    todo = [str(inputs / "a.png"), str(inputs / "b.jpg"), str(inputs / "bad.png")]
    if name != "faces":  # projection: one image is enough, and the slowest step of this module
        todo.append(str(inputs / "c.png"))
    local = gantools.run(name, todo, tmp_path / "local", progress="off", **options)
    remote = distributed.run(name, todo, tmp_path / "ray", progress="off", batch_size=2, **options)
    assert local.done >= 2 and local.failed == 1
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert _comparable(remote) == _comparable(local)
    assert remote.exit_code == local.exit_code == 1


def test_uri_output_atomic_writes_and_resume_rules(inputs: Path, monkeypatch) -> None:
    """:class:`UriOutput` on pyarrow's in-memory file system, with both pyarrow strategies (a
    temporary name moved into place; one stream to the final key, as on S3): names under the
    URI (percent-encoded), a complete output skipped, an empty or non-image object redone, a
    folder at an output name an error, the bytes written whole and no temporary object left."""
    from pyarrow import fs

    from gantools.batch_plan import Job, Source, own_output_pattern
    from gantools.distributed import outputs

    data, own = (inputs / "a.png").read_bytes(), own_output_pattern("{stem}.{ext}", "resize", 2)
    for how, stores in (("move", frozenset()), ("stream", frozenset({"mock"}))):
        monkeypatch.setattr(outputs, "OBJECT_STORES", stores)
        memory = fs._MockFileSystem()
        memory.create_dir("bucket/out/sub/folder.png")
        for name, old in (("empty.png", b""), ("junk.png", b"not an image"), ("done.png", data)):
            with memory.open_output_stream(f"bucket/out/sub/{name}") as stream:
                stream.write(old)
        target = outputs.UriOutput("mock://bucket/out/", memory, "bucket/out", "folder")
        names = ["a b.png", "empty.png", "junk.png", "done.png", "folder.png"]
        jobs = target.place([Job(Source(f"/in/{n}", f"/in/{n}"), f"{target.plan_as(False)}/sub/{n}", "png")
                             for n in names], own, overwrite=False)
        assert outputs.strategy(memory) == how
        assert [(j.dest, j.state) for j in jobs] == [
            ("mock://bucket/out/sub/a%20b.png", "todo"), ("mock://bucket/out/sub/empty.png", "todo"),
            ("mock://bucket/out/sub/junk.png", "todo"), ("mock://bucket/out/sub/done.png", "skip"),
            ("mock://bucket/out/sub/folder.png", "error")]
        for job in jobs[:3]:
            target.write(job.dest, data)
        listed = memory.get_file_info(fs.FileSelector("bucket/out/sub"))
        assert sorted(i.base_name for i in listed) == sorted(n.replace("%20", " ") for n in names)
        for name in names[:4]:
            with memory.open_input_stream(f"bucket/out/sub/{name}") as stream:
                assert stream.read() == data, (how, name)
        assert target.statuses(j.dest for j in jobs) == ["complete"] * 4 + ["special"]
        with pytest.raises(OSError, match=r"^cannot write mock://bucket/out/sub/folder\.png: "):
            target.write(jobs[4].dest, data)
        assert sorted(i.base_name for i in memory.get_file_info(fs.FileSelector("bucket/out/sub"))) == sorted(
            n.replace("%20", " ") for n in names)


def test_cli_uri_output_json_then_resume(ray_session, inputs: Path, tmp_path: Path, capsys) -> None:
    """``gantools run resize --engine ray --actors 2 --json -o file://...``: the local runner's
    bytes and summary (outputs as URIs), the bad file one error line (exit 1); a rerun over the
    input folder as a ``file://`` URI skips the complete output and redoes an empty one and one
    that is not an image."""
    out, report = tmp_path / "out", tmp_path / "summary.json"
    argv = ["run", "resize", str(inputs), "-o", f"file://{out}/", "--scale", "2", "--engine", "ray", "--actors",
            "2", "--batch-size", "2", "--json", str(report), "--quiet"]
    assert main(argv) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "bad.png" in errors[0] and "not a recognised image" in errors[0], errors
    local = gantools.run("resize", inputs, tmp_path / "local", scale=2, progress="off")
    assert (local.done, local.failed) == (3, 1) and _files(out) == _files(tmp_path / "local")
    written = json.loads(report.read_text())
    assert _comparable(written) == _comparable(local)
    assert sorted(f["output"] for f in written["files"] if f["status"] == "done") == [
        f"file://{out}/{name}" for name in ("a.png", "b.jpg", "c.png")]
    (out / "a.png").write_bytes(b"")  # partial outputs are redone, the complete one is skipped
    (out / "c.png").write_bytes(b"not an image")
    again = distributed.run("resize", [f"file://{inputs}/"], f"file://{out}/", scale=2, progress="off")
    assert (again.done, again.skipped, again.failed) == (2, 1, 1)
    assert _files(out) == _files(tmp_path / "local")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary or lock files
