"""Hardening: unusable weights files, broken third-party plugins, hostile training data.

Every fixture is made here: tiny networks, damaged and hostile weights files, a PNG
decompression bomb. What is promised:

* every unusable ``--weights`` file is one ``OptionError`` ``"<file>: <problem>"`` - on the CLI one
  ``error:`` line and exit code 2 - for every network plugin (one helper,
  :mod:`gantools.checkpoint`); a pickle holding code is refused, never run, with the
  conversion one-liner; NaN/inf weights are refused; a model of another task is refused;
* a non-finite network output fails that file, never writes a black image;
* a third-party plugin calling ``sys.exit`` at import is listed as broken, at ``process()`` time
  fails its file only;
* training data: an empty file and a file above the pixel limit are skipped and counted, the
  bomb is never decoded.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from clitools import cli, write
from imagegen import gradient
from gantools.checkpoint import read_state_dict
from gantools.cli import main
from gantools.nn import create_arch
from gantools.plugin import OptionError
from gantools.registry import load
from gantools.train.export import export_generator, save_safetensors

STYLE_CFG = {"base_channels": 4, "n_res": 1, "norm": "instance", "in_channels": 3, "out_channels": 3}


# -- fixtures: weights files of every kind ------------------------------------------------------
def _sr_net(scale: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_arch("srvgg", num_feat=4, num_conv=1, upscale=scale)


def sr_export(path: Path, scale: int = 2) -> Path:
    cfg = {"num_feat": 4, "num_conv": 1, "upscale": scale}
    return export_generator(path, _sr_net(scale), "srvgg", cfg, {"task": "upscale", "scale": str(scale)})


def style_export(path: Path) -> Path:
    torch.manual_seed(0)
    model = create_arch("stylenet", **STYLE_CFG)
    return export_generator(path, model, "stylenet", STYLE_CFG, {"task": "stylize", "style": "tiny", "mode": "painting"})


class Payload:
    """A pickle that runs code when unpickled: it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class Harmless:
    """A plain custom object in a checkpoint (the weights_only unpickler refuses it too)."""


def bad_weights(root: Path) -> dict[str, Path]:
    """Unusable upscale weights, by kind."""
    root.mkdir(parents=True, exist_ok=True)
    good = sr_export(root / "good.safetensors")
    data = good.read_bytes()
    made = {
        "pickle_code": root / "evil.pth", "empty": root / "empty.pth", "truncated": root / "cut.safetensors",
        "folder": root / "folder.pth", "huge_header": root / "huge.safetensors", "missing": root / "missing.pth",
        "stylize_export": root / "style.safetensors", "nan": root / "nan.safetensors", "inf": root / "inf.pth",
        "third_party_x1": root / "stylenet.pth", "garbage": root / "garbage.bin",
    }
    torch.save({"params": _sr_net().state_dict(), "x": Payload(root / "PWNED")}, made["pickle_code"])
    made["empty"].write_bytes(b"")
    made["truncated"].write_bytes(data[: len(data) * 2 // 3])
    made["folder"].mkdir()
    made["huge_header"].write_bytes(struct.pack("<Q", 1 << 62) + b'{"__metadata__": {}}')
    style_export(made["stylize_export"])
    state = _sr_net().state_dict()
    nan = {k: v.clone() for k, v in state.items()}
    nan["body.0.weight"][0, 0, 0, 0] = float("nan")
    save_safetensors(made["nan"], nan, {})
    inf = {k: v.clone() for k, v in state.items()}
    inf["body.0.bias"][0] = float("inf")
    torch.save(inf, made["inf"])
    torch.manual_seed(0)
    torch.save(create_arch("stylenet", **STYLE_CFG).state_dict(), made["third_party_x1"])
    made["garbage"].write_bytes(os.urandom(64) + b"{")
    return made


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    return bad_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def image(tmp_path) -> Path:
    return write(tmp_path / "in.png", gradient(8, 10))


def run_cli(capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err.splitlines()


# -- item 8: a pickle that holds code ------------------------------------------------------------
def test_pickle_with_code_is_refused_in_one_line_and_never_run(weights) -> None:
    path = weights["pickle_code"]
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: contains pickled code")
    assert "will not be loaded" in msg and "convert_trusted(" in msg and "weights_only" not in msg
    assert not (path.parent / "PWNED").exists()


def test_trusted_pickle_converts_with_the_one_liner(tmp_path) -> None:
    src = tmp_path / "trusted.pth"
    torch.save({"params_ema": _sr_net().state_dict(), "epoch": 3, "extra": Harmless()}, src)
    with pytest.raises(ValueError, match="contains pickled code") as info:
        read_state_dict(src)
    assert "convert_trusted('" in str(info.value)
    from gantools.checkpoint import convert_trusted

    dest = convert_trusted(src, tmp_path / "trusted.safetensors")
    state, meta = read_state_dict(dest)
    assert set(state) == set(_sr_net().state_dict()) and meta == {"epoch": "3"}


# -- items 9, 15, 16: every unusable --weights is one usage error naming the file -----------------
CLI_KINDS = ["pickle_code", "empty", "truncated", "folder", "huge_header", "missing", "stylize_export",
             "nan", "inf", "third_party_x1", "garbage"]


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_upscale_bad_weights_cli_is_one_line_exit_2(kind, weights, image, tmp_path, capsys) -> None:
    path = weights[kind]
    code, err = run_cli(capsys, "run", "upscale", str(image), "-o", str(tmp_path / "out.png"), "--weights", str(path))
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(f"error: {path}: "), err
    assert not (tmp_path / "out.png").exists()


def test_upscale_messages_say_what_is_wrong(weights) -> None:
    expect = {
        "pickle_code": "contains pickled code", "empty": "not a readable checkpoint (empty file)", "folder": "is a directory",
        "missing": "no such file", "huge_header": "header too large", "stylize_export": "a 'stylize' model",
        "nan": "NaN or infinite", "inf": "NaN or infinite", "third_party_x1": "not a super-resolution network",
        "truncated": "not a readable checkpoint",
    }
    for kind, text in expect.items():
        with pytest.raises(OptionError) as info:
            load("upscale", weights=str(weights[kind])).process(gradient(8, 10))
        msg = str(info.value)
        assert msg.startswith(f"{weights[kind]}: ") and text in msg and "\n" not in msg, (kind, msg)


def test_stylize_export_refused_at_construction_by_upscale(weights) -> None:
    with pytest.raises(OptionError, match=r"a 'stylize' model .*not an upscale"):
        load("upscale", weights=str(weights["stylize_export"]))


def test_python_api_run_raises_option_error(weights, image, tmp_path) -> None:
    from gantools import api

    plugin = api.load("upscale", weights=str(weights["truncated"]))
    with pytest.raises(OptionError, match=f"^{weights['truncated']}: "):
        api.run(plugin, [image], tmp_path / "out", progress="off")


@pytest.mark.parametrize("plugin,kind", [("stylize", "truncated"), ("stylize", "pickle_code"), ("stylize", "nan"),
                                         ("faces", "empty"), ("faces", "garbage"), ("faces", "stylize_export")])
def test_stylize_and_faces_bad_weights_exit_2(plugin, kind, weights, image, tmp_path, capsys) -> None:
    path = weights[kind]
    code, err = run_cli(capsys, "run", plugin, str(image), "-o", str(tmp_path / "out.png"), "--weights", str(path), "-q")
    assert code == 2 and err == [err[-1]] and err[-1].startswith(f"error: {path}: "), err


def test_faces_refuses_an_upscale_export(tmp_path) -> None:
    path = sr_export(tmp_path / "sr.safetensors")
    with pytest.raises(OptionError, match=f"^{path}: a 'upscale' model"):
        load("faces", weights=str(path))


def test_good_weights_still_work(tmp_path, image, capsys) -> None:
    path = sr_export(tmp_path / "good.safetensors")
    code, err = run_cli(capsys, "run", "upscale", str(image), "-o", str(tmp_path / "o.png"), "--weights", str(path), "-q")
    assert code == 0 and err == [] and (tmp_path / "o.png").exists()


def test_non_finite_output_fails_the_file(tmp_path, capsys) -> None:
    """Finite but huge weights overflow to inf: the file fails, no black image is written."""
    state = {k: v * 1e30 if k.endswith("weight") else v for k, v in _sr_net().state_dict().items()}
    path = save_safetensors(tmp_path / "overflow.safetensors", state, {})
    with pytest.raises(ValueError, match="NaN or infinite"):
        load("upscale", weights=str(path), precision="fp32").process(gradient(8, 10))
    assert torch.is_grad_enabled()  # the failed run left no no_grad() state behind
    src = write(tmp_path / "in" / "a.png", gradient(8, 10))
    code, err = run_cli(capsys, "run", "upscale", str(src), "-o", f"{tmp_path / 'out'}/", "--weights", str(path), "-q")
    assert code == 1 and err == [f"error: {src}: the network's output holds NaN or infinite values (damaged "
                                 "weights or a diverged model); no image was written"]
    assert not (tmp_path / "out" / "a.png").exists()


# -- item 10: sys.exit() in a third-party plugin -------------------------------------------------
def test_sys_exit_at_import_lists_the_plugin_as_broken(tmp_path) -> None:
    from test_registry import fake_distribution

    fake_distribution(tmp_path, "gantools-quitter", "quitter = gt_quitter\n", {"gt_quitter": "import sys\nsys.exit(3)\n"})
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = cli("list", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("\t")[0]: line for line in proc.stdout.decode().splitlines()}  # not a TTY: tab-separated
    assert "SystemExit: 3" in rows["quitter"] and "ok" in rows["resize"]


def test_sys_exit_in_process_fails_that_file_and_the_batch_goes_on(tmp_path) -> None:
    from gantools.batch import BatchOptions, run_batch
    from gantools.plugin import Descriptor, Plugin

    class Quitter(Plugin):
        descriptor = Descriptor("quitter", "test", "exits on wide images")

        def process(self, image):
            if image.shape[1] > 10:
                sys.exit(4)
            return image

    write(tmp_path / "in" / "a.png", gradient(6, 8))
    write(tmp_path / "in" / "b.png", gradient(6, 12))
    write(tmp_path / "in" / "c.png", gradient(6, 9))
    summary = run_batch(Quitter(), [tmp_path / "in"], tmp_path / "out", options=BatchOptions(progress="off"))
    assert (summary.done, summary.failed) == (2, 1)
    assert summary.errors == [(str(tmp_path / "in" / "b.png"), f"{tmp_path / 'in' / 'b.png'}: the plugin raised SystemExit(4)")]


# -- items 6 and 11: training data -----------------------------------------------------------------
def png_bomb(side: int) -> bytes:
    """A valid gray PNG of ``side`` x ``side`` zeros: a few hundred KB that decode to ``side**2`` bytes."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    comp = zlib.compressobj(9)
    rows = b"\0" * ((side + 1) * 100)
    idat = b"".join(comp.compress(rows) for _ in range(side // 100)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def decoded(monkeypatch) -> list[int]:
    """Sizes of the data handed to the decoder (anything over 50 KB is refused, not decoded)."""
    from gantools.train import data

    seen: list[int] = []
    real = data.decode_rgb

    def spy(raw: bytes):
        seen.append(len(raw))
        return None if len(raw) > 50_000 else real(raw)

    monkeypatch.setattr(data, "decode_rgb", spy)
    return seen


def test_training_data_bomb_is_skipped_before_decoding(tmp_path, decoded) -> None:
    from gantools.train.data import ImageSet

    bomb = png_bomb(10_000)  # 100 M pixels > the default limit of 89.5 M
    assert len(bomb) < 200_000
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bomb.png").write_bytes(bomb)
    write(tmp_path / "data" / "ok.png", gradient(20, 24))
    logs: list[str] = []
    images = ImageSet([tmp_path / "data"], log=logs.append)
    assert len(images) == 1 and images.bad == 1 and images.too_large == 1
    assert len(bomb) not in decoded
    assert "1 unreadable images skipped, 1 of them above 89478485 pixels" in logs[0]


def test_training_data_max_pixels(tmp_path) -> None:
    from gantools.train.data import ImageSet

    write(tmp_path / "big.png", gradient(30, 40))
    write(tmp_path / "small.png", gradient(20, 24))
    images = ImageSet([tmp_path], max_pixels=1000)
    assert len(images) == 1 and images.bad == 1 and images.names == ["small.png"]
    assert len(ImageSet([tmp_path], max_pixels=None)) == 2


def test_training_data_empty_and_unknown_files_are_skipped(tmp_path) -> None:
    from gantools.train.data import ImageSet

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_bytes(b"hello, not a picture")
    write(tmp_path / "ok.png", gradient(20, 24))
    logs: list[str] = []
    images = ImageSet([tmp_path], log=logs.append)
    assert len(images) == 1 and images.bad == 2
    assert "2 unreadable images skipped" in logs[0]
