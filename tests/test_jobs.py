"""Images in parallel (``--jobs``, issue 15 item 5) and ``-o name`` without an extension (item 9).

A parallel run must be indistinguishable from a sequential one except in speed: same bytes,
same messages in the same order, same summary and JSON, same handling of bad files, claims,
resume and Ctrl+C. Concurrency itself is proven with a barrier that only opens when two images
are inside the plugin at once (its timeout only guards against a hang).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import gantools
from clitools import ROOT, cli, files, snapshot, write
from imagegen import gradient, noise
from gantools import batch
from gantools.batch import BatchOptions, BatchUsageError, run_batch
from gantools.threads import ThreadPlan, jobs_option, plan_threads
from gantools.image.atomic import Claim
from gantools.plugin import Descriptor, Plugin
from gantools.progress import Reporter


def make_inputs(folder: Path) -> list[Path]:
    """Eight small images of every layout (one of odd height) and one undecodable file."""
    paths = [
        write(folder / "a_bgr.png", noise(20, 24, seed=1)),
        write(folder / "b_gray.png", noise(18, 22, channels=1, seed=2)),
        write(folder / "c_bgra.png", noise(16, 20, channels=4, seed=3)),
        write(folder / "d_16bit.png", noise(20, 16, dtype=np.uint16, seed=4)),
        write(folder / "e.jpg", gradient(24, 32)),
        write(folder / "f_odd.png", noise(21, 16, seed=5)),
        write(folder / "g.bmp", noise(14, 14, seed=6)),
        write(folder / "h.webp", noise(16, 16, seed=7)),
    ]
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return paths


class Lanczos(Plugin):
    """x2 Lanczos that refuses odd heights; declares that it can run on several images at once."""

    descriptor = Descriptor("lanczos-test", "test", "x2 Lanczos; odd heights fail", scale=2)
    parallel_safe = True

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.threads: set[str] = set()

    def process(self, image):
        self.threads.add(threading.current_thread().name)
        if image.shape[0] % 2:
            raise ValueError("odd height")
        return cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)


class Recorder(Reporter):
    """A quiet reporter that remembers every call and the thread it came from."""

    def __init__(self) -> None:
        super().__init__(verbose=True)
        self.calls: list[tuple] = []
        self.threads: set[str] = set()

    def _line(self, text: str) -> None:
        self.calls.append(("line", text))
        self.threads.add(threading.current_thread().name)

    def step(self, done: int, total: int) -> None:
        self.calls.append(("step", done, total))
        self.threads.add(threading.current_thread().name)


def timeless(summary) -> dict:
    """The summary without its times, output paths by name only."""
    data = summary.to_dict()
    for key in ("seconds", "images_per_second"):
        data.pop(key)
    data["files"] = [{**f, "output": f["output"] and Path(f["output"]).name} for f in data["files"]]
    return data


def run_jobs(plugin, src, out, jobs, **options):
    reporter = Recorder()
    summary = run_batch(plugin, [src], out, options=BatchOptions(jobs=jobs, **options), reporter=reporter)
    reporter.calls = [c for c in reporter.calls if "images/s" not in str(c)]  # the summary line has a time
    return summary, reporter


# -- the same run, in parallel --------------------------------------------------------------------
def test_parallel_run_is_byte_identical_with_the_same_messages_and_summary(tmp_path):
    make_inputs(tmp_path / "in")
    seq, seq_rep = run_jobs(Lanczos(), tmp_path / "in", tmp_path / "seq", 1)
    plugin = Lanczos()
    par, par_rep = run_jobs(plugin, tmp_path / "in", tmp_path / "par", 3)
    assert snapshot(tmp_path / "seq") == snapshot(tmp_path / "par")
    assert len(files(tmp_path / "par")) == 7 and seq.exit_code == par.exit_code == 1
    assert (par.done, par.failed) == (7, 2)  # the broken file and the odd height; the others are done
    assert timeless(seq) == timeless(par)  # files listed in the same order
    assert [str(c).replace("/seq/", "/OUT/") for c in seq_rep.calls] == \
        [str(c).replace("/par/", "/OUT/") for c in par_rep.calls]  # lines, errors and warnings in the same order
    assert any(name.startswith("gantools-compute") for name in plugin.threads)
    assert par_rep.threads == {threading.main_thread().name}  # the reporter is only called from here


def test_json_summary_and_cli_output_match_a_sequential_run(tmp_path):
    make_inputs(tmp_path / "in")
    runs = {}
    for jobs in ("1", "2"):
        proc = cli("run", "resize", str(tmp_path / "in"), "-o", str(tmp_path / f"out{jobs}"), "--jobs", jobs,
                   "--json", "-")
        assert proc.returncode == 1, proc.stderr
        data = json.loads(proc.stdout)
        data.pop("seconds"), data.pop("images_per_second")
        data["files"] = [{**f, "output": f["output"] and Path(f["output"]).name} for f in data["files"]]
        runs[jobs] = (data, [line.replace(f"out{jobs}", "OUT") for line in proc.stderr.decode().splitlines()[:-1]])
    assert runs["1"] == runs["2"]
    assert snapshot(tmp_path / "out1") == snapshot(tmp_path / "out2")


def test_upscale_in_parallel_is_byte_identical(tmp_path):
    """torch with one thread per image gives the bytes of the default thread count."""
    for i, img in enumerate([noise(24, 32, seed=11), noise(20, 20, channels=4, seed=12), noise(16, 24, seed=13)]):
        write(tmp_path / "in" / f"{i}.png", img)
    for jobs in (1, 3):
        summary = gantools.run("upscale", tmp_path / "in", tmp_path / f"out{jobs}", model="fidelity", jobs=jobs,
                               device="cpu", progress="off")
        assert summary.done == 3
    assert snapshot(tmp_path / "out1") == snapshot(tmp_path / "out3")


class Meet(Plugin):
    """Waits until two images are inside ``process`` at the same time (proof of parallel work)."""

    descriptor = Descriptor("meet", "test", "two images at once")
    parallel_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=60)

    def process(self, image):
        self.barrier.wait()
        return image.copy()


def test_two_jobs_really_compute_two_images_at_once(tmp_path):
    for i in range(4):
        write(tmp_path / "in" / f"{i}.png", noise(8, 8, seed=i))
    summary = run_batch(Meet(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(jobs=2, progress="off"))
    assert summary.done == 4 and summary.failed == 0


def test_a_plugin_that_is_not_parallel_safe_runs_one_image_at_a_time(tmp_path, capsys):
    class Unsafe(Lanczos):
        parallel_safe = False

    make_inputs(tmp_path / "in")
    plugin = Unsafe()
    summary = run_batch(plugin, [tmp_path / "in"], tmp_path / "out", options=BatchOptions(jobs=4, progress="off"))
    assert summary.done == 7 and plugin.threads == {threading.main_thread().name}
    assert "does not declare that it can process images in parallel" in capsys.readouterr().err


def test_big_results_run_alone_in_the_calling_thread(tmp_path, monkeypatch):
    make_inputs(tmp_path / "in")
    run_jobs(Lanczos(), tmp_path / "in", tmp_path / "seq", 1)
    monkeypatch.setattr(batch, "BIG_OUTPUT_PIXELS", 2500)  # a_bgr's result (40x48) is small, e.jpg's (48x64) big
    plugin = Lanczos()
    summary, _ = run_jobs(plugin, tmp_path / "in", tmp_path / "par", 2)
    assert snapshot(tmp_path / "seq") == snapshot(tmp_path / "par") and summary.done == 7
    assert threading.main_thread().name in plugin.threads and len(plugin.threads) > 1


class Threads(Plugin):
    """Returns its input; records torch's thread count inside ``process``."""

    descriptor = Descriptor("threads", "test", "records torch threads")
    parallel_safe = True

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.seen: list[int] = []

    def process(self, image):
        import torch

        self.seen.append(torch.get_num_threads())
        return image.copy()


def test_each_job_gets_its_share_of_the_cores_and_the_setting_is_restored(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    for i in range(4):
        write(tmp_path / "in" / f"{i}.png", noise(8, 8, seed=i))
    monkeypatch.setattr(batch, "cpu_cores", lambda: 4)
    before = torch.get_num_threads()
    plugin = Threads(device="cpu")
    run_batch(plugin, [tmp_path / "in"], tmp_path / "out", options=BatchOptions(jobs=2, progress="off"))
    assert plugin.seen == [2, 2, 2, 2] and torch.get_num_threads() == before


# -- bad files, interrupts, claims, resume -------------------------------------------------------
class StopsAtMarked(Plugin):
    """Raises KeyboardInterrupt (Ctrl+C) on the image whose first pixel is 255."""

    descriptor = Descriptor("stop-marked", "test", "interrupts itself on a marked image")
    parallel_safe = True

    def process(self, image):
        if image[0, 0, 0] == 255:
            raise KeyboardInterrupt
        return cv2.resize(image, None, fx=2, fy=2)


def test_ctrl_c_in_a_parallel_run_keeps_whole_files_only(tmp_path):
    for i in range(8):
        img = np.full((8, 8, 3), i, np.uint8)
        img[0, 0] = 255 if i == 3 else i
        write(tmp_path / "in" / f"{i}.png", img)
    summary = run_batch(StopsAtMarked(), [tmp_path / "in"], tmp_path / "out",
                        options=BatchOptions(jobs=2, progress="off", json=str(tmp_path / "s.json")))
    assert summary.interrupted and summary.exit_code == 130
    assert files(tmp_path / "out") == ["0.png", "1.png", "2.png"] and summary.done == 3
    assert json.loads((tmp_path / "s.json").read_text())["interrupted"] is True


SIGTERM_SCRIPT = """
import os, signal, sys, threading
import cv2
from gantools.batch import BatchOptions, run_batch
from gantools.plugin import Descriptor, Plugin

class TermAtMarked(Plugin):
    descriptor = Descriptor("term", "test", "SIGTERMs its own process on the marked image")
    parallel_safe = True
    def process(self, image):
        if image[0, 0, 0] == 255:
            os.kill(os.getpid(), signal.SIGTERM)
            for step in range(3000):  # long work, reporting progress: abandoned after the signal
                self.report_progress(step, 3000)
                threading.Event().wait(0.01)
        return cv2.resize(image, None, fx=2, fy=2)

summary = run_batch(TermAtMarked(), [sys.argv[1]], sys.argv[2], options=BatchOptions(jobs=2, progress="lines"))
sys.exit(summary.exit_code)
"""


def test_sigterm_in_a_parallel_run_is_handled_like_ctrl_c(tmp_path):
    for i in range(6):
        img = np.full((8, 8, 3), i, np.uint8)
        img[0, 0] = 255 if i == 1 else i
        write(tmp_path / "in" / f"{i}.png", img)
    script = tmp_path / "term.py"
    script.write_text(SIGTERM_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / "out")],
                          capture_output=True, cwd=ROOT, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    assert proc.returncode == 130, proc.stderr
    assert "interrupted" in proc.stderr.decode().splitlines()[-1]
    assert files(tmp_path / "out") in ([], ["0.png"])  # whole files only (0.png computes alongside), no lock left


def test_claimed_outputs_are_skipped_and_a_rerun_resumes(tmp_path):
    make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    other = Claim(out / "c_bgra.png")  # another run is writing it
    assert other.acquire()
    try:
        first, rep = run_jobs(Lanczos(), tmp_path / "in", out, 3)
    finally:
        other.release()
    assert (first.done, first.skipped, first.failed) == (6, 1, 2)
    assert any("being written by another run" in str(c) for c in rep.calls)
    (out / "a_bgr.png").unlink()
    second, _ = run_jobs(Lanczos(), tmp_path / "in", out, 3)
    assert (second.done, second.skipped, second.failed) == (2, 5, 2)
    assert not [f for f in files(out) if f.endswith((".lock", ".part"))]


# -- the auto rule -----------------------------------------------------------------------------
@pytest.mark.parametrize("todo, kw, plan", [
    (30, dict(cores=2, load=0.1), ThreadPlan(2, 1, None)),  # a batch: one image per core
    (30, dict(cores=2, load=1.0), ThreadPlan(2, 1, 1)),  # one busy process: still two images
    (30, dict(cores=16, load=None), ThreadPlan(16, 1, None)),
    (3, dict(cores=16, load=0.0), ThreadPlan(3, 5, None)),  # fewer images than cores share them
    (1, dict(cores=8, load=0.2), ThreadPlan(1, None, None)),  # one image, idle: torch's default
    (1, dict(cores=8, load=3.0), ThreadPlan(1, 5, 5)),  # one image, busy: the idle cores
    (1, dict(cores=2, load=9.0), ThreadPlan(1, 1, 1)),
    (30, dict(cores=8, load=0.0, threads=2), ThreadPlan(4, 2, 2)),  # --threads 2: four images
    (30, dict(cores=2, load=0.0, threads=2), ThreadPlan(1, 2, 2)),
    (30, dict(cores=8, load=0.0, cpu=False), ThreadPlan(1, None, None)),  # a GPU: one at a time
    (30, dict(cores=8, load=0.0, parallel_safe=False), ThreadPlan(1, None, None)),
    (30, dict(cores=8, load=0.0, jobs=3), ThreadPlan(3, 2, None)),  # --jobs 3
    (30, dict(cores=8, load=0.0, jobs=3, threads=1), ThreadPlan(3, 1, 1)),
    (30, dict(cores=8, load=4.0, jobs=1), ThreadPlan(1, 4, 4)),  # --jobs 1: one image, the idle cores
    (30, dict(cores=8, load=0.0, jobs=3, parallel_safe=False), ThreadPlan(1, None, None)),
])
def test_plan_threads(todo, kw, plan):
    assert plan_threads(todo, **kw) == plan


@pytest.mark.parametrize("value, count", [("auto", None), (None, None), ("AUTO", None), ("3", 3), (2, 2)])
def test_jobs_option(value, count):
    assert jobs_option(value) == count


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", 0])
def test_bad_jobs_values_are_usage_errors(value):
    with pytest.raises(BatchUsageError, match="--jobs"):
        jobs_option(value)


def test_bad_jobs_on_the_command_line_is_exit_2_before_any_work(tmp_path):
    src = write(tmp_path / "a.png")
    proc = cli("run", "resize", str(src), "-o", str(tmp_path / "out/"), "--jobs", "many")
    assert proc.returncode == 2 and proc.stderr.decode().startswith("error: option --jobs: 'many'")
    assert not (tmp_path / "out").exists()


# -- item 9: -o name without an extension ---------------------------------------------------------
def test_one_file_into_a_name_without_extension_is_a_usage_error(tmp_path):
    src = write(tmp_path / "a.png")
    proc = cli("run", "resize", str(src), "-o", "name", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode() == ("error: -o name: no image extension; write name/ for a folder or e.g. "
                                    "name.png for a file\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # nothing made
    with pytest.raises(BatchUsageError, match="no image extension"):
        gantools.run("resize", str(src), str(tmp_path / "name"))


@pytest.mark.parametrize("case", ["slash", "existing folder", "two inputs", "folder input", "path object"])
def test_folder_outputs_without_extension_still_work(tmp_path, case):
    src = write(tmp_path / "in" / "a.png")
    inputs, out = [str(src)], str(tmp_path / "name")
    if case == "slash":
        out += "/"
    elif case == "existing folder":
        (tmp_path / "name").mkdir()
    elif case == "two inputs":
        inputs.append(str(write(tmp_path / "in" / "b.png")))
    elif case == "folder input":
        inputs = [str(tmp_path / "in")]
    summary = gantools.run("resize", inputs if case != "path object" else src, out if case != "path object"
                           else tmp_path / "name", progress="off")
    assert summary.exit_code == 0 and "a.png" in files(tmp_path / "name")


def test_a_file_name_with_an_image_extension_is_still_the_result(tmp_path):
    src = write(tmp_path / "a.png")
    summary = gantools.run("resize", str(src), str(tmp_path / "big.jpg"), progress="off")
    assert summary.done == 1 and (tmp_path / "big.jpg").is_file()
