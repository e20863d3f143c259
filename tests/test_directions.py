"""Latent directions (:mod:`gantools.latent`) on tiny random generators: ``faces`` and ``stylegan``.

PCA directions are checked against numpy's SVD of the same samples, SeFa directions against the
eigenvectors of ``A^T A`` built here from the weight files' own keys; the command line's
``--directions`` sheet, ``--direction/--amount`` edits and one-line errors.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from test_stylegan import STYLE, rosinality

import gantools
from gantools.cli import main
from gantools.latent import AMOUNTS, SAMPLE_SEED, SAMPLES, find_directions
from gantools.nn.facegan import FaceGenerator
from gantools.plugin import Descriptor, Plugin

TINY = dict(resolution=32, z_dim=16, w_dim=24, channel_base=128, channel_max=16, embed_dim=8, mapping_layers=2)
K = 4


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, tuple[str, dict[str, torch.Tensor]]]:
    """``{"faces": (export path, state dict), "stylegan": (.pt path, rosinality g_ema)}``."""
    from gantools.train.export import export_generator

    tmp = tmp_path_factory.mktemp("directions")
    torch.manual_seed(0)
    face = FaceGenerator(**TINY).eval()
    export_generator(tmp / "faces.safetensors", face, "facegan", TINY, {"task": "faces", "resolution": "32"})
    ros = rosinality()
    torch.save({"g_ema": ros, "latent_avg": torch.randn(STYLE, generator=torch.Generator().manual_seed(5))},
               tmp / "g.pt")
    return {"faces": (str(tmp / "faces.safetensors"), face.state_dict()), "stylegan": (str(tmp / "g.pt"), ros)}


def style_weights(name: str, state: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The modulated 3x3 convs' affine weights, read from the file's own key layout."""
    if name == "faces":
        keys = sorted((k for k in state if k.startswith("synthesis.convs.") and k.endswith(".affine.weight")),
                      key=lambda k: int(k.split(".")[2]))
    else:
        keys = ["conv1.conv.modulation.weight"] + [f"convs.{i}.conv.modulation.weight" for i in range(4)]
    return [state[k].double().numpy() for k in keys]


@pytest.fixture(params=["faces", "stylegan"])
def model(request, weights):
    name = request.param
    path, state = weights[name]
    return name, path, state, gantools.load(name, weights=path, precision="fp32", threads=1)


def same_up_to_sign(a: np.ndarray, b: np.ndarray) -> None:
    signs = np.sign(np.sum(a * b, axis=1, keepdims=True))
    np.testing.assert_allclose(a, b * signs, atol=1e-6)


def test_pca_directions_are_the_principal_components(model) -> None:
    _, _, _, gen = model
    d = find_directions(gen, K, "pca")
    w = gen.sample_w(SAMPLES, SAMPLE_SEED).astype(np.float64)
    assert w.shape == (SAMPLES, d.vectors.shape[1])
    np.testing.assert_allclose(d.vectors @ d.vectors.T, np.eye(K), atol=1e-10)
    assert np.all(np.diff(d.scales) <= 0)
    _, s, vt = np.linalg.svd(w - w.mean(0), full_matrices=False)
    same_up_to_sign(d.vectors, vt[:K])
    np.testing.assert_allclose(d.scales, s[:K] / np.sqrt(SAMPLES - 1), rtol=1e-6)
    np.testing.assert_allclose((w @ d.vectors.T).std(0, ddof=1), d.scales, rtol=1e-6)


def test_sefa_directions_are_eigenvectors_of_the_style_weights(model) -> None:
    name, _, state, gen = model
    a = np.concatenate(style_weights(name, state))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1][:K]
    d = find_directions(gen, K, "sefa")
    same_up_to_sign(d.vectors, vectors[:, order].T)
    w = gen.sample_w(SAMPLES, SAMPLE_SEED).astype(np.float64)
    np.testing.assert_allclose(d.scales, (w @ d.vectors.T).std(0, ddof=1), rtol=1e-6)
    assert find_directions(gen, 1, "sefa").vectors.shape == (1, w.shape[1])


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args, "--threads", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def test_amount_zero_is_the_plain_image_and_others_move_it(model, tmp_path, capsys) -> None:
    name, path, _, _ = model
    runs = {"plain": [], "zero": ["--direction", "1", "--amount", "0"], "two": ["--direction", "1", "--amount", "2"],
            "sefa": ["--direction", "1", "--amount", "-2", "--method", "sefa"]}
    for key, extra in runs.items():
        code, _, err = cli(capsys, name, "--weights", path, "--seeds", "3-5,9", "-o", str(tmp_path / key), *extra)
        assert code == 0, err
    for seed in ("seed0003.png", "seed0005.png", "seed0009.png"):
        plain = (tmp_path / "plain" / seed).read_bytes()
        assert (tmp_path / "zero" / seed).read_bytes() == plain
        assert (tmp_path / "two" / seed).read_bytes() != plain
        assert (tmp_path / "sefa" / seed).read_bytes() != plain


@pytest.mark.parametrize("method", ["pca", "sefa"])
def test_sheet_has_a_row_per_direction_and_seven_columns(model, method, tmp_path, capsys) -> None:
    name, path, _, gen = model
    sheet = tmp_path / "sheet.png"
    code, out, err = cli(capsys, name, "--weights", path, "--directions", "3", "--seed", "4", "--grid", str(sheet),
                         "--method", method)
    assert code == 0, err
    assert f"3 {method} directions" in out
    img = cv2.imread(str(sheet))
    r, pad, cols = gen.resolution, 2, len(AMOUNTS)
    assert cols == 7 and img.shape == (3 * (r + pad) + pad, cols * (r + pad) + pad, 3)
    cells = [[img[pad + i * (r + pad):pad + i * (r + pad) + r, pad + j * (r + pad):pad + j * (r + pad) + r]
              for j in range(cols)] for i in range(3)]
    plain = gen.generate(1, 4)[0].astype(int)
    for row in cells:  # the middle column is the seed's own image (faces: batched, so within a rounding step)
        assert np.abs(row[3].astype(int) - plain).max() <= (0 if name == "stylegan" else 2)
        assert not np.array_equal(row[0], row[6])


@pytest.mark.parametrize("args, needle", [
    (["--directions", "0", "--grid", "s.png"], "option --directions: 0: give at least 1"),
    (["--directions", "99", "--grid", "s.png"], "option --directions: 99: this model has"),
    (["--direction", "99", "--amount", "1", "-o", "o"], "option --direction: 99: this model's directions are 0.."),
    (["--direction", "-1", "--amount", "1", "-o", "o"], "option --direction: -1: directions are numbered from 0"),
    (["--direction", "0", "-o", "o"], "--direction I needs --amount A"),
    (["--amount", "1", "-o", "o"], "--amount and --method go with --direction I"),
    (["--directions", "2", "-o", "o"], "--directions K writes one sheet"),
    (["--directions", "2", "--direction", "1", "--grid", "s.png"], "give one of them"),
    (["--direction", "0", "--amount", "1", "--interpolate", "1", "2", "-o", "w.gif"], "do not apply to --interpolate"),
    (["--directions", "2", "--grid", "s.png", "--method", "ica"], "--method"),
])
def test_bad_input_is_one_line(weights, tmp_path, capsys, monkeypatch, args, needle) -> None:
    monkeypatch.chdir(tmp_path)
    for name, (path, _) in weights.items():
        code, _, err = cli(capsys, name, "--weights", path, *args)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not any(tmp_path.iterdir())


class FlatGenerator(Plugin):
    """A generator with no latent space."""

    descriptor = Descriptor("flatgen", "generation", "test generator", kind="generator")

    def process(self, image):
        return image

    def generate(self, n, seed):
        return [np.full((4, 6, 3), seed + i, np.uint8) for i in range(n)]

    def interpolate(self, seed_a, seed_b, frames):
        return self.generate(frames, seed_a)


def test_generator_without_latent_space_refuses_in_one_line(tmp_path, capsys) -> None:
    from gantools import registry

    registry.discover()
    with registry.PLUGINS.scoped():
        registry.register_plugin(FlatGenerator)
        code, _, err = cli(capsys, "flatgen", "--directions", "2", "--grid", str(tmp_path / "s.png"))
    assert code == 2 and err.count("\n") == 1 and "no latent space" in err
    assert not (tmp_path / "s.png").exists()


def test_export_metadata_round_trip(weights) -> None:
    """The tiny faces export is what the plugin reads (guards the fixture itself)."""
    from gantools.checkpoint import read_state_dict

    _, meta = read_state_dict(weights["faces"][0])
    assert json.loads(meta["arch_config"]) == TINY and meta["task"] == "faces"
