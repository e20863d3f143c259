"""`gantools train` as a user runs it: tasks, options, bad data, stops and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from imagegen import training_images

from gantools.train.api import make_config, run_training
from gantools.train.data import DataError, ImageSet
from gantools.train.export import read_export
from gantools.train.rundir import CheckpointError

TINY = ["--num-feat", "8", "--num-conv", "1", "--patch", "8", "--batch-size", "2", "--threads", "1", "--workers", "1"]


def _images(folder: Path, n: int = 4, size: int = 48) -> Path:
    return training_images(folder, n, size)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gantools", "train", *args], capture_output=True, text=True, timeout=300, **kw)


def test_list_and_help() -> None:
    res = _cli("--list")
    assert res.returncode == 0 and "upscale" in res.stdout
    res = _cli("upscale", "--help")
    assert res.returncode == 0
    for flag in ("--data", "--out", "--steps", "--time", "--resume", "--init", "--precision", "--threads", "--scale", "--mode"):
        assert flag in res.stdout


def test_list_shows_one_line_descriptions_not_modules() -> None:
    from gantools.train.task import get_task, task_paths

    res = _cli("--list")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(task_paths())
    for line, name in zip(lines, sorted(task_paths())):
        summary = get_task(name).summary()
        assert summary and "\n" not in summary and line.split(None, 1)[1] == summary
    assert ".train" not in res.stdout  # no module paths


def test_train_help_groups_options_with_help_and_defaults() -> None:
    from gantools.cli.train import train_command

    options = [p for p in train_command("upscale").params if p.opts[0] != "--help"]
    for p in options:
        assert p.help and p.help.strip(), p.opts
        if not p.is_flag and not p.required:  # every value flag says what happens when it is not given
            assert "default" in p.help, p.opts
    env = {**os.environ, "COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    res = _cli("upscale", "--help", env=env)
    assert res.returncode == 0, res.stderr
    for panel in ("Run options", "Training options", "Checkpoints and logs", "Platform options", "upscale options"):
        assert panel in res.stdout
    rows = {line.split()[1]: line for line in res.stdout.splitlines() if line.startswith("│ ") and "--" in line}
    assert "[default: 32]" in rows["--batch-size"]  # the task's default, not the engine's 16
    assert "[default: 0.0005]" in rows["--lr-g"] and "[default: auto]" in rows["--device"]
    assert "[default: 4]" in rows["--scale"]


@pytest.mark.parametrize("bad, flag", [
    (["--steps", "abc"], "--steps"),
    (["--precision", "fp16"], "--precision"),
    (["--time", "soon"], "--time"),
    (["--time", "5"], "--time"),  # a unit is required: not 5 seconds
    (["--time", "0"], "--time"),
    (["--time", "0s"], "--time"),
    (["--steps", "-3"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--scale", "3"], "--scale"),
    (["--nope"], "--nope"),
])
def test_bad_value_is_one_line_exit_2(tmp_path, capsys, bad: list[str], flag: str) -> None:
    from gantools.cli import main

    code = main(["train", "upscale", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *bad])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and flag in err
    assert not (tmp_path / "run").exists()


def test_durations() -> None:
    from gantools.cli.train import parse_duration

    assert [parse_duration(t) for t in ("30s", "45m", "2h", "1h30m", "1.5h")] == [30, 2700, 7200, 5400, 5400]
    for bad in ("5", "0", "0m", "", "1x", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("changed, flag", [
    (["--scale", "4"], "--scale"),  # the run has 2
    (["--num-feat", "16"], "--num-feat"),  # the run has 8
    (["--mode", "photo"], "--mode"),  # the run kept the default, fidelity
    (["--lr-g", "0.1"], "--lr-g"),  # an engine setting
])
def test_resume_refuses_changed_settings(tmp_path, capsys, changed: list[str], flag: str) -> None:
    from gantools.cli import main

    data = _images(tmp_path / "data", n=2)
    run = tmp_path / "run"
    opts = {"num_feat": 8, "num_conv": 1, "patch": 8, "scale": 2}
    run_training(make_config("upscale", task_options=opts, out=str(run), data=[str(data)], steps=1, threads=1, workers=1,
                             batch_size=2), log=lambda m: None)
    before = sorted((run / "checkpoints").iterdir())
    same = ["--scale", "2", "--num-feat", "8", "--batch-size", "2", "--workers", "1", "--threads", "1"]
    code = main(["train", "upscale", "--out", str(run), "--resume", "--steps", "2", *same, *changed])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and f"{flag} " in err and "config.json" in err
    assert sorted((run / "checkpoints").iterdir()) == before  # nothing trained
    from gantools.cli.train import _check_resume

    _check_resume("upscale", {"out": str(run), "steps": 5, "time": 60.0, "workers": 3, "threads": 2},
                  {"scale": 2, "num_feat": 8, "mode": "fidelity"})  # same or resumable settings pass


def test_cli_trains_and_exports(tmp_path) -> None:
    data = _images(tmp_path / "data")
    res = _cli("upscale", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "3", "--scale", "2", *TINY)
    assert res.returncode == 0, res.stderr
    state, meta = read_export(tmp_path / "run" / "export.safetensors")
    assert meta["task"] == "upscale" and meta["scale"] == "2" and meta["steps"] == "3"
    assert "gantools train upscale" in meta["command"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3 and "g_l1" in rows[-1]
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    # the export runs at once as --weights
    out = subprocess.run([sys.executable, "-m", "gantools", "run", "upscale", str(data / "img0.png"), "-o", str(tmp_path / "o.png"),
                          "--weights", str(tmp_path / "run" / "export.safetensors")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert cv2.imread(str(tmp_path / "o.png")).shape == (96, 112, 3)


def test_empty_and_mixed_folders(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    res = _cli("upscale", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"), "--steps", "1", *TINY)
    assert res.returncode == 2 and "no images found" in res.stderr
    mixed = _images(tmp_path / "mixed", n=2)
    (mixed / "notes.txt").write_text("hello")
    (mixed / "broken.png").write_bytes(b"not a png")
    logs: list[str] = []
    images = ImageSet([mixed], log=logs.append)
    assert len(images) == 2 and images.skipped == 1 and images.bad == 1
    assert "1 non-image files skipped" in logs[0] and "1 unreadable images skipped" in logs[0]


def test_small_images_are_upscaled_or_skipped_and_said_once(tmp_path) -> None:
    folder = _images(tmp_path / "small", n=3, size=20)
    logs: list[str] = []
    up = ImageSet([folder], min_side=32, log=logs.append)
    assert len(logs) == 1 and "3 images smaller than 32 px upscaled" in logs[0]
    assert min(up[0].shape[:2]) == 32
    with pytest.raises(DataError, match="none of the 3 image files could be used; 3 of them are smaller than 32 px"):
        ImageSet([folder], min_side=32, small="skip")


def test_unwritable_run_dir(tmp_path) -> None:
    data = _images(tmp_path / "data", n=1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _cli("upscale", "--data", str(data), "--out", str(blocker / "run"), "--steps", "1", *TINY)
    assert res.returncode == 2 and "cannot write the run directory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_resume_from_other_task_or_arch(tmp_path) -> None:
    data = _images(tmp_path / "data", n=2)
    base = dict(out=str(tmp_path / "run"), data=[str(data)], steps=2, threads=1, workers=1, batch_size=2)
    run_training(make_config("upscale", task_options={"num_feat": 8, "num_conv": 1, "patch": 8}, **base), log=lambda m: None)
    other = make_config("upscale", task_options={"num_feat": 16, "num_conv": 1, "patch": 8}, **{**base, "steps": 4})
    # saved options win on resume, so a different architecture needs a checkpoint of another run
    import torch

    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1]
    state = torch.load(ckpt, weights_only=True)
    state["arch"]["name"] = "rrdbnet"
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match="architecture 'rrdbnet'"):
        run_training(other, resume=True, log=lambda m: None)


def test_ctrl_c_checkpoints_then_exits(tmp_path) -> None:
    data = _images(tmp_path / "data", n=2)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "stderr.txt"  # a file, not a pipe: nobody drains a pipe while the child runs
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gantools", "train", "upscale", "--data", str(data), "--out", str(run),
                                 "--steps", "100000", "--log-every", "1", *TINY], stderr=err, text=True, env=env)
        deadline = time.time() + 300  # a busy machine: wait for training to be under way
        while time.time() < deadline and not (run / "metrics.jsonl").exists() and proc.poll() is None:
            time.sleep(0.2)
        assert (run / "metrics.jsonl").exists(), log.read_text()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
    assert proc.returncode == 130, log.read_text()
    ckpts = sorted((run / "checkpoints").glob("ckpt-*.pt"))
    assert ckpts and (run / "export.safetensors").exists()
    assert not list(run.rglob("*.part"))
    step = int(ckpts[-1].stem.split("-")[1])
    res = _cli("upscale", "--out", str(run), "--resume", "--steps", str(step + 2), *TINY)
    assert res.returncode == 0, res.stderr
    assert f"resumed {run} at step {step}" in res.stderr.replace("\n", " ")
