"""The metric functions of ``bench/faces.py`` on tiny synthetic arrays (no face data, no network).

The Haar and dlib tests run only where what they need is already at hand (``bench/.cache/`` after one
benchmark run, or an OpenCV 4 with its data); nothing is downloaded. The Frechet-distance tests need no dlib.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench" / "faces.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_faces", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


bf = _load_bench()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def smooth_faces(n: int, seed: int) -> np.ndarray:
    """Blurry random colour fields, (n, 64, 64, 3) uint8: one distribution."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(s, (64, 64), interpolation=cv2.INTER_CUBIC) for s in small])


def drawn_face(shade: int = 200) -> np.ndarray:
    """A cartoon face (oval, eyes, brows, nose, mouth) that the frontal-face cascade finds, RGB uint8."""
    img = np.full((64, 64, 3), 90, np.uint8)
    cv2.ellipse(img, (32, 34), (20, 26), 0, 0, 360, (shade,) * 3, -1)
    for x in (24, 40):
        cv2.ellipse(img, (x, 21), (7, 2), 0, 0, 360, (70,) * 3, -1)
        cv2.ellipse(img, (x, 26), (7, 4), 0, 0, 360, (40,) * 3, -1)
    cv2.line(img, (32, 28), (32, 38), (shade - 40,) * 3, 2)
    cv2.ellipse(img, (32, 44), (8, 3), 0, 0, 360, (80,) * 3, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


# -- SWD ------------------------------------------------------------------------------------
def test_swd_of_a_set_with_itself_is_near_zero_and_far_from_another_set() -> None:
    a = smooth_faces(8, seed=0)
    same = bf.swd(a, a)
    other = bf.swd(a, np.random.default_rng(1).integers(0, 256, a.shape, dtype=np.uint8))
    assert len(same) == len(other) == bf.SWD_LEVELS
    # the patches of the two sides are drawn with different seeds, so the self-distance is the
    # sampling noise of 8 x 128 patches (about 50 here), not exactly 0; noise is far (100-175)
    assert all(s < o for s, o in zip(same, other))
    assert np.mean(other) > 2 * np.mean(same)


def test_swd_is_reproducible_and_checks_shapes() -> None:
    a, b = smooth_faces(3, seed=2), smooth_faces(3, seed=3)
    assert bf.swd(a, b) == bf.swd(a, b)
    with pytest.raises(ValueError, match="one shape"):
        bf.swd(a, b[:2])


def test_patch_descriptors_are_normalised_per_channel() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=gen) * torch.tensor([1.0, 5.0, 0.1])[:, None, None] + 3.0
    d = bf.patch_descriptors(x, per_image=50, size=7, gen=gen)
    assert d.shape == (100, 3 * 49)
    per_channel = d.reshape(100, 3, 49).permute(1, 0, 2).reshape(3, -1)
    # float32: the mean of 4900 values up to 8 carries a rounding error of a few eps * 8, and the
    # division by the narrowest channel's std (0.1 / sqrt(12) ~ 0.03) magnifies it ~35x: ~3e-5 per
    # eps-sized error. 32 such errors is still far below what a missing step gives (mean ~3, std 0.03..1.4).
    eps = torch.finfo(torch.float32).eps
    tol = 32 * eps * float(x.abs().max()) / float(x.std(dim=(0, 2, 3)).min())
    assert 1e-4 < tol < 2e-3
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=tol)
    assert torch.allclose(per_channel.std(1, correction=0), torch.ones(3), atol=tol)


# -- Haar ------------------------------------------------------------------------------------
def _haar_or_skip() -> tuple[Path, Path | None]:
    try:
        runtime = bf.haar_runtime()
    except FileNotFoundError:
        pytest.skip("no OpenCV with CascadeClassifier here and none unpacked in bench/.cache (run bench/faces.py once)")
    cascade = bf.default_cascade(runtime)
    if not cascade.is_file():
        pytest.skip(f"{bf.CASCADE_NAME} not in bench/.cache (run bench/faces.py once)")
    return cascade, runtime


def test_haar_finds_no_face_in_noise_but_finds_a_drawn_face() -> None:
    cascade, runtime = _haar_or_skip()
    noise = bf.noise_images(12)
    faces = np.stack([drawn_face(s) for s in (170, 200, 230)])
    boxes = bf.detect_faces(bf.haar_inputs(np.concatenate([noise, faces])), cascade, runtime)
    assert boxes.shape == (15,)
    assert (boxes[:12] == 0).all()  # noise: rate 0
    assert (boxes[12:] > 0).all()  # the positive control: the detector does run


def test_haar_inputs_follow_the_protocol() -> None:
    g = bf.haar_inputs(np.stack([drawn_face(), drawn_face()]))
    assert g.shape == (2, 192, 192) and g.dtype == np.uint8
    assert (g[0, :32, 32:160] == g[0, 32:33, 32:160]).all()  # replicated border above the 128 px face


def _blocks(img: np.ndarray, block: int = 16) -> list[bytes]:
    """The ``block`` px squares of a 64 px image, as sorted byte strings."""
    tiles = img.reshape(64 // block, block, 64 // block, block, 3).transpose(0, 2, 1, 3, 4).reshape(-1, block, block, 3)
    return sorted(t.tobytes() for t in tiles)


def test_shuffle_blocks_permutes_whole_blocks() -> None:
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    s = bf.shuffle_blocks(x, 16, seed=0)
    assert s.shape == x.shape
    assert _blocks(s[0]) == _blocks(x[0]) and _blocks(s[1]) == _blocks(x[1])
    assert (s != x).any()


# -- nearest neighbours ------------------------------------------------------------------------
def test_nearest_returns_the_exact_nearest_for_a_hand_built_case() -> None:
    refs = np.array([[0, 0], [10, 0], [0, 10], [3, 4], [3, 5]], np.uint8)
    queries = np.array([[3, 4], [9, 1], [1, 9], [3, 6], [0, 1]], np.uint8)
    idx, dist = bf.nearest(queries, refs, chunk=2, candidates=1)  # chunks of 2: merging across chunks
    assert idx.tolist() == [3, 1, 2, 4, 0]
    assert np.allclose(dist, [0.0, np.sqrt(2), np.sqrt(2), 1.0, 1.0])


def test_nearest_matches_brute_force_on_images() -> None:
    rng = np.random.default_rng(4)
    refs = rng.integers(0, 256, (37, 8, 8, 3), dtype=np.uint8)
    queries = rng.integers(0, 256, (9, 8, 8, 3), dtype=np.uint8)
    queries[2] = refs[30]
    idx, dist = bf.nearest(queries, refs, chunk=10)
    brute = np.sqrt(((queries.reshape(9, 1, -1).astype(float) - refs.reshape(1, 37, -1)) ** 2).sum(-1))
    assert idx.tolist() == brute.argmin(1).tolist()
    assert np.allclose(dist, brute.min(1)) and dist[2] == 0.0 and idx[2] == 30


def test_nearest_mirrored_finds_a_flipped_copy() -> None:
    rng = np.random.default_rng(5)
    refs = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    queries = np.stack([refs[4][:, ::-1], refs[1]])
    idx, dist, flipped = bf.nearest_mirrored(queries, refs)
    assert idx.tolist() == [4, 1] and dist.tolist() == [0.0, 0.0] and flipped.tolist() == [True, False]


def test_memorisation_threshold_ignores_identical_copies() -> None:
    real = np.array([0.0, 0.0] + [5.0 + k for k in range(98)])
    gen = np.array([1.0, 4.0, 6.0, 30.0])
    m = bf.memorisation(gen, real)
    assert m["p1"] == 0.0 and m["closer"] == 0
    assert m["p1_unique"] == pytest.approx(np.percentile(real[2:], 1))
    assert m["closer_unique"] == 2 and m["real_copies"] == 2 and m["gen_copies"] == 0


# -- embedding Frechet distance (no dlib needed) ---------------------------------------------------
def _with_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """``n`` rows whose sample mean is exactly ``mean`` and unbiased sample covariance exactly ``cov``."""
    x = np.random.default_rng(seed).standard_normal((n, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # whitened: sample cov = I
    return x @ np.linalg.cholesky(cov).T + mean


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(w)) @ v.T


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    a = np.random.default_rng(0).standard_normal((50, 8)) * 3.0 + 1.0
    assert bf.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert bf.frechet_distance(a, a[::-1].copy()) == pytest.approx(0.0, abs=1e-9)  # order-free


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 2.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    a = _with_moments(40, mu_a, np.diag(var_a), seed=1)
    b = _with_moments(60, mu_b, np.diag(var_b), seed=2)
    # |mu_a - mu_b|^2 + sum (sqrt(var_a) - sqrt(var_b))^2 = 25 + (1 + 1 + 0)
    assert bf.frechet_distance(a, b) == pytest.approx(27.0, rel=1e-9)


def test_frechet_distance_of_correlated_gaussians_is_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    d = 6
    la, lb = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    cov_a, cov_b = la @ la.T + 0.1 * np.eye(d), lb @ lb.T + 0.1 * np.eye(d)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    a, b = _with_moments(30, mu_a, cov_a, seed=4), _with_moments(45, mu_b, cov_b, seed=5)
    ra = _psd_sqrt(cov_a)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * _psd_sqrt(ra @ cov_b @ ra))
    assert bf.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert bf.frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)  # symmetric


def test_frechet_distance_handles_a_rank_deficient_covariance_and_checks_shapes() -> None:
    a = np.random.default_rng(6).standard_normal((5, 16))  # 5 rows in 16-D: rank-4 covariance
    assert bf.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # the 12 zero eigenvalues come out of eigh as +-1e-16-ish; their square roots (~1e-8 each) are
    # the method's floor on singular covariances: tolerance 1e-5 (full-rank 128-D sets are exact)
    assert bf.frechet_distance(a, a + 2.0) == pytest.approx(4.0 * 16, abs=1e-5)  # pure mean shift
    with pytest.raises(ValueError, match="one D"):
        bf.frechet_distance(a, a[:, :8])
    with pytest.raises(ValueError):
        bf.frechet_distance(a[:1], a)


def test_fd_inputs_follow_the_protocol() -> None:
    faces = np.stack([drawn_face(), drawn_face(150)])
    x, blurred = bf.fd_inputs(faces), bf.fd_inputs(faces, blur=1.0)
    assert x.shape == blurred.shape == (2, 128, 128, 3) and x.dtype == np.uint8
    assert np.abs(np.diff(blurred.astype(float), axis=2)).mean() < np.abs(np.diff(x.astype(float), axis=2)).mean()


def test_embed_faces_runs_dlib_where_it_is_already_unpacked() -> None:
    if not (bf.DLIB_DIR / "dlib" / "__init__.py").is_file() or not all((bf.DLIB_DIR / "models" / m).is_file()
                                                                        for m in bf.DLIB_MODELS):
        pytest.skip("dlib and its models not unpacked in bench/.cache (run bench/faces.py once)")
    faces = np.stack([drawn_face(170), drawn_face(230), drawn_face(170)])
    emb = bf.embed_faces(bf.fd_inputs(faces), bf.DLIB_DIR)
    assert emb.shape == (3, 128) and emb.dtype == np.float64
    assert np.array_equal(emb[0], emb[2]) and not np.array_equal(emb[0], emb[1])  # deterministic, input-dependent
    with pytest.raises(ValueError, match="uint8"):
        bf.embed_faces(faces.astype(np.float32), bf.DLIB_DIR)
