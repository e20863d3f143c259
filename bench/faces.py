"""Face-generation benchmark of the ``faces`` pipeline: detectability, patch statistics, memorisation, speed.

Generated faces: seeds ``0 .. N-1`` of the model (``FaceModel.generate`` through the ``faces``
plugin, fp32, truncation 1.0 by default), labels drawn from the model's label distribution.
Real faces: the faces held back from training (``holdout_names`` of ``plugins/faces/train.py``,
with the rule stored in the export: by default the last 1,000 names of ``utkface-128-03.zip`` in
sorted order). A second generated set ("label-matched") renders the same seeds with the labels
of the held-back faces, because the held-back rule is not label-neutral (names start with the
age, so the last names in sorted order are mostly ages 57-99 and 6-9). Every face is compared at
64 px (real: 128 px -> 64 px, INTER_AREA, like training).

1. Face-detection rate of OpenCV's Haar cascade ``haarcascade_frontalface_default.xml``: each face
   resized to 64 px, then to 128 px (cubic), padded by 25 % per side (BORDER_REPLICATE), gray,
   ``detectMultiScale(scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))``; detected = at least
   one box. Controls: uniform noise (expect 0) and held-back faces cut into shuffled 16 px blocks.
   OpenCV 5 has no CascadeClassifier, so detection runs in a child process with OpenCV 4.10 taken
   from the ``opencv-python-headless==4.10.0.84`` wheel (``pip download``, unpacked once into the
   git-ignored ``bench/.cache/``); the cascade is that wheel's ``cv2/data`` file or ``--cascade``.
2. Sliced Wasserstein distance (Karras et al. 2018, ProGAN): Laplacian pyramid of each 64 px
   image (kornia; levels 64, 32 and the 16 px Gaussian residual), 128 random 7x7x3 patches per
   image and level, each patch set normalised per channel by its own mean/std, 4 repeats of 128
   random unit projections (512 in all), mean |sorted A - sorted B|, x1e3. Rows: generated vs
   real (min(N, 1000) each), generated vs real half B, and the floor real half A vs real half B
   (halves: a fixed random split of the held-back set; h = min(N, 500) faces per side).
3. Memorisation: pixel L2 (64x64x3, values in [0, 1]) from each generated face to its nearest
   training face (every face not held back, all shards; mirrored queries too, as training flips),
   against the same distance for the held-back real faces. Only names and distances are reported.
4. Generation speed, fp32 and bf16, at ``--threads``: ``generate(64, seed)`` (one synthesis pass
   per face, the reproducibility contract) and one batched synthesis pass of 64 ``w``.
5. Frechet distance (x100) in the 128-D embedding space of dlib's face-recognition ResNet: each
   face at 64 px, then 128 px; 5-point landmarks (``shape_predictor_5_face_landmarks.dat``) with
   the whole frame as the box, ``get_face_chip(size=150, padding=0.25)``, ``compute_face_descriptor``.
   Rows (``--fd-n`` faces each, default 1000): generated vs real A, the floor real B vs real A and
   the control real B blurred (sigma 1 px at 64 px) vs real A; A and B are two disjoint random sets
   of training faces (the held-back set has only 1,000 faces and another label distribution).
   ``dlib-bin`` and ``face_recognition_models`` are not gantools dependencies: ``pip download
   --no-deps`` puts them in ``bench/.cache/`` (once) and the embedder runs in a child process.

Targets: Haar rate of generated >= 0.90; SWD (mean over levels) of generated vs half B <= 3 x the
floor; no generated face nearer its nearest training face than the 1st percentile of the real
held-back faces' distances; embedding FD of generated vs real A <= 3 x the floor. Exit status 1
when a target fails.

    python bench/faces.py                                               # shipped model -> bench/results/faces.md
    python bench/faces.py --weights runs/faces/export.safetensors --n 100 --out /tmp/faces.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from gantools.tensor.convert import images_to_tensor

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "faces"
CACHE = ROOT / "bench" / ".cache"
OPENCV4 = "opencv-python-headless==4.10.0.84"
OPENCV4_DIR = CACHE / "opencv-python-headless-4.10.0.84"
CASCADE_NAME = "haarcascade_frontalface_default.xml"
CASCADE = OPENCV4_DIR / "cv2" / "data" / CASCADE_NAME
DLIB, DLIB_MODELS_PKG = "dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0"
DLIB_DIR = CACHE / "dlib-bin-20.0.1.post1"
DLIB_MODELS = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
SIZE = 64  # every face is compared at 64 px
HAAR_PARAMS = {"scaleFactor": 1.1, "minNeighbors": 5, "minSize": (40, 40)}
SWD_PATCH, SWD_PER_IMAGE, SWD_LEVELS, SWD_DIRS, SWD_REPEATS = 7, 128, 3, 128, 4
TARGETS = {"haar": 0.90, "swd_ratio": 3.0, "fd_ratio": 3.0}
SPLIT_SEED, NOISE_SEED, SHUFFLE_SEED, SWD_SEED, FD_SEED = 2018, 1, 2, 3, 4
FD_BLUR = 1.0  # sigma (px at SIZE) of the blurred-real control

#: Child-process detector: argv = gray stack (.npy), cascade, detectMultiScale params (JSON), output (.npy).
HAAR_WORKER = """
import json, sys
import cv2, numpy as np
if not hasattr(cv2, "CascadeClassifier"):
    raise SystemExit(f"error: OpenCV {cv2.__version__} at {cv2.__file__} has no CascadeClassifier")
cv2.setNumThreads(1)
c = cv2.CascadeClassifier(sys.argv[2])
if c.empty():
    raise SystemExit(f"error: {sys.argv[2]}: not a readable Haar cascade")
p = json.loads(sys.argv[3]); p["minSize"] = tuple(p["minSize"])
boxes = [len(c.detectMultiScale(g, **p)) for g in np.load(sys.argv[1])]
np.save(sys.argv[4], np.asarray(boxes, np.int64))
"""


# -- 1. Haar face detection ------------------------------------------------------------------
def haar_inputs(faces: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` RGB uint8 faces -> ``(N, 192, 192)`` gray uint8 detector inputs.

    Each face goes to 64 px, then 128 px (``square_resize``: INTER_AREA down, cubic up), is padded
    by 32 px (25 %) per side with replicated borders and converted to gray.
    """
    import cv2

    from gantools_faces.train import square_resize

    pad = 128 // 4
    out = []
    for face in faces:
        img = square_resize(square_resize(face, 64), 128)
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        out.append(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    return np.stack(out)


def has_cascade_classifier() -> bool:
    """Whether this interpreter's OpenCV can run Haar cascades (OpenCV 5 cannot)."""
    import cv2

    return hasattr(cv2, "CascadeClassifier")


def haar_runtime(cache: Path = OPENCV4_DIR) -> Path | None:
    """Folder to put on PYTHONPATH for an OpenCV with CascadeClassifier (``None``: this one will do).

    Raises ``FileNotFoundError`` when neither this OpenCV nor the unpacked 4.x wheel can run cascades.
    """
    if has_cascade_classifier():
        return None
    if (cache / "cv2" / "__init__.py").is_file():
        return cache
    raise FileNotFoundError(f"no OpenCV with CascadeClassifier: {cache} is not unpacked (see fetch_opencv4)")


def pip_download(spec: str, pattern: str, only_binary: bool = True) -> Path:
    """``pip download --no-deps spec`` into ``bench/.cache/wheels`` (once); the newest file matching ``pattern``.

    Exits with a one-line error when pip fails or saves no such file.
    """
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob(pattern))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *(["--only-binary=:all:"] if only_binary else []),
           spec, "-d", str(wheels)]
    print(f"fetching {spec}: {' '.join(cmd[1:])}", file=sys.stderr)
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(pattern))
    if res.returncode or not found:
        tail = (res.stderr.strip().splitlines() or ["no file"])[-1]
        raise SystemExit(f"error: pip download {spec} failed ({tail})")
    return found[-1]


def fetch_opencv4(cache: Path = OPENCV4_DIR) -> Path:
    """Download the OpenCV 4.x wheel with pip (once) and unpack ``cv2/`` and its libraries into ``cache``."""
    if (cache / "cv2" / "__init__.py").is_file():
        return cache
    try:
        wheel = pip_download(OPENCV4, "opencv_python_headless-4.10.0.84-*.whl")
    except SystemExit as exc:
        raise SystemExit(f"{exc}; Haar detection needs it where OpenCV has no CascadeClassifier (OpenCV 5), "
                         "else pass --cascade PATH") from None
    tmp = Path(tempfile.mkdtemp(prefix=".opencv4-", dir=CACHE))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp, [n for n in zf.namelist() if n.startswith(("cv2/", "opencv_python_headless.libs/"))])
    tmp.rename(cache)
    return cache


def detect_faces(gray: np.ndarray, cascade: str | Path, runtime: Path | None = None) -> np.ndarray:
    """Number of Haar boxes found in each of ``gray`` ``(N, H, W)`` uint8 (``HAAR_PARAMS``).

    Runs in a child process (one thread) so that an OpenCV 4 ``runtime`` folder can stand in for
    an OpenCV without CascadeClassifier; raises ``RuntimeError`` with the child's message on failure.
    """
    if gray.ndim != 3 or gray.dtype != np.uint8:
        raise ValueError("gray must be an (N, H, W) uint8 array")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if runtime is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(runtime), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with tempfile.TemporaryDirectory(prefix="gantools-haar-") as tmp:
        src, dst = Path(tmp) / "gray.npy", Path(tmp) / "boxes.npy"
        np.save(src, np.ascontiguousarray(gray))
        res = subprocess.run([sys.executable, "-c", HAAR_WORKER, str(src), str(cascade), json.dumps(HAAR_PARAMS),
                              str(dst)], capture_output=True, text=True, env=env)
        if res.returncode:
            raise RuntimeError((res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1])
        return np.load(dst)


def haar_detection_rate(faces: np.ndarray, cascade: str | Path, runtime: Path | None = None) -> float:
    """Fraction of ``faces`` (``(N, H, W, 3)`` RGB uint8) with at least one Haar box (the protocol above)."""
    return float(np.mean(detect_faces(haar_inputs(faces), cascade, runtime) > 0))


def noise_images(n: int, size: int = SIZE, seed: int = NOISE_SEED) -> np.ndarray:
    """``n`` images of uniform random RGB noise, ``(n, size, size, 3)`` uint8."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def shuffle_blocks(images: np.ndarray, block: int = 16, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """Each image cut into ``block`` px squares put back in a random order (its own per image)."""
    n, h, w, c = images.shape
    if h % block or w % block:
        raise ValueError(f"image size {h}x{w} is not a multiple of {block}")
    gy, gx = h // block, w // block
    tiles = images.reshape(n, gy, block, gx, block, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, gy * gx, block, block, c)
    rng = np.random.default_rng(seed)
    tiles = np.stack([t[rng.permutation(gy * gx)] for t in tiles])
    return np.ascontiguousarray(tiles.reshape(n, gy, gx, block, block, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, c))


# -- 2. sliced Wasserstein distance ------------------------------------------------------------
def to_nchw(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> float ``(N, 3, H, W)`` in [0, 1]."""
    return images_to_tensor(images, bgr_to_rgb=False)


def laplacian_levels(x: torch.Tensor, levels: int = SWD_LEVELS) -> list[torch.Tensor]:
    """Laplacian pyramid of ``x`` (kornia): band-pass levels, then the Gaussian residual last."""
    from kornia.geometry.transform import build_laplacian_pyramid

    return build_laplacian_pyramid(x, levels)


def patch_descriptors(x: torch.Tensor, per_image: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``(N * per_image, C * size * size)`` random ``size`` x ``size`` patches of ``x`` ``(N, C, H, W)``,
    each channel normalised by the mean/std over all the patches (ProGAN's per-set normalisation)."""
    n, c, h, w = x.shape
    ys = torch.randint(0, h - size + 1, (n, per_image, 1), generator=gen) + torch.arange(size)
    xs = torch.randint(0, w - size + 1, (n, per_image, 1), generator=gen) + torch.arange(size)
    idx = torch.arange(n)[:, None, None, None]
    p = x.permute(0, 2, 3, 1)[idx, ys[..., :, None], xs[..., None, :]]  # (n, per_image, size, size, c)
    p = p.reshape(-1, size * size, c)
    p = (p - p.mean(dim=(0, 1))) / p.std(dim=(0, 1), correction=0).clamp_min(1e-8)
    return p.permute(0, 2, 1).reshape(p.shape[0], -1)


def swd(a: np.ndarray, b: np.ndarray, seed: int = SWD_SEED) -> list[float]:
    """ProGAN SWD x1e3 per pyramid level (finest first) between image sets ``a`` and ``b``.

    ``a`` and ``b``: ``(N, H, W, 3)`` uint8, the same N and size. Patches of ``a`` and ``b`` are
    drawn with different fixed seeds, so ``swd(x, x)`` is the sampling noise, not exactly 0.
    """
    from gantools_stylize.metrics import projections, sliced_wasserstein

    if a.shape != b.shape:
        raise ValueError(f"image sets must have one shape, got {a.shape} and {b.shape}")
    ga, gb = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    out = []
    for la, lb in zip(laplacian_levels(to_nchw(a)), laplacian_levels(to_nchw(b))):
        da = patch_descriptors(la, SWD_PER_IMAGE, SWD_PATCH, ga)
        db = patch_descriptors(lb, SWD_PER_IMAGE, SWD_PATCH, gb)
        d = [sliced_wasserstein(da, db, projections(da.shape[1], SWD_DIRS, seed=seed * 1000 + r)) for r in range(SWD_REPEATS)]
        out.append(float(np.mean(d)) * 1e3)
    return out


# -- 3. nearest neighbours ---------------------------------------------------------------------
def nearest(queries: np.ndarray, refs: np.ndarray, chunk: int = 2048, candidates: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's nearest row of ``refs`` by L2, and that distance (float64, input units).

    Rows are flattened (any trailing shape). Candidates come from float32 ``|q|^2 + |r|^2 - 2 q.r``
    over chunks of ``refs`` (so ``refs`` may be stored as uint8); the ``candidates`` best per query
    are re-measured exactly in float64, so near-ties are resolved by exact distances.
    """
    q = torch.from_numpy(np.ascontiguousarray(queries).reshape(len(queries), -1)).float()
    r_all = np.ascontiguousarray(refs).reshape(len(refs), -1)
    if q.shape[1] != r_all.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per row, refs {r_all.shape[1]}")
    k = min(candidates, len(r_all))
    qn = (q * q).sum(1, keepdim=True)
    best_d = torch.full((len(q), k), float("inf"))
    best_i = torch.zeros((len(q), k), dtype=torch.long)
    for start in range(0, len(r_all), chunk):
        r = torch.from_numpy(r_all[start : start + chunk]).float()
        d2 = qn + (r * r).sum(1)[None] - 2.0 * (q @ r.T)
        d = torch.cat([best_d, d2], 1)
        i = torch.cat([best_i, torch.arange(start, start + len(r)).expand(len(q), -1)], 1)
        best_d, pos = d.topk(k, dim=1, largest=False)
        best_i = i.gather(1, pos)
    qa = np.ascontiguousarray(queries).reshape(len(queries), -1)
    exact = np.stack([np.sqrt(((r_all[best_i[j].numpy()].astype(np.float64) - qa[j].astype(np.float64)) ** 2).sum(1))
                      for j in range(len(qa))])
    pick = exact.argmin(1)
    rows = np.arange(len(qa))
    return best_i.numpy()[rows, pick], exact[rows, pick]


def memorisation(gen_d: np.ndarray, real_d: np.ndarray) -> dict[str, float | int]:
    """Nearest-training-face distances of generated (``gen_d``) vs held-back real faces (``real_d``).

    ``p1``: 1st percentile of ``real_d``; ``p1_unique``: the same over the real faces whose nearest
    training face is not a pixel-identical copy (``real_d > 0``; the data has duplicates under
    other names, which make ``p1`` 0); ``closer``/``closer_unique``: generated faces below each.
    """
    unique = real_d[real_d > 0]
    p1 = float(np.percentile(real_d, 1))
    p1u = float(np.percentile(unique, 1)) if unique.size else 0.0
    return {"p1": p1, "p1_unique": p1u, "closer": int((gen_d < p1).sum()), "closer_unique": int((gen_d < p1u).sum()),
            "real_copies": int((real_d == 0).sum()), "gen_copies": int((gen_d == 0).sum())}


def nearest_mirrored(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``nearest`` over each image and its mirror image (``(N, H, W, C)``): index, distance, mirrored?"""
    idx, d = nearest(np.concatenate([queries, queries[:, :, ::-1]]), refs)
    n = len(queries)
    flip = d[n:] < d[:n]
    return np.where(flip, idx[n:], idx[:n]), np.where(flip, d[n:], d[:n]), flip


# -- 5. Frechet distance of face embeddings ----------------------------------------------------
#: Child-process embedder: argv = RGB stack (.npy), 5-point landmark model, ResNet model, output (.npy).
FD_WORKER = """
import sys
import dlib, numpy as np
sp, fr = dlib.shape_predictor(sys.argv[2]), dlib.face_recognition_model_v1(sys.argv[3])
out = []
for img in np.load(sys.argv[1]):
    shape = sp(img, dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1))
    out.append(np.asarray(fr.compute_face_descriptor(dlib.get_face_chip(img, shape, size=150, padding=0.25))))
np.save(sys.argv[4], np.asarray(out, np.float64).reshape(len(out), 128))
"""


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` ``(N, D)`` and ``b`` ``(M, D)``.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)`` with sample means and
    unbiased covariances (``np.cov``, as FID); square roots by symmetric eigen decomposition, negative
    rounding-level eigenvalues clipped to 0; the result is clipped at 0 (identical sets give 0).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N >= 2, D) arrays with one D, got {a.shape} and {b.shape}")
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrt_psd(sa)
    cross = np.sqrt(np.linalg.eigvalsh(_sym(root_a @ sb @ root_a)).clip(min=0.0)).sum()
    d = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2.0 * cross
    return max(float(d), 0.0)


def _sym(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2.0


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (eigen decomposition)."""
    w, v = np.linalg.eigh(_sym(m))
    return (v * np.sqrt(w.clip(min=0.0))) @ v.T


def fd_inputs(faces: np.ndarray, blur: float = 0.0) -> np.ndarray:
    """``(N, H, W, 3)`` RGB uint8 faces -> ``(N, 128, 128, 3)`` embedder inputs: each face to ``SIZE``
    px (optionally Gaussian-blurred there with ``sigma = blur`` px), then to 128 px (``square_resize``)."""
    import cv2

    from gantools_faces.train import square_resize

    out = []
    for face in faces:
        img = square_resize(face, SIZE)
        if blur:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        out.append(square_resize(img, 128))
    return np.stack(out)


def fetch_dlib(cache: Path = DLIB_DIR) -> Path:
    """The ``dlib-bin`` wheel and the two models of ``face_recognition_models`` (pip download, once),
    unpacked into ``cache`` (``dlib/``, its extension, ``models/*.dat``); returns ``cache``."""
    if all((cache / p).is_file() for p in ("dlib/__init__.py", *(f"models/{m}" for m in DLIB_MODELS))):
        return cache
    wheel = pip_download(DLIB, "dlib_bin-20.0.1.post1-*.whl")
    sdist = pip_download(DLIB_MODELS_PKG, "face_recognition_models-0.3.0.tar.gz", only_binary=False)
    tmp = Path(tempfile.mkdtemp(prefix=".dlib-", dir=CACHE))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp, [n for n in zf.namelist() if not n.startswith("dlib_bin-")])
    (tmp / "models").mkdir()
    with tarfile.open(sdist) as tf:
        for name in DLIB_MODELS:
            src = tf.extractfile(f"face_recognition_models-0.3.0/face_recognition_models/models/{name}")
            (tmp / "models" / name).write_bytes(src.read())
    tmp.rename(cache)
    return cache


def embed_faces(faces: np.ndarray, runtime: Path) -> np.ndarray:
    """``(N, 128)`` dlib ResNet descriptors of ``faces`` ``(N, H, W, 3)`` RGB uint8 (the embedder inputs).

    Each face: 5-point landmarks on the whole frame, ``get_face_chip(size=150, padding=0.25)``,
    ``compute_face_descriptor``. Runs in a child process (one thread) with ``runtime`` (:func:`fetch_dlib`)
    on its path; raises ``RuntimeError`` with the child's message on failure.
    """
    if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
        raise ValueError("faces must be an (N, H, W, 3) uint8 array")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(runtime), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    models = [str(runtime / "models" / m) for m in DLIB_MODELS]
    with tempfile.TemporaryDirectory(prefix="gantools-fd-") as tmp:
        src, dst = Path(tmp) / "faces.npy", Path(tmp) / "emb.npy"
        np.save(src, np.ascontiguousarray(faces))
        res = subprocess.run([sys.executable, "-c", FD_WORKER, str(src), *models, str(dst)],
                             capture_output=True, text=True, env=env)
        if res.returncode:
            raise RuntimeError((res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1])
        return np.load(dst)


# -- data and model ----------------------------------------------------------------------------
@dataclass
class RealFaces:
    """Held-back faces (benchmark reference) and training faces, RGB uint8 at 64 px, with member names."""

    held: np.ndarray
    held_names: list[str]
    train: np.ndarray
    train_names: list[str]
    rule: dict


def holdout_rule(metadata: dict[str, str]) -> dict:
    """The export's hold-out rule, else ``FacesTask``'s defaults (``shard``, ``count``)."""
    from gantools_faces.train import FacesTask

    defaults = {o.name: o.default for o in FacesTask.options}
    rule = {"shard": defaults["holdout_shard"], "count": defaults["holdout"]}
    if "holdout" in metadata:
        rule.update({k: v for k, v in json.loads(metadata["holdout"]).items() if k in ("shard", "count")})
    return rule


def load_real(data: Sequence[str], rule: dict, workers: int) -> RealFaces:
    """Held-back and training faces from ``data``, split by ``holdout_names`` exactly as training does."""
    from gantools_faces.train import holdout_names, square_resize
    from gantools.train.data import ImageSet

    held = holdout_names(list(data), rule["shard"], int(rule["count"]))
    if not held:
        raise SystemExit(f"error: no held-back faces in {', '.join(data)} (rule {rule}); the benchmark needs them")
    tf = lambda im: square_resize(im, SIZE)  # noqa: E731
    h = ImageSet(list(data), transform=tf, exclude=lambda n: n not in held, workers=workers)
    t = ImageSet(list(data), transform=tf, exclude=held.__contains__, workers=workers)
    return RealFaces(np.stack(h.images), h.names, np.stack(t.images), t.names, rule)


def load_plugin(weights: str | None, precision: str, threads: int) -> Any:
    """The ``faces`` plugin, set up; exits with a one-line error when there is no model."""
    import gantools
    from gantools.plugin import OptionError

    try:
        plugin = gantools.load("faces", weights=weights, precision=precision, threads=threads)
        plugin.ensure_setup()
    except (OptionError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    return plugin


def to_rgb64(bgr: Sequence[np.ndarray]) -> np.ndarray:
    """Generated BGR faces -> ``(N, 64, 64, 3)`` RGB uint8 (resized like training when not 64 px)."""
    from gantools_faces.train import square_resize

    return np.stack([square_resize(np.ascontiguousarray(f[:, :, ::-1]), SIZE) for f in bgr])


# -- 4. speed ----------------------------------------------------------------------------------
def clock(threads: int) -> Callable[[], float]:
    """Main-thread CPU time with one thread (robust to other processes), wall time otherwise."""
    return time.thread_time if threads == 1 else time.perf_counter


def faces_per_s(plugin: Any, batch: int, repeats: int, threads: int) -> tuple[float, float]:
    """(``generate(batch, seed)`` faces/s, one batched synthesis pass of ``batch`` faces/s), after a warm-up."""
    face, now = plugin.face, clock(threads)
    plugin.generate(2, 0)
    t = now()
    for k in range(repeats):
        plugin.generate(batch, 100_000 + k * batch)
    api = batch * repeats / (now() - t)
    face.render(torch.cat([face.seed_w(s) for s in range(2)]))
    t = now()
    for k in range(repeats):
        face.render(torch.cat([face.seed_w(100_000 + k * batch + s) for s in range(batch)]))
    return api, batch * repeats / (now() - t)


# -- the run ------------------------------------------------------------------------------------
@dataclass
class Results:
    """Numbers of one benchmark run (sections as in the report) and what they were measured on."""

    haar: dict[str, tuple[int, float]] = field(default_factory=dict)
    swd: dict[str, tuple[str, list[float]]] = field(default_factory=dict)
    nn: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, tuple[float, float]] = field(default_factory=dict)
    fd: dict[str, tuple[str, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def checks(self) -> dict[str, bool]:
        floor = np.mean(self.swd["floor"][1])
        out = {
            "haar": self.haar["generated"][1] >= TARGETS["haar"],
            "swd": np.mean(self.swd["gen_half"][1]) <= TARGETS["swd_ratio"] * floor,
            "memorisation": self.nn["closer_unique"] == 0,
        }
        if self.fd:
            out["fd"] = self.fd["generated"][1] <= TARGETS["fd_ratio"] * self.fd["floor"][1]
        return out


_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress line on stderr, with the seconds since the module was loaded."""
    print(f"[{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def default_cascade(runtime: Path | None) -> Path:
    """``CASCADE_NAME`` of the OpenCV that will run it: this one's ``cv2.data`` (``runtime`` None), else the 4.x wheel's."""
    import cv2

    own = getattr(cv2.data, "haarcascades", "")
    if runtime is None and own and (Path(own) / CASCADE_NAME).is_file():
        return Path(own) / CASCADE_NAME
    return (runtime or OPENCV4_DIR) / "cv2" / "data" / CASCADE_NAME


def resolve_cascade(arg: str | None) -> tuple[Path, Path | None]:
    """(cascade file, OpenCV runtime folder or None): ``arg`` or :func:`default_cascade`, fetching
    the OpenCV 4 wheel when this OpenCV cannot run cascades or ships none."""
    if arg and not Path(arg).is_file():
        raise SystemExit(f"error: --cascade {arg}: no such file")
    runtime = None if has_cascade_classifier() else fetch_opencv4()
    cascade = Path(arg) if arg else default_cascade(runtime)
    if not cascade.is_file():
        fetch_opencv4()
    return cascade, runtime


@dataclass
class FaceSets:
    """Everything compared: generated faces and the held-back faces in a fixed random order."""

    gen: np.ndarray
    matched: np.ndarray
    held: np.ndarray
    real: RealFaces

    @property
    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-back faces split in two disjoint halves (A, B)."""
        half = len(self.held) // 2
        return self.held[:half], self.held[half:]


def face_sets(plugin: Any, real: RealFaces, n: int, truncation: float, res: Results) -> FaceSets:
    """Seeds ``0..n-1`` rendered with drawn labels and with the labels of the (shuffled) held-back faces."""
    from gantools_faces.labels import parse_name

    order = np.random.default_rng(SPLIT_SEED).permutation(len(real.held))
    log(f"generating {n} faces (seeds 0..{n - 1}, truncation {truncation}) ...")
    t = time.perf_counter()
    gen = to_rgb64(plugin.generate(n, 0, truncation))
    res.info["gen_seconds"] = time.perf_counter() - t
    labels = [parse_name(real.held_names[order[k % len(order)]]) for k in range(n)]
    matched = to_rgb64([plugin.generate(1, k, truncation, labels[k])[0] for k in range(n)])
    return FaceSets(gen, matched, real.held[order], real)


def run_haar(fs: FaceSets, cascade: Path, runtime: Path | None) -> dict[str, tuple[int, float]]:
    """Detection rate of every row of ``HAAR_ROWS``: (images, rate)."""
    log("Haar face detection ...")
    sets = {"generated": fs.gen, "matched": fs.matched, "real": fs.held, "noise": noise_images(len(fs.held)),
            "shuffled": shuffle_blocks(fs.held)}
    return {name: (len(imgs), haar_detection_rate(imgs, cascade, runtime)) for name, imgs in sets.items()}


def run_swd(fs: FaceSets) -> dict[str, tuple[str, list[float]]]:
    """Every row of ``SWD_ROWS``: ("k vs k", per-level SWD); halves use h = min(N, half) per side."""
    log("sliced Wasserstein distances ...")
    a, b = fs.halves
    n = len(fs.gen)
    k, h = min(n, len(fs.held)), min(n, len(a))
    return {
        "gen_full": (f"{k} vs {k}", swd(fs.gen[:k], fs.held[:k])),
        "gen_half": (f"{h} vs {h}", swd(fs.gen[:h], b[:h])),
        "matched_half": (f"{h} vs {h}", swd(fs.matched[:h], b[:h])),
        "floor": (f"{h} vs {h}", swd(a[:h], b[:h])),
    }


def run_nn(fs: FaceSets) -> dict[str, Any]:
    """Memorisation summary (:func:`memorisation`), distance stats and the 10 closest generated faces."""
    train = fs.real.train
    log(f"nearest training faces ({len(train)} faces, mirrored queries too) ...")
    gi, gd, gf = nearest_mirrored(fs.gen, train)
    _, rd, _ = nearest_mirrored(fs.real.held, train)
    gd, rd = gd / 255.0, rd / 255.0
    top = np.argsort(gd, kind="stable")[:10]
    return {**memorisation(gd, rd), "gen": _stats(gd), "real": _stats(rd),
            "top": [(int(s), Path(fs.real.train_names[gi[s]]).name, float(gd[s]), bool(gf[s])) for s in top]}


def run_fd(fs: FaceSets, n: int) -> tuple[dict[str, tuple[str, float]], float]:
    """Every row of ``FD_ROWS`` (("n vs n", FD x100)) and the embedding wall seconds per face.

    Real A and B: two disjoint random sets of ``n`` training faces (``FD_SEED``), which share the
    generator's label distribution (the held-back faces do not); generated: seeds ``0..n-1``.
    """
    train = fs.real.train
    if 2 * n > len(train):
        raise SystemExit(f"error: --fd-n {n} needs {2 * n} training faces, there are {len(train)}")
    order = np.random.default_rng(FD_SEED).permutation(len(train))
    real_a, real_b = train[order[:n]], train[order[n : 2 * n]]
    runtime = fetch_dlib()
    log(f"face embeddings (dlib ResNet, {4 * n} faces, one thread) ...")
    t = time.perf_counter()
    emb = {name: embed_faces(fd_inputs(imgs, blur), runtime) for name, imgs, blur in
           [("generated", fs.gen[:n], 0.0), ("a", real_a, 0.0), ("b", real_b, 0.0), ("blurred", real_b, FD_BLUR)]}
    per_face = (time.perf_counter() - t) / (4 * n)
    pairs = {"generated": "generated", "blurred": "blurred", "floor": "b"}
    rows = {key: (f"{n} vs {n}", 100.0 * frechet_distance(emb[side], emb["a"])) for key, side in pairs.items()}
    return rows, per_face


def run(args: argparse.Namespace) -> Results:
    """The whole benchmark for ``args`` (see the module docstring)."""
    res = Results()
    plugin = load_plugin(args.weights, "fp32", args.threads)
    cascade, runtime = resolve_cascade(args.cascade)
    res.info.update(weights=str(plugin.weights_path), sha256=_sha256(plugin.weights_path), cascade=str(cascade),
                    cascade_sha256=_sha256(cascade), resolution=plugin.face.resolution, n=args.n,
                    opencv=f"{OPENCV4} (child process)" if runtime else f"OpenCV {_cv2_version()}")
    rule = holdout_rule(plugin.face.metadata)
    log(f"loading faces from {', '.join(args.data)} (hold-out: last {rule['count']} of {rule['shard']}) ...")
    real = load_real(args.data, rule, args.threads)
    res.info.update(n_held=len(real.held), n_train=len(real.train), rule=rule, held_labels=_label_summary(real.held_names))
    fs = face_sets(plugin, real, args.n, args.truncation, res)
    res.haar, res.swd, res.nn = run_haar(fs, cascade, runtime), run_swd(fs), run_nn(fs)
    if not args.no_speed:
        log(f"speed (batch {args.batch}, {args.threads} thread(s)) ...")
        res.speed["fp32"] = faces_per_s(plugin, args.batch, args.repeats, args.threads)
        bf16 = load_plugin(args.weights, "bf16", args.threads)
        res.speed["bf16"] = faces_per_s(bf16, args.batch, args.repeats, args.threads)
    if not args.no_fd:
        res.fd, res.info["fd_seconds_per_face"] = run_fd(fs, min(args.fd_n, args.n))
    return res


def _cv2_version() -> str:
    import cv2

    return cv2.__version__


def _sha256(path: str | Path) -> str:
    from gantools.weights import sha256_file

    return sha256_file(path)


def _stats(d: np.ndarray) -> dict[str, float]:
    return {"min": float(d.min()), "p1": float(np.percentile(d, 1)), "median": float(np.median(d))}


def _label_summary(names: Sequence[str]) -> str:
    from gantools_faces.labels import AGE_GROUPS, parse_name

    ages = [parse_name(n)[0] for n in names]
    counts = {AGE_GROUPS[a]: ages.count(a) for a in sorted({a for a in ages if a is not None})}
    unknown = sum(a is None for a in ages)
    return ", ".join(f"{g}: {c}" for g, c in counts.items()) + (f", unknown: {unknown}" if unknown else "")


# -- report -------------------------------------------------------------------------------------
HAAR_ROWS = {
    "generated": ("generated (seeds 0..N-1)", f">= {TARGETS['haar']:.2f}"),
    "matched": ("generated, labels of the held-back faces", ""),
    "real": ("real, held back from training", "(reference)"),
    "noise": ("control: uniform noise", "expect 0"),
    "shuffled": ("control: real, shuffled 16 px blocks", "expect ~0.03"),
}
FD_ROWS = {
    "generated": "generated vs real A",
    "blurred": f"control: real B blurred (sigma {FD_BLUR:g} px at {SIZE} px) vs real A",
    "floor": "real B vs real A (floor)",
}
SWD_ROWS = {
    "gen_full": "generated vs real",
    "gen_half": "generated vs real half B",
    "matched_half": "generated (held-back labels) vs real half B",
    "floor": "real half A vs real half B (floor)",
}


def markdown(res: Results, args: argparse.Namespace, command: str) -> str:
    i, ok, nn = res.info, res.checks(), res.nn
    floor = float(np.mean(res.swd["floor"][1]))
    mark = lambda b: "pass" if b else "FAIL"  # noqa: E731
    lines = [
        "# Face generation benchmark",
        "",
        f"`{command}` | {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} | torch {torch.__version__} | "
        f"model `{i['weights']}` (sha256 {i['sha256'][:16]}, {i['resolution']} px)",
        "",
        f"Generated: {i['n']} faces, seeds 0..{i['n'] - 1}, truncation {args.truncation}, fp32 "
        f"(generated in {i['gen_seconds']:.1f} s wall). Real: the {i['n_held']} faces held back from training (last {i['rule']['count']} "
        f"names of {i['rule']['shard']} in sorted order; age groups: {i['held_labels']}); training faces: "
        f"{i['n_train']}. All compared at {SIZE} px.",
        "",
        f"## Haar frontal-face detection (`{CASCADE_NAME}`, sha256 {i['cascade_sha256'][:16]}, {i['opencv']})",
        "",
        "| images | n | detection rate | target |",
        "|---|---|---|---|",
    ]
    for key, (label, target) in HAAR_ROWS.items():
        n, rate = res.haar[key]
        extra = f" {mark(ok['haar'])}" if key == "generated" else ""
        lines.append(f"| {label} | {n} | {rate:.3f} | {target}{extra} |")
    lines += [
        "",
        "## Sliced Wasserstein distance, Laplacian-pyramid 7x7 patches (x1e3)",
        "",
        "| pair | faces | 64 px | 32 px | 16 px (residual) | mean | / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in SWD_ROWS.items():
        size, levels = res.swd[key]
        mean = float(np.mean(levels))
        lines.append(f"| {label} | {size} | " + " | ".join(f"{v:.1f}" for v in levels) + f" | {mean:.1f} | {mean / floor:.2f} |")
    lines += [
        "",
        f"Target: generated vs real half B <= {TARGETS['swd_ratio']:.0f} x floor (same face counts): {mark(ok['swd'])}.",
        "",
        "## Memorisation: nearest training face (pixel L2, 64x64x3 in [0, 1], mirror images included)",
        "",
        "| faces | min | 1st percentile | median |",
        "|---|---|---|---|",
        f"| generated | {nn['gen']['min']:.2f} | {nn['gen']['p1']:.2f} | {nn['gen']['median']:.2f} |",
        f"| real, held back | {nn['real']['min']:.2f} | {nn['real']['p1']:.2f} | {nn['real']['median']:.2f} |",
        "",
        f"Held-back faces with a pixel-identical copy in the training set (other file name, L2 = 0): "
        f"{nn['real_copies']} of {i['n_held']}; generated faces identical to a training face: {nn['gen_copies']}.",
        "",
        f"Generated faces nearer their nearest training face than the held-back 1st percentile: "
        f"{nn['closer']} below {nn['p1']:.2f} (all held-back faces); {nn['closer_unique']} below "
        f"{nn['p1_unique']:.2f} (held-back faces without an identical copy; target 0: {mark(ok['memorisation'])}). "
        "The 10 closest:",
        "",
        "| seed | nearest training face | L2 | mirrored |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {name} | {d:.2f} | {'yes' if f else 'no'} |" for s, name, d, f in nn["top"]]
    if res.fd:
        lines += fd_markdown(res, ok["fd"])
    if res.speed:
        unit = "CPU s of the main thread" if args.threads == 1 else "wall s"
        lines += [
            "",
            f"## Generation speed (faces/s, batch {args.batch}, {args.threads} thread(s), per {unit})",
            "",
            "| precision | generate(64, seed): one pass per face | one batched pass of 64 |",
            "|---|---|---|",
        ]
        lines += [f"| {p} | {a:.1f} | {b:.1f} |" for p, (a, b) in res.speed.items()]
    lines.append("")
    return "\n".join(lines)


def fd_markdown(res: Results, passed: bool) -> list[str]:
    """The report section of the face-embedding Frechet distance."""
    floor = res.fd["floor"][1]
    lines = [
        "",
        "## Frechet distance of face embeddings (dlib ResNet, 128-D, x100)",
        "",
        f"`{DLIB}` + `{DLIB_MODELS_PKG}` in a child process. Each face at {SIZE} px, then 128 px; 5-point "
        "landmarks on the whole frame, `get_face_chip(size=150, padding=0.25)`, `compute_face_descriptor`. "
        "Real A and B: two disjoint random sets of training faces (the generator's label distribution); "
        f"{res.info['fd_seconds_per_face']:.3f} s wall per face.",
        "",
        "| pair | faces | FD x100 | / floor |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {res.fd[key][0]} | {res.fd[key][1]:.2f} | {res.fd[key][1] / floor:.1f} |"
              for key, label in FD_ROWS.items()]
    return lines + ["", f"Target: generated vs real A <= {TARGETS['fd_ratio']:.0f} x floor (same face counts): "
                        f"{'pass' if passed else 'FAIL'}."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="generated faces: seeds 0..N-1")
    ap.add_argument("--weights", help="a run export (RUN/export.safetensors) instead of the shipped model")
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--data", nargs="+", default=[str(DATA)], help="face folders/zips the model was trained on")
    ap.add_argument("--cascade", help=f"{CASCADE_NAME} to use (default: from the {OPENCV4} wheel)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="speed: faces per call")
    ap.add_argument("--repeats", type=int, default=3, help="speed: calls timed per precision")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--fd-n", type=int, default=1000, help="faces per set for the embedding FD (at most --n)")
    ap.add_argument("--no-fd", action="store_true", help=f"skip the embedding FD (needs {DLIB}, fetched once)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "faces.md"), help="markdown report path")
    args = ap.parse_args(argv)
    if args.n < 2 or args.fd_n < 2:
        ap.error("--n and --fd-n must be at least 2")
    if not 0.0 < args.truncation <= 1.0:
        ap.error("--truncation must be in (0, 1]")
    torch.set_num_threads(args.threads)
    command = "python bench/faces.py" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    res = run(args)
    text = markdown(res, args, command)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"wrote {out}")
    return 0 if all(res.checks().values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
