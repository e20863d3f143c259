"""Shipped models continue training: ``ship`` writes the training state, ``--init NAME`` loads G and D.

A tiny stylize run (synthetic images written to ``tmp_path``, 2 steps) is shipped into a
temporary weights folder (``gantools.weights.weights_dir`` monkeypatched); the references are
the run's own checkpoint tensors rounded to float16, the state's storage type.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import gantools.weights as weights
from gantools.train.api import make_config, run_training
from gantools.train.engine import Trainer
from gantools.train.export import read_export, save_safetensors
from gantools.train.rundir import RunDir
from gantools.train.ship import AlreadyShipped, main as ship_main, ship
from gantools.train.shipped import read_state
from gantools.train.task import AUTO_D_WARMUP, get_task

torch.set_num_threads(1)
#: non-default architecture options: --init NAME must bring them back without being given
TINY = {"crop": 32, "channels": 8, "blocks": 1, "d_channels": 8, "d_layers": 2, "sample_size": 32}
NAME = "tinystyle"


def _images(folder: Path, n: int, seed: int, size: tuple[int, int] = (48, 64)) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((*size, 3)) * 255).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return str(folder)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("data")
    return {"style_images": [_images(root / "style", 1, 1, (64, 80)) + "/img0.png"], "content": [_images(root / "photos", 4, 2)]}


@pytest.fixture(scope="module")
def run(tmp_path_factory, data) -> Path:
    """A finished 2-step run with a non-default adversarial loss; checkpoints of steps 1 and 2."""
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = make_config("stylize", out=str(out), steps=2, threads=1, workers=1, batch_size=2, seed=3, adv_loss="hinge",
                      checkpoint_every=1, keep=0, sample_every=100, command="gantools train stylize --out run",
                      task_options={**data, **TINY, "style_name": NAME, "w_content": 0.5})
    assert run_training(cfg, log=lambda m: None).step == 2
    return out


@pytest.fixture
def wdir(tmp_path, monkeypatch) -> Path:
    """An empty weights folder that gantools.weights reads instead of the package's."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(weights, "weights_dir", lambda: folder)
    weights.manifest.cache_clear()
    yield folder
    weights.manifest.cache_clear()


def _ship(run: Path, wdir: Path, **kw) -> dict:
    return ship(kw.pop("export", run / "export.safetensors"), name=NAME, file=f"stylize-{NAME}.safetensors",
                terms="test", weights_dir=wdir, **kw)


def _trainer(tmp_path: Path, data: dict, *, init: str = NAME, **opts) -> tuple[Trainer, list[str]]:
    """A new run started from ``init``, set up but not stepped; and its log lines."""
    logs: list[str] = []
    cfg = make_config("stylize", out=str(tmp_path / "new"), steps=1, threads=1, workers=1, init=init,
                      task_options={**data, **opts})
    trainer = Trainer(get_task("stylize"), cfg, log=logs.append)
    trainer._setup()
    return trainer, logs


def _fp16(state: dict) -> dict:
    return {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}


def _assert_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert torch.equal(got[k].cpu(), v), k


def test_ship_writes_state_and_init_loads_g_and_d_bit_exactly(run, wdir, data, tmp_path) -> None:
    entry = _ship(run, wdir, fp16=True)
    state_path = wdir / "state" / f"stylize-{NAME}.d.safetensors"
    assert entry["state"] == f"state/stylize-{NAME}.d.safetensors" and state_path.exists()
    (m,) = weights.manifest()
    assert m.state_sha256 == weights.sha256_file(state_path) and m.sha256 == weights.sha256_file(wdir / m.file)
    ckpt = RunDir(run).load_checkpoint(run / "checkpoints" / "ckpt-00000002.pt")
    meta = read_state(state_path).meta
    assert json.loads(meta["settings"])["adv_loss"] == "hinge" and meta["steps"] == "2"
    assert meta["generator_sha256"] == m.sha256

    trainer, logs = _trainer(tmp_path, data)  # no --channels, --d-channels, --adv-loss...
    assert {k: trainer.task.opts[k] for k in TINY} == TINY and trainer.task.opts["w_content"] == 0.5
    assert trainer.config.adv_loss == "hinge" and trainer.config.d_warmup == 0  # D continues: no warm-up
    _assert_equal(trainer.G.state_dict(), _fp16(ckpt["G_ema"]))
    _assert_equal(trainer.D.state_dict(), _fp16(ckpt["D"]))
    assert all(v.dtype == torch.float32 for v in trainer.D.state_dict().values() if v.is_floating_point())
    assert any("initialised discriminator" in line and str(state_path) in line for line in logs), logs

    given, _ = _trainer(tmp_path / "b", data, init=str(wdir / m.file), w_content=2.0)  # the file: same model
    assert given.task.opts["w_content"] == 2.0 and given.task.opts["channels"] == 8  # given flags win
    _assert_equal(given.D.state_dict(), _fp16(ckpt["D"]))


def test_ship_refuses_existing_state_and_foreign_checkpoint(run, wdir, capsys) -> None:
    _ship(run, wdir)
    (wdir / "manifest.toml").unlink()  # the entry gone, the files still there
    weights.manifest.cache_clear()
    (wdir / f"stylize-{NAME}.safetensors").unlink()
    with pytest.raises(AlreadyShipped, match=r"\.d\.safetensors already exists"):
        _ship(run, wdir)
    code = ship_main([str(run / "export.safetensors"), "--name", NAME, "--file", "other.safetensors", "--terms", "t",
                      "--weights-dir", str(wdir), "--checkpoint", str(run / "checkpoints" / "ckpt-00000001.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "not the run of this export" in err
    assert not (wdir / "other.safetensors").exists()


def test_init_without_state_says_d_starts_fresh(run, wdir, data, tmp_path) -> None:
    lone = tmp_path / "lone" / "export.safetensors"  # not in its run folder: no checkpoint, no state
    lone.parent.mkdir()
    shutil.copy(run / "export.safetensors", lone)
    entry = _ship(run, wdir, export=lone)
    assert "state" not in entry and not (wdir / "state").exists()
    trainer, logs = _trainer(tmp_path, data, **TINY)
    fresh = [line for line in logs if "discriminator starts fresh" in line]
    assert len(fresh) == 1 and "no training state" in fresh[0] and "\n" not in fresh[0]
    _assert_equal(trainer.G.state_dict(), RunDir(run).load_checkpoint()["G_ema"])  # shipped in fp32


def test_fresh_d_trains_alone_first_and_ship_extends_the_history(run, wdir, data, tmp_path) -> None:
    """--init with a fresh D: AUTO_D_WARMUP steps by default; during --d-warmup N, G and its EMA stay
    bit-identical to the shipped generator while D moves; from step N on, G trains. Shipping the
    continuation over the model it continued sums steps and joins the commands."""
    lone = tmp_path / "lone" / "export.safetensors"
    lone.parent.mkdir()
    shutil.copy(run / "export.safetensors", lone)
    _ship(run, wdir, export=lone)
    trainer, logs = _trainer(tmp_path, data, **TINY)
    assert trainer.config.d_warmup == AUTO_D_WARMUP
    assert sum("trains alone" in line for line in logs) == 1
    shipped = {k: v.clone() for k, v in trainer.G.state_dict().items()}

    out = tmp_path / "warm"
    cfg = make_config("stylize", out=str(out), steps=3, threads=1, workers=1, batch_size=2, init=NAME, d_warmup=2,
                      checkpoint_every=1, keep=0, sample_every=100, task_options={**data, **TINY},
                      command="gantools train stylize --init x --out warm")
    run_training(cfg, log=lambda m: None)
    c1, c2, c3 = (RunDir(out).load_checkpoint(out / "checkpoints" / f"ckpt-{i:08d}.pt") for i in (1, 2, 3))
    for c in (c1, c2):
        _assert_equal(c["G"], shipped)
        _assert_equal(c["G_ema"], shipped)
    assert any(not torch.equal(c1["D"][k], c2["D"][k]) for k in c1["D"])  # D steps in the warm-up
    assert any(not torch.equal(c3["G"][k], shipped[k]) for k in shipped)  # then G does
    assert json.loads((out / "config.json").read_text())["d_warmup"] == 2

    entry = _ship(out, wdir, export=out / "export.safetensors", force=True)  # continued: one history
    assert (entry["steps"], entry["images_seen"]) == (2 + 3, 2 * 2 + 3 * 2) and entry["command"].count(" && ") == 1
    assert entry["state"] and read_state(wdir / entry["state"]).meta["steps"] == "3"

    # the same run, resumed and shipped again: its 5 steps replace its 3 in the history, not add to them
    more = dataclasses.replace(cfg, steps=5, command="gantools train stylize --out warm --resume")
    run_training(more, resume=True, log=lambda m: None)
    again = _ship(out, wdir, export=out / "export.safetensors", force=True)
    assert (again["steps"], again["images_seen"]) == (2 + 5, 2 * 2 + 5 * 2)
    assert again["command"] == f"{entry['command']} && gantools train stylize --out warm --resume"


def test_init_with_state_not_installed_says_d_starts_fresh(run, wdir, data, tmp_path) -> None:
    """As from a wheel: the manifest names a state that weights/state/ does not hold."""
    entry = _ship(run, wdir)
    (wdir / entry["state"]).unlink()
    trainer, logs = _trainer(tmp_path, data)
    assert trainer.task.opts["channels"] == 8  # the options then come from the generator's metadata
    fresh = [line for line in logs if "discriminator starts fresh" in line]
    assert len(fresh) == 1 and "not installed" in fresh[0]


def test_init_with_other_d_options_is_a_one_line_error(run, wdir, data, tmp_path, capsys) -> None:
    from gantools.cli import main

    _ship(run, wdir)
    with pytest.raises(ValueError, match=r"--d-channels 16 \(shipped: 8\)"):
        _trainer(tmp_path, data, d_channels=16)
    code = main(["train", "stylize", "--init", NAME, "--d-layers", "3", "--out", str(tmp_path / "cli"), "--steps", "1",
                 "--threads", "1", "--workers", "1", "--quiet", "--style-images", *data["style_images"],
                 "--content", *data["content"]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "--d-layers 3 (shipped: 2)" in err and "does not fit" in err


def test_init_names_a_shipped_model_or_a_file(wdir, tmp_path) -> None:
    from gantools.train.shipped import resolve_init

    (wdir / "manifest.toml").write_text("".join(
        f'[[model]]\nfile = "up-x{s}.safetensors"\ntask = "upscale"\nname = "fid"\narch = "srvgg"\nsha256 = "0"\nscale = {s}\n\n'
        for s in (2, 4)))
    with pytest.raises(ValueError, match=r"shipped several times: up-x2.safetensors \(scale 2\).*choose with --scale"):
        resolve_init("upscale", "fid")
    with pytest.raises(ValueError, match=r"no shipped upscale model of that name \(shipped: fid\)"):
        resolve_init("upscale", "nosuch")
    with pytest.raises(FileNotFoundError, match="up-x4.safetensors: shipped weights missing"):
        resolve_init("upscale", "fid", {"scale": 4})


def test_generator_part_loads_from_a_slim_export(tmp_path) -> None:
    """A photo -> painting export (one stylenet) starts the ``ab`` half of a domain-mode pair."""
    from gantools.nn.pair import GeneratorPair
    from gantools.train.export import export_generator
    from gantools.train.shipped import _load_generator

    cfg = {"base_channels": 8, "n_res": 1}
    torch.manual_seed(0)
    source = GeneratorPair("stylenet", cfg)
    path = export_generator(tmp_path / "slim.safetensors", source.ab, "stylenet", cfg, {"task": "stylize"})
    torch.manual_seed(1)
    target = GeneratorPair("stylenet", cfg)
    fresh_ba = {k: v.clone() for k, v in target.ba.state_dict().items()}
    assert _load_generator(target, path) == "ab"
    _assert_equal(target.ab.state_dict(), source.ab.state_dict())
    _assert_equal(target.ba.state_dict(), fresh_ba)
    with pytest.raises(ValueError, match="do not fit"):
        _load_generator(GeneratorPair("stylenet", {"base_channels": 16, "n_res": 1}), path)


def test_a_slimmed_pair_export_ships_with_its_runs_state(data, wdir, tmp_path) -> None:
    """The ab half of a pair (python -m gantools_stylize.pair) is still the run's generator: ship
    writes the run's D state beside it; a slim export whose weights differ is refused."""
    from gantools_stylize.pair import slim_export

    out = tmp_path / "pair"
    cfg = make_config("stylize", out=str(out), steps=1, threads=1, workers=1, batch_size=2, sample_every=100,
                      task_options={**data, **TINY, "cycle": True, "style_name": NAME})
    run_training(cfg, log=lambda m: None)
    slim = slim_export(str(out / "export.safetensors"), str(out / "slim.safetensors"))
    entry = _ship(out, wdir, export=slim)
    d_state = read_state(wdir / entry["state"]).d
    _assert_equal(d_state, _fp16(RunDir(out).load_checkpoint()["D"]))

    state, meta = read_export(slim)
    save_safetensors(out / "other.safetensors", {k: v + 1 for k, v in state.items()}, meta)
    with pytest.raises(ValueError, match="its generator differs"):
        _ship(out, wdir, export=out / "other.safetensors", force=True)


def test_a_domain_style_ships_its_painting_d_and_reverse_generator(data, wdir, tmp_path) -> None:
    """``--d-part painting`` of a slimmed domain pair: the state holds the painting-side D and the
    painting -> photo generator (EMA) the slim weights lack; ``--init`` loads both, the photo-side
    D starts fresh and warms up."""
    from gantools_stylize.pair import slim_export

    out = tmp_path / "domain"
    cfg = make_config("stylize", out=str(out), steps=1, threads=1, workers=1, batch_size=2, sample_every=100,
                      task_options={**data, **TINY, "mode": "domain", "style_name": NAME})
    run_training(cfg, log=lambda m: None)
    slim = slim_export(str(out / "export.safetensors"), str(out / "slim.safetensors"))
    with pytest.raises(ValueError, match=r"no part 'photos' \(its parts: painting, photo\)"):
        _ship(out, wdir, export=slim, d_parts=["photos"])
    entry = _ship(out, wdir, export=slim, d_parts=["painting"])
    ckpt = RunDir(out).load_checkpoint()
    st = read_state(wdir / entry["state"])
    _assert_equal(st.d, _fp16({k: v for k, v in ckpt["D"].items() if k.startswith("painting.")}))
    _assert_equal(st.g, _fp16({k: v for k, v in ckpt["G_ema"].items() if k.startswith("ba.")}))

    trainer, logs = _trainer(tmp_path, data, mode="domain")
    G, D = trainer.G.state_dict(), trainer.D.state_dict()
    ema = ckpt["G_ema"]
    _assert_equal(G, {k: (_fp16({k: v})[k] if k.startswith("ba.") else v) for k, v in ema.items()})
    _assert_equal({k: v for k, v in D.items() if k.startswith("painting.")}, st.d)
    assert not any(torch.equal(D[k], ckpt["D"][k]) for k in D if k.startswith("photo.") and D[k].numel() > 1)
    assert trainer.config.d_warmup == AUTO_D_WARMUP
    assert any("part(s) photo: not shipped, they start fresh" in line for line in logs), logs


def test_a_narrower_facegan_export_widens_with_the_same_images(tmp_path) -> None:
    """``--init`` of a run with wider --channel-base/--channel-max: the narrower generator is grown
    (new channels zero into the old ones), its images unchanged, and the new channels get
    gradients; another mapping (w_dim) is still a one-line error."""
    from gantools.nn.facegan import FaceGenerator
    from gantools.train.export import export_generator
    from gantools.train.shipped import _load_generator

    narrow_cfg = {"resolution": 32, "channel_base": 256, "channel_max": 32, "w_dim": 64, "z_dim": 32,
                  "mapping_layers": 2, "embed_dim": 16}
    torch.manual_seed(0)
    narrow = FaceGenerator(**narrow_cfg).eval()
    with torch.no_grad():  # biases and noise strengths start at 0: make them count
        for name, p in narrow.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.normal_(0, 0.3)
    path = export_generator(tmp_path / "narrow.safetensors", narrow, "facegan", narrow_cfg, {"task": "faces"})
    wide = FaceGenerator(**{**narrow_cfg, "channel_base": 512, "channel_max": 48})
    lines: list[str] = []
    assert _load_generator(wide, path, lines.append) == ""
    assert len(lines) == 1 and "widened" in lines[0]
    z, age, gender = torch.randn(3, 32), torch.tensor([0, 4, 8]), torch.tensor([1, 0, 1])
    with torch.no_grad():
        want = narrow(z, age, gender)
        got = wide.eval()(z, age, gender)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert wide.synthesis.convs[-1].weight.shape[0] == 16 and narrow.synthesis.convs[-1].weight.shape[0] == 8
    wide.train()(z, age, gender).square().mean().backward()
    # the zero weights (old outputs from new inputs, toRGB's new columns) learn from the first step
    assert wide.synthesis.convs[-1].weight.grad[:8, 8:].abs().sum() > 0
    assert wide.synthesis.torgbs[-1].weight.grad[:, 8:].abs().sum() > 0
    for other in ({"w_dim": 96}, {"resolution": 64}):  # another mapping; more layers than the file
        with pytest.raises(ValueError, match="do not fit"):
            _load_generator(FaceGenerator(**{**narrow_cfg, **other}), path, lines.append)
    with pytest.raises(ValueError, match=r"has synthesis\.convs\.7\..*, this one does not"):  # a 64 px file
        FaceGenerator(**narrow_cfg).widened_state(FaceGenerator(**{**narrow_cfg, "resolution": 64}).state_dict())
