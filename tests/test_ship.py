"""Shipping an export into a weights folder and its manifest."""

from __future__ import annotations

import pytest
import torch

from gantools.train.export import export_generator
from gantools.train.ship import AlreadyShipped, main, ship
from gantools.weights import sha256_file, tomllib


def test_ship_writes_and_replaces_manifest_entry(tmp_path) -> None:
    export = tmp_path / "export.safetensors"
    export_generator(export, torch.nn.Linear(2, 2), "toy", {"w": 2},
                     {"task": "upscale", "scale": "4", "command": "gantools train upscale", "steps": "7", "dataset": "d"})
    wdir = tmp_path / "weights"
    wdir.mkdir()
    ship(export, name="fidelity", file="a.safetensors", terms="research", weights_dir=wdir)
    entry = ship(export, name="fidelity", file="a.safetensors", terms="research", dataset="T91", weights_dir=wdir,
                 force=True)
    models = tomllib.loads((wdir / "manifest.toml").read_text())["model"]
    assert len(models) == 1  # the forced second ship replaced the first entry
    m = models[0]
    assert m["sha256"] == sha256_file(wdir / "a.safetensors") == entry["sha256"]
    assert (m["task"], m["name"], m["arch"], m["scale"], m["steps"], m["dataset"]) == ("upscale", "fidelity", "toy", 4, 7, "T91")
    assert m["command"] == "gantools train upscale"


def _export(tmp_path, task: str = "upscale", width: int = 2, scale: int = 4):
    export = tmp_path / f"export-{width}-x{scale}.safetensors"
    export_generator(export, torch.nn.Linear(width, width), "toy", {"w": width}, {"task": task, "scale": str(scale)})
    wdir = tmp_path / "weights"
    wdir.mkdir(exist_ok=True)
    return export, wdir


@pytest.mark.parametrize("name, file, what", [
    ("fidelity", "b.safetensors", "model 'fidelity' x4 is already shipped"),  # same task + name + scale, other file
    ("photo", "a.safetensors", "a.safetensors is already shipped"),  # same file, other name
])
def test_ship_refuses_a_shipped_name_or_file(tmp_path, capsys, name: str, file: str, what: str) -> None:
    export, wdir = _export(tmp_path)
    ship(export, name="fidelity", file="a.safetensors", terms="research", weights_dir=wdir)
    before = {p.name: p.read_bytes() for p in wdir.iterdir()}
    other, _ = _export(tmp_path, width=3)
    with pytest.raises(AlreadyShipped, match=what):
        ship(other, name=name, file=file, terms="research", weights_dir=wdir)
    code = main([str(other), "--name", name, "--file", file, "--terms", "research", "--weights-dir", str(wdir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--force" in err
    assert {p.name: p.read_bytes() for p in wdir.iterdir()} == before  # nothing replaced


def test_ship_keeps_one_name_at_two_scales(tmp_path) -> None:
    """photo x4 and photo x2 are two models: shipping the second keeps the first."""
    x4, wdir = _export(tmp_path)
    x2, _ = _export(tmp_path, scale=2)
    ship(x4, name="photo", file="photo-x4.safetensors", terms="research", weights_dir=wdir)
    ship(x2, name="photo", file="photo-x2.safetensors", terms="research", weights_dir=wdir)
    models = tomllib.loads((wdir / "manifest.toml").read_text())["model"]
    assert [(m["name"], m["scale"], m["file"]) for m in models] == [("photo", 4, "photo-x4.safetensors"),
                                                                    ("photo", 2, "photo-x2.safetensors")]
    with pytest.raises(AlreadyShipped, match="model 'photo' x2 is already shipped"):
        ship(x2, name="photo", file="photo-x2b.safetensors", terms="research", weights_dir=wdir)


def test_ship_refuses_a_file_not_in_the_manifest(tmp_path) -> None:
    export, wdir = _export(tmp_path)
    (wdir / "a.safetensors").write_bytes(b"someone else's file")
    with pytest.raises(AlreadyShipped, match="already exists"):
        ship(export, name="fidelity", file="a.safetensors", terms="research", weights_dir=wdir)
    assert (wdir / "a.safetensors").read_bytes() == b"someone else's file"


def test_ship_force_replaces_file_and_entry(tmp_path, capsys) -> None:
    export, wdir = _export(tmp_path)
    ship(export, name="fidelity", file="a.safetensors", terms="research", weights_dir=wdir)
    ship(export, name="photo", file="p.safetensors", terms="research", weights_dir=wdir)
    other, _ = _export(tmp_path, width=3)
    code = main([str(other), "--name", "fidelity", "--file", "b.safetensors", "--terms", "new",
                 "--weights-dir", str(wdir), "--force"])
    assert code == 0, capsys.readouterr().err
    models = tomllib.loads((wdir / "manifest.toml").read_text())["model"]
    assert [(m["name"], m["file"], m["terms"]) for m in models] == [("photo", "p.safetensors", "research"),
                                                                  ("fidelity", "b.safetensors", "new")]
    assert models[1]["sha256"] == sha256_file(wdir / "b.safetensors") == sha256_file(other)
    assert not list(wdir.glob(".*"))  # no temporary files left behind


def test_ship_fp16_halves_floats_and_keeps_metadata(tmp_path) -> None:
    from gantools.train.export import read_export

    export = tmp_path / "export.safetensors"
    model = torch.nn.Linear(64, 64)
    export_generator(export, model, "toy", {"w": 64}, {"task": "stylize", "style": "s", "source": "s.jpg", "mode": "painting"})
    wdir = tmp_path / "weights"
    wdir.mkdir()
    entry = ship(export, name="s", file="s.safetensors", terms="research", weights_dir=wdir, fp16=True)
    state, meta = read_export(wdir / "s.safetensors")
    assert state["weight"].dtype == torch.float16 and meta["storage"] == "fp16" and meta["style"] == "s"
    assert torch.allclose(state["weight"].float(), model.weight, atol=1e-3)
    assert (wdir / "s.safetensors").stat().st_size < export.stat().st_size * 0.6
    assert (entry["source"], entry["mode"]) == ("s.jpg", "painting")


def test_shipped_weights_match_manifest() -> None:
    from gantools.weights import manifest

    for m in manifest():
        assert m.verify().exists()
        assert m.command.startswith("gantools train ") and m.dataset and m.terms
