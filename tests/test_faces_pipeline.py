"""faces pipeline, part 2: training task through the engine, the plugin (projection), the CLI.

A tiny synthetic "UTKFace" zip (drawn faces, UTKFace-style names, some lacking a field) is made
in a temporary folder; a 3-step run of ``FacesTask`` produces the export the plugin loads with
``--weights``. Real data (``../shared/data/faces``) is only read by the optional check at the
end, which skips when it is absent.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gantools.plugin import OptionError

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
TASK_OPTS = dict(resolution=32, channel_base=256, channel_max=32, d_channel_base=256, d_channel_max=32,
                 z_dim=16, w_dim=32, mapping_layers=2, holdout=4)


def drawn_face(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A crude synthetic face (BGR): skin disc, two eyes, a mouth, on a flat background."""
    import cv2

    img = np.full((size, size, 3), rng.integers(0, 255, 3), np.uint8)
    c = size // 2
    skin = tuple(int(v) for v in rng.integers(90, 230, 3))
    cv2.ellipse(img, (c, c), (int(size * 0.3), int(size * 0.38)), 0, 0, 360, skin, -1)
    for dx in (-1, 1):
        cv2.circle(img, (c + dx * size // 7, c - size // 10), max(1, size // 16), (30, 30, 30), -1)
    cv2.ellipse(img, (c, c + size // 6), (size // 8, size // 20), 0, 0, 360, (60, 60, 160), -1)
    return img


def make_faces_zip(path: Path, count: int = 36, seed: int = 0) -> list[str]:
    """A zip shard of JPEG faces named like UTKFace; every 7th name lacks the race field."""
    import cv2

    rng = np.random.default_rng(seed)
    names = []
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            age, gender = int(rng.integers(1, 95)), i % 2
            name = f"utkface-128/{age}_{gender}_{i % 5}_2017{i:010d}.jpg" if i % 7 else f"utkface-128/{age}_{gender}_2017{i:010d}.jpg"
            ok, buf = cv2.imencode(".jpg", drawn_face(rng))
            zf.writestr(name, buf.tobytes())
            names.append(name)
        zf.writestr("utkface-128/README.txt", "not an image")
    return names


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Three engine steps of FacesTask on the synthetic zip (R1 due at steps 0 and 2)."""
    from gantools.train.api import make_config, run_training

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("faces")
    shard = tmp / "data" / "utkface-128-03.zip"
    shard.parent.mkdir()
    names = make_faces_zip(shard)
    logs: list[str] = []
    cfg = make_config("faces", out=str(tmp / "run"), data=[str(tmp / "data")], steps=3, threads=1, workers=1,
                      batch_size=8, r1_every=2, task_options=TASK_OPTS, command="gantools train faces (test)")
    result = run_training(cfg, log=logs.append)
    return {"tmp": tmp, "result": result, "names": names, "logs": logs, "export": Path(result.export_path)}


# -- training task ----------------------------------------------------------------------------
def test_training_run_and_export(trained: dict) -> None:
    from gantools.train.export import read_export

    res = trained["result"]
    assert res.step == 3 and res.images_seen == 24
    state, meta = read_export(trained["export"])
    assert meta["task"] == "faces" and meta["arch"] == "facegan" and meta["resolution"] == "32"
    assert json.loads(meta["arch_config"])["channel_max"] == 32
    hold = json.loads(meta["holdout"])
    assert hold["count"] == 4 and hold["held"] == 4 and "sorted" in hold["rule"]
    dist = json.loads(meta["label_distribution"])
    assert np.asarray(dist["counts"]).shape == (9, 2) and np.asarray(dist["counts"]).sum() == 32
    assert torch.count_nonzero(state["mapping.w_avg"]) > 0  # tracked during training, in the EMA copy
    assert any("32 training images" in m and "4 held back" in m for m in trained["logs"])
    assert list((trained["tmp"] / "run").glob("samples/*")) or list((trained["tmp"] / "run").rglob("*.png"))


def test_resume_continues_bit_for_bit(trained: dict, tmp_path) -> None:
    """4 steps in one go == 2 steps + resume to 4 (G, EMA with w_avg and noise buffers, D)."""
    from gantools.train.api import make_config, run_training
    from gantools.train.rundir import RunDir

    def cfg(out: Path, steps: int):
        return make_config("faces", out=str(out), data=[str(trained["tmp"] / "data")], steps=steps, threads=1,
                           workers=1, batch_size=4, r1_every=3, task_options=TASK_OPTS)

    run_training(cfg(tmp_path / "full", 4), log=lambda m: None)
    run_training(cfg(tmp_path / "part", 2), log=lambda m: None)
    run_training(cfg(tmp_path / "part", 4), resume=True, log=lambda m: None)
    a = torch.load(RunDir(tmp_path / "full").checkpoints()[-1], weights_only=True)
    b = torch.load(RunDir(tmp_path / "part").checkpoints()[-1], weights_only=True)
    for key in ("G", "G_ema", "D"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"


def test_square_resize_crops_the_centre() -> None:
    from gantools_faces.train import square_resize

    img = np.zeros((40, 100, 3), np.uint8)
    img[:, 30:70] = 255  # the centre 40x40 square is white, the sides black
    out = square_resize(img, 16)
    assert out.shape == (16, 16, 3) and out.min() == 255
    assert square_resize(np.full((8, 8, 3), 7, np.uint8), 16).shape == (16, 16, 3)


def test_holdout_is_last_names_of_the_shard(tmp_path) -> None:
    from gantools_faces.train import holdout_names

    shard = tmp_path / "utkface-128-03.zip"
    names = make_faces_zip(shard, count=10)
    make_faces_zip(tmp_path / "utkface-128-00.zip", count=5, seed=1)
    held = holdout_names([str(tmp_path)], "utkface-128-03.zip", 3)
    assert held == set(sorted(names)[-3:])
    assert holdout_names([str(shard)], "utkface-128-03.zip", 0) == set()
    assert holdout_names([str(tmp_path / "utkface-128-00.zip")], "utkface-128-03.zip", 3) == set()


def test_batches_are_reproducible_and_masked(trained: dict) -> None:
    from gantools.train.api import make_config
    from gantools.train.task import get_task

    cfg = make_config("faces", out=str(trained["tmp"] / "unused"), data=[str(trained["tmp"] / "data")],
                      batch_size=16, workers=1, task_options=TASK_OPTS)
    task = get_task("faces")(cfg, log=lambda m: None)
    task.setup_data()
    a = task.make_batch(5, np.random.default_rng([0, 5]))
    b = task.make_batch(5, np.random.default_rng([0, 5]))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["real"].shape == (16, 3, 32, 32) and a["z"].shape == (16, 16)
    assert torch.equal(a["d_fake_age"] < 0, a["real_age"] < 0)
    assert torch.equal(a["d_fake_gender"] < 0, a["real_gender"] < 0)
    assert (a["fake_age"] >= 0).all() and (a["fake_gender"] >= 0).all()
    fixed = task.fixed_batch()
    assert fixed["z"].shape == (64, 16)
    assert torch.equal(fixed["z"][0], torch.from_numpy(np.random.default_rng(0).standard_normal(16).astype(np.float32)))


# -- plugin ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plugin(trained: dict):
    from gantools.registry import load

    p = load("faces", weights=str(trained["export"]), precision="fp32", steps=60)
    p.ensure_setup()
    return p


def test_plugin_descriptor_and_generate(plugin) -> None:
    from gantools.registry import get_plugin_class
    from gantools.train.task import get_task
    from gantools_faces.train import FacesTask

    d = get_plugin_class("faces").descriptor
    assert d.kind == "generator" and d.task == "faces" and d.trainable and get_task("faces") is FacesTask
    assert {o.name for o in d.options} >= {"steps", "age", "gender", "truncation", "save_latent"}
    faces = plugin.generate(3, 5)
    assert len(faces) == 3 and faces[0].shape == (32, 32, 3)
    assert np.array_equal(plugin.generate(1, 6)[0], faces[1])
    assert len(plugin.interpolate(1, 2, 4)) == 4


def test_projection_psnr_self_vs_other(plugin, tmp_path) -> None:
    """A face the generator made is reconstructed far better than a face it cannot make."""
    import cv2

    own = plugin.generate(1, 11)[0]
    out = plugin.process(own)
    assert out.shape == own.shape and out.dtype == np.uint8
    own_psnr = plugin.last_psnr
    other = cv2.resize(drawn_face(np.random.default_rng(3), 64), (32, 32), interpolation=cv2.INTER_AREA)
    plugin.process(other)
    other_psnr = plugin.last_psnr
    assert own_psnr > 24 and own_psnr > other_psnr + 6, (own_psnr, other_psnr)


def test_projection_inputs_and_relabel(trained: dict, tmp_path) -> None:
    from gantools.registry import load

    p = load("faces", weights=str(trained["export"]), precision="fp32", steps=5, age="70", gender="female",
             save_latent=str(tmp_path / "lat"))
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 255, (40, 90, 3), dtype=np.uint8)  # non-square, no face at all
    out = p.process(wide)
    assert out.shape == (32, 32, 3) and np.isfinite(p.last_psnr)
    gray16 = (rng.random((50, 50)) * 65535).astype(np.uint16)
    assert p.process(gray16).shape == (32, 32) and p.process(gray16).dtype == np.uint16
    bgra = np.dstack([wide[:, :40], np.full((40, 40), 200, np.uint8)])
    out4 = p.process(bgra)
    assert out4.shape == (32, 32, 4) and (out4[:, :, 3] == 200).all()
    saved = sorted((tmp_path / "lat").glob("latent-*.npz"))
    assert len(saved) == 3  # gray16 twice = same pixels = same file
    data = np.load(saved[0])
    assert data["w"].shape == (1, 32) and int(data["out_age_group"]) == 8 and int(data["out_gender"]) == 1
    with pytest.raises(ValueError, match="too small"):
        p.process(np.zeros((4, 30, 3), np.uint8))


def test_plugin_bad_options(trained: dict, tmp_path) -> None:
    from gantools.registry import load

    w = str(trained["export"])
    with pytest.raises(OptionError, match="--age"):
        load("faces", weights=w, age="ancient")
    with pytest.raises(OptionError, match="--gender"):
        load("faces", weights=w, gender="x")
    with pytest.raises(OptionError, match="--truncation"):
        load("faces", weights=w, truncation=0.0)
    with pytest.raises(OptionError, match="no such file"):
        load("faces", weights=str(tmp_path / "missing.safetensors"))


def test_no_shipped_model_message(monkeypatch) -> None:
    from gantools import weights
    from gantools_faces import NO_SHIPPED
    from gantools.registry import load

    monkeypatch.setattr(weights, "shipped", lambda task, **m: [])
    with pytest.raises(OptionError) as err:
        load("faces")
    assert str(err.value) == NO_SHIPPED and "--weights RUN/export.safetensors" in NO_SHIPPED


# -- CLI --------------------------------------------------------------------------------------------
def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from gantools.cli import main

    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_generate_files_grid_and_walks(trained: dict, tmp_path, capsys) -> None:
    import cv2

    w = str(trained["export"])
    code, out, err = _cli(["faces", "-n", "3", "--seed", "7", "-o", str(tmp_path / "f"), "--grid",
                           str(tmp_path / "sheet.png"), "--weights", w, "--threads", "1"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["seed0007.png", "seed0008.png", "seed0009.png"]
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None
    code, _, err = _cli(["faces", "-n", "2", "--seed", "8", "-o", str(tmp_path / "g"), "--weights", w,
                         "--age", "60", "--gender", "female", "--truncation", "0.7"], capsys)
    assert code == 0, err
    code, _, _ = _cli(["faces", "-n", "1", "--seed", "8", "-o", str(tmp_path / "h"), "--weights", w], capsys)
    same = cv2.imread(str(tmp_path / "h" / "seed0008.png"))
    assert np.array_equal(same, cv2.imread(str(tmp_path / "f" / "seed0008.png")))
    for suffix in ("gif", "mp4"):
        code, out, err = _cli(["faces", "--interpolate", "7", "42", "--frames", "4", "-o",
                               str(tmp_path / f"walk.{suffix}"), "--weights", w], capsys)
        assert code == 0, err
        assert (tmp_path / f"walk.{suffix}").stat().st_size > 0 and "4 frames" in out


@pytest.mark.parametrize("args,needle", [
    (["-n", "0"], "at least 1"),
    (["-n", "-4"], "at least 1"),
    (["-n", "2", "--truncation", "0"], "truncation"),
    (["-n", "2", "--truncation", "1.5"], "truncation"),
    (["-n", "2", "--age", "ancient"], "--age"),
    (["-n", "2", "--age", "140"], "--age"),
    (["-n", "2", "--gender", "robot"], "--gender"),
    (["--interpolate", "7"], "two seeds"),
    (["--interpolate", "7", "--frames", "4"], "two seeds"),
    (["--interpolate", "7", "8", "--frames", "1"], "--frames"),
    (["-n", "2", "--seed", "-1"], "seeds"),
])
def test_cli_bad_input_is_one_line_exit_2(trained: dict, tmp_path, capsys, args: list[str], needle: str) -> None:
    out_arg = ["-o", str(tmp_path / ("w.gif" if "--interpolate" in args else "o"))]
    code, out, err = _cli(["faces", *args, *out_arg, "--weights", str(trained["export"])], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert not (tmp_path / "o").exists()


def test_cli_through_main_gantools_command(trained: dict, tmp_path, capsys) -> None:
    cli = pytest.importorskip("gantools.cli")
    code = cli.main(["generate", "faces", "-n", "0", "-o", str(tmp_path / "x"), "--weights", str(trained["export"])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "at least 1" in err
    code = cli.main(["generate", "faces", "-n", "1", "-o", str(tmp_path / "x"), "--weights", str(trained["export"])])
    assert code == 0 and (tmp_path / "x" / "seed0000.png").exists()


# -- real data (optional) --------------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED_FACES / "utkface-128-03.zip").exists(), reason="shared face data absent")
def test_real_shard_names_and_holdout() -> None:
    from gantools_faces.labels import label_arrays
    from gantools_faces.train import holdout_names

    held = holdout_names([str(SHARED_FACES)], "utkface-128-03.zip", 1000)
    assert len(held) == 1000
    with zipfile.ZipFile(SHARED_FACES / "utkface-128-03.zip") as zf:
        names = sorted(zf.namelist())
    ages, genders = label_arrays(names)
    assert (ages >= 0).all() and (genders >= 0).mean() > 0.99


def test_shipped_default_model_generates_seed_exact_faces() -> None:
    from gantools import weights
    from gantools.registry import load

    if not weights.shipped("faces", name="default"):
        pytest.skip("no faces model shipped")
    p = load("faces", precision="fp32")
    p.ensure_setup()
    a = p.face.generate(2, 5)
    b = p.face.generate(1, 6)
    assert a[0].shape == (64, 64, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[1], b[0])  # a face depends only on its own seed
    assert a[0].std() > 20 and not np.array_equal(a[0], a[1])  # structured, distinct faces


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batched_generation_is_seed_exact(precision) -> None:
    """The shipped model renders BATCH faces per pass; seeds 5..12 in one call == one at a time."""
    from gantools.weights import shipped
    from gantools_faces import generate

    found = shipped("faces", name="default")
    if not found:
        pytest.skip("no shipped faces model")
    model = generate.FaceModel.load(found[0].verify(), precision=precision)
    assert generate.BATCH == 8
    together = model.generate(8, 5, truncation=0.7)
    alone = [model.generate(1, s, truncation=0.7)[0] for s in range(5, 13)]
    assert all(np.array_equal(a, b) for a, b in zip(together, alone))
    across = model.generate(11, 2, truncation=0.7)  # 5..12 at other places, across a batch boundary
    assert all(np.array_equal(a, b) for a, b in zip(across[3:], together))
