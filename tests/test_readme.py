"""The README's code runs verbatim.

Every fenced ``sh`` and ``python`` block of README.md runs in one temporary folder that holds
tiny versions of the files the README names (``photos/``, ``a.jpg``, ``scan.png``, ``huge.tif``,
``in/``, ...). The first two ``sh`` blocks are the set-up commands (the install itself) and are
only checked, not run. Long work (training, big processing sizes) runs with reduced settings
through :data:`REDUCED`, a table of exact README text -> what runs instead; every key must still
be in the README, so the table cannot silently go stale.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import ROOT, write
from imagegen import gradient, noise

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SETUP_BLOCKS = 2
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"

#: README text -> the reduced command the test runs (training for 2 steps, small sizes)
REDUCED = {
    "--time 30m": "--steps 2 --crop 32 --batch-size 2 --sample-size 32",
    "--time 3h": "--steps 2 --batch-size 2",
    "--out runs/sr --resume --time 2h": "--out runs/sr --resume --steps 3",
    "--scale 4 --time 2h": "--scale 4 --steps 2 --batch-size 2 --patch 8",
    "--out runs/sr-gan": "--out runs/sr-gan --steps 2 --batch-size 2 --patch 8",
    "--size 1024": "--size 64",
    "-n 64 --seed 7": "-n 4 --seed 7",
    "-o projected/": "-o projected/ --steps 2",
    "--age 70": "--age 70 --steps 2",
    "--frames 48": "--frames 4",
    "-n 16 --seed 7 --grid": "-n 4 --seed 7 --grid",
    "-n 8 --age 60": "-n 2 --age 60",
    "--directions 6 --seed 6": "--directions 2 --seed 6",
    "-n 8 -o edited/": "-n 2 -o edited/",
    "--seeds 0-35,42": "--seeds 0-3,42",
    # ship into the test's weights/ (the default is the package's), under a file name not taken there
    '--dataset "T91 + BSD200"': '--dataset "T91 + BSD200" --weights-dir weights',
    "--file upscale-fidelity-x4.safetensors": "--file upscale-mine-x4.safetensors",
}


def blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block, in README order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text())]


def runnable() -> list[tuple[str, str]]:
    """The blocks the test runs: ``sh`` after the set-up ones, and ``python``."""
    shell = [b for b in blocks() if b[0] == "sh"][SETUP_BLOCKS:]
    return shell + [b for b in blocks() if b[0] == "python"]


def reduce(code: str) -> str:
    for text, short in sorted(REDUCED.items(), key=lambda kv: -len(kv[0])):
        code = code.replace(text, short)
    return code


def _tiny_weights(folder: Path) -> None:
    import torch

    from gantools.nn import create_arch
    from gantools.nn.cyclegan import ResnetGenerator

    rrdb = create_arch("rrdbnet", num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=4, scale=4)
    torch.save({"params_ema": rrdb.state_dict()}, folder / "RealESRGAN_x4plus.pth")
    torch.save(ResnetGenerator(3, 3, 8, 2).state_dict(), folder / "latest_net_G_A.pth")


def _media(work: Path) -> None:
    """The Video section's inputs: ``clip.mp4``, ``media/`` (a clip and an image), ``anim.gif``."""
    import av
    from PIL import Image

    for path in (work / "clip.mp4", work / "media/v.mkv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            for i in range(4):
                frame = av.VideoFrame.from_ndarray(noise(24, 32, seed=i), format="bgr24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
    write(work / "media/i.png", noise(24, 32, seed=9))
    pics = [Image.fromarray(noise(12, 16, seed=i)) for i in range(3)]
    pics[0].save(work / "anim.gif", save_all=True, append_images=pics[1:], duration=100, loop=0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with every input the README names, small; ``../shared/data/faces`` beside it."""
    top = tmp_path_factory.mktemp("readme")
    work = top / "work"
    for name in ("photos/p1.jpg", "photos/sub/p2.png", "a.jpg", "a.png", "scan.png", "photo.jpg", "poster.png",
                 "in/i1.png", "in/i2.png", "me.jpg", "portraits/face.png"):
        write(work / name, noise(24, 32, seed=len(name)))
    write(work / "my_painting.jpg", noise(64, 72, seed=1))  # a style image needs 64 px
    write(work / "huge.tif", gradient(80, 72))
    for i in range(4):  # UTKFace-style names: age_gender_race_date
        write(work / f"my_photos/m{i}.png", noise(48, 48, seed=i))
        write(top / f"shared/data/faces/{20 + 10 * i}_{i % 2}_0_2017.jpg", noise(64, 64, seed=10 + i))
    _media(work)
    (work / "weights").mkdir()
    (work / "weights/upscale-fidelity-x4.safetensors").symlink_to(ROOT / "weights/upscale-fidelity-x4.safetensors")
    _tiny_weights(work)
    return work


def test_readme_has_two_cpu_setup_commands_and_no_unfenced_commands() -> None:
    setup = [code for lang, code in blocks() if lang == "sh"][:SETUP_BLOCKS]
    assert all(CPU_INDEX in code and code.count("pip install") == 2 for code in setup)
    assert "gantools run upscale examples/ -o out/" in setup[0] and "pytest" in setup[1]
    text = FENCE.sub("", README.read_text())
    assert not re.search(r"\n\n {4}\S", text), "indented code block: fence it as ```sh"
    assert all(key in README.read_text() for key in REDUCED), "REDUCED names text the README no longer has"


@pytest.mark.parametrize("index", range(len(runnable())))
def test_readme_block_runs(workspace: Path, index: int) -> None:
    lang, code = runnable()[index]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "120", "OMP_NUM_THREADS": "2"}
    if lang == "sh":
        cmd = ["bash", "-e", "-o", "pipefail", "-c", reduce(code)]
    else:
        cmd = [sys.executable, "-c", reduce(code)]
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"README block {index} ({lang}) failed:\n{code}\n{proc.stderr[-3000:]}"

