"""Shipping an export into a weights folder and its manifest."""

from __future__ import annotations

import torch

from gantools.train.export import export_generator
from gantools.train.ship import ship
from gantools.weights import sha256_file, tomllib


def test_ship_writes_and_replaces_manifest_entry(tmp_path) -> None:
    export = tmp_path / "export.safetensors"
    export_generator(export, torch.nn.Linear(2, 2), "toy", {"w": 2},
                     {"task": "upscale", "scale": "4", "command": "gantools train upscale", "steps": "7", "dataset": "d"})
    wdir = tmp_path / "weights"
    wdir.mkdir()
    ship(export, name="fidelity", file="a.safetensors", terms="research", weights_dir=wdir)
    entry = ship(export, name="fidelity", file="a.safetensors", terms="research", dataset="T91", weights_dir=wdir)
    models = tomllib.loads((wdir / "manifest.toml").read_text())["model"]
    assert len(models) == 1  # the second ship replaced the first entry
    m = models[0]
    assert m["sha256"] == sha256_file(wdir / "a.safetensors") == entry["sha256"]
    assert (m["task"], m["name"], m["arch"], m["scale"], m["steps"], m["dataset"]) == ("upscale", "fidelity", "toy", 4, 7, "T91")
    assert m["command"] == "gantools train upscale"


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
