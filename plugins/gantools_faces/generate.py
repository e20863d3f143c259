"""Generating faces from seeds: :class:`FaceModel` = a FaceGAN generator + its export metadata.

Reproducibility contract: face ``i`` of ``generate(n, seed)`` depends only on ``seed + i``. Its
own ``np.random.default_rng(seed + i)`` draws ``z`` (``z_dim`` standard normals) first, then one
uniform number for the labels (used only for the fields not given); its ``w`` is mapped on its
own. Synthesis runs :data:`BATCH` faces per pass, and every pass has exactly :data:`BATCH`
samples (a short last batch is padded with copies of its last ``w``, whose images are dropped):
the computation has one shape whatever ``n``, and no layer mixes samples, so no result depends
on ``n``, on its place in a batch, or on the other faces (``generate(4, 7) == generate(2, 7) +
generate(2, 9)`` exactly, in fp32 and in bf16). A batched convolution or matrix product may sum
in another order than a batch of one, so these images can differ from one-sample
:meth:`FaceModel.render` calls by a rounding step (measured on the shipped model: at most 1 level
in fp32 on 2 of 8x64x64x3 values; up to 3 levels in bf16). The same ``z`` is used whatever the labels, so ``--seed 7 --age 70`` shows
seed 7's face at another age.

Truncation ``psi`` in (0, 1] moves ``w`` towards a centre: ``w' = c + psi * (w - c)``. The default
centre is the mean ``w`` of the face's own labels (estimated once per label pair from 2,048
fixed ``z``), so truncation does not wash out age and gender; ``center="global"`` uses the
tracked ``mapping.w_avg`` instead. The mapping network always runs in fp32; ``precision``
applies to the synthesis network.

Backends: every ``w`` is made in torch as above; the synthesis passes of ``generate``,
``interpolate`` and :meth:`FaceModel.render_batched` run through :meth:`FaceModel.use_backend`
(default torch; :mod:`gantools_faces.backend`: the exported synthesis graph in ONNX Runtime or
OpenVINO, fp32 within 1/255 of torch's). A graph backend keeps the contract above: its passes have
the same one shape, and no exported layer mixes samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantools.tensor import convert
from gantools_faces.labels import NUM_AGES, NUM_GENDERS, LabelDistribution

#: Seed of the fixed latents used to estimate each label pair's mean ``w``.
CENTER_SEED = 0x5EED
CENTER_SAMPLES = 2048
MAX_SEED = 2**63 - 1
#: Faces per synthesis pass of generate() / interpolate() (every pass has exactly this many).
BATCH = 8

Labels = tuple[int | None, int | None]


@dataclass(frozen=True)
class Latent:
    """What one seed stands for: its ``z`` and its labels (age group, gender)."""

    seed: int
    z: np.ndarray
    age: int
    gender: int


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between vectors ``a`` and ``b`` (exactly ``a`` at 0, ``b`` at 1).

    Falls back to linear interpolation when they are (anti)parallel. Computed in float64,
    returned in ``a``'s dtype.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        out = (1 - t) * a64 + t * b64
    else:
        cos = float(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0))
        omega = np.arccos(cos)
        so = np.sin(omega)
        if so < 1e-8:
            out = (1 - t) * a64 + t * b64
        else:
            out = (np.sin((1 - t) * omega) / so) * a64 + (np.sin(t * omega) / so) * b64
    return out.astype(a.dtype)


def check_truncation(truncation: float) -> float:
    """``truncation`` as a float in (0, 1], else ``ValueError``."""
    t = float(truncation)
    if not 0.0 < t <= 1.0:
        raise ValueError(f"truncation must be in (0, 1], got {truncation!r}")
    return t


def check_labels(labels: Labels | None) -> Labels:
    """``(age_group, gender)`` with each an index or ``None``; ``ValueError`` otherwise."""
    if labels is None:
        return (None, None)
    if len(labels) != 2:
        raise ValueError("labels must be (age_group, gender), each an index or None")
    age, gender = labels
    if age is not None and not (isinstance(age, (int, np.integer)) and 0 <= age < NUM_AGES):
        raise ValueError(f"age group must be an index 0..{NUM_AGES - 1} or None, got {age!r}")
    if gender is not None and not (isinstance(gender, (int, np.integer)) and 0 <= gender < NUM_GENDERS):
        raise ValueError(f"gender must be 0 (male), 1 (female) or None, got {gender!r}")
    return (None if age is None else int(age), None if gender is None else int(gender))


def to_bgr_uint8(img: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) RGB tensor in [0, 1] -> HxWx3 BGR uint8 (rounded, clamped)."""
    return convert.from_tensor(img, np.uint8, rgb_to_bgr=True)


class FaceModel:
    """A FaceGAN generator (eval mode, frozen) with its label distribution and resolution."""

    def __init__(self, generator: torch.nn.Module, metadata: dict[str, str] | None = None, *,
                 precision: str = "fp32", device: str | torch.device = "cpu", config: dict[str, Any] | None = None,
                 backend: str = "torch") -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.metadata = dict(metadata or {})
        self.device = torch.device(device)
        self.G = generator.eval().to(self.device)
        for p in self.G.parameters():
            p.requires_grad_(False)
        self.precision = precision
        if precision == "bf16" and self.device.type == "cpu":
            self.G = self.G.to(memory_format=torch.channels_last)
        dist = self.metadata.get("label_distribution")
        self.labels = LabelDistribution.from_json(dist) if dist else LabelDistribution.uniform()
        self._centers: dict[tuple[int, int], torch.Tensor] = {}
        #: the generator's architecture config (``None``: the one its weights show, found when needed)
        self.config = None if config is None else dict(config)
        self.use_backend(backend)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, **kw: Any) -> "FaceModel":
        """Load a ``faces`` export (``RUN/export.safetensors``) or a raw FaceGAN state dict file."""
        from gantools.checkpoint import read_state_dict
        from gantools.nn import load_arch

        state, meta = read_state_dict(path)
        if meta.get("arch") not in (None, "facegan"):
            raise ValueError(f"{path}: a {meta.get('arch')!r} model, not a faces generator (facegan)")
        config = json.loads(meta["arch_config"]) if "arch_config" in meta else None
        desc = load_arch(state, "facegan", config)
        return cls(desc.model, meta, config=desc.config, **kw)

    def use_backend(self, name: str) -> str:
        """Run the synthesis of :meth:`render_batched` through backend ``name`` (``auto``, ``torch``,
        ``onnxruntime``, ``openvino``; :mod:`gantools_faces.backend`) and return the one resolved.
        ``gantools.backends.BackendUnavailable`` (a ``ValueError``) if it cannot run here."""
        from gantools_faces.backend import Synthesis

        self.synthesis = Synthesis(self, name)
        return self.synthesis.name

    # -- properties ------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return int(self.G.resolution)

    @property
    def z_dim(self) -> int:
        return int(self.G.z_dim)

    # -- latents ---------------------------------------------------------------------------
    def latent(self, seed: int, labels: Labels | None = None) -> Latent:
        """``z`` and labels of ``seed`` (labels not given are drawn from the label distribution)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
        age, gender = check_labels(labels)
        rng = np.random.default_rng(int(seed))
        z = rng.standard_normal(self.z_dim).astype(np.float32)
        age, gender = self.labels.sample(rng, age, gender)
        return Latent(int(seed), z, age, gender)

    def center(self, age: int, gender: int) -> torch.Tensor:
        """Mean ``w`` (w_dim,) of label pair ``(age, gender)`` over fixed latents (cached)."""
        key = (int(age), int(gender))
        if key not in self._centers:
            g = torch.Generator().manual_seed(CENTER_SEED)
            z = torch.randn(CENTER_SAMPLES, self.z_dim, generator=g).to(self.device)
            a = torch.full((CENTER_SAMPLES,), key[0], dtype=torch.long, device=self.device)
            s = torch.full((CENTER_SAMPLES,), key[1], dtype=torch.long, device=self.device)
            with torch.no_grad():
                self._centers[key] = self.G.mapping(z, a, s, update_w_avg=False).float().mean(0)
        return self._centers[key]

    def embed(self, age: int, gender: int) -> torch.Tensor:
        """Label embedding (1, embed_dim) fed to the mapping network."""
        a = torch.tensor([age], device=self.device)
        g = torch.tensor([gender], device=self.device)
        with torch.no_grad():
            return self.G.mapping.embed(a, g).float()

    def w_of(self, z: np.ndarray, embed: torch.Tensor, truncation: float = 1.0,
             center: torch.Tensor | None = None) -> torch.Tensor:
        """``w`` (1, w_dim) for one ``z`` and label embedding, truncated towards ``center``."""
        zt = torch.from_numpy(np.ascontiguousarray(z, np.float32)).reshape(1, -1).to(self.device)
        with torch.no_grad():
            w = self.G.mapping(zt, embed=embed, update_w_avg=False).float()
        if truncation != 1.0:
            c = self.G.mapping.w_avg.float() if center is None else center
            w = c.lerp(w, truncation)
        return w

    def render(self, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Synthesis of ``w`` (N, w_dim) -> (N, 3, R, R) fp32 in [0, 1]."""
        from gantools.device import autocast

        with torch.no_grad(), autocast(self.precision, self.device):
            img = self.G.synthesis(w, noise_mode)
        return img.float().clamp(0, 1)

    def render_batched(self, ws: list[torch.Tensor]) -> list[np.ndarray]:
        """Faces (HxWx3 BGR uint8) of ``ws`` (each (1, w_dim)), :data:`BATCH` per synthesis pass,
        each pass through the backend of :meth:`use_backend` (torch: :meth:`render`).

        Every pass has exactly :data:`BATCH` samples (see the module docstring)."""
        out: list[np.ndarray] = []
        for start in range(0, len(ws), BATCH):
            chunk = ws[start:start + BATCH]
            imgs = self.synthesis(torch.cat(chunk + chunk[-1:] * (BATCH - len(chunk))))
            out += [to_bgr_uint8(imgs[i:i + 1]) for i in range(len(chunk))]
        return out

    def _center_for(self, lat: Latent, center: str) -> torch.Tensor | None:
        if center == "label":
            return self.center(lat.age, lat.gender)
        if center == "global":
            return None
        raise ValueError(f"center must be label or global, not {center!r}")

    # -- public API --------------------------------------------------------------------------
    def generate(self, n: int, seed: int, truncation: float = 1.0, labels: Labels | None = None, *,
                 center: str = "label") -> list[np.ndarray]:
        """``n`` faces (HxWx3 BGR uint8) for seeds ``seed .. seed+n-1`` (see the module docstring)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive number of faces, got {n!r}")
        return self.render_batched([self.seed_w(seed + i, truncation, labels, center) for i in range(n)])

    def seed_w(self, seed: int, truncation: float = 1.0, labels: Labels | None = None,
               center: str = "label") -> torch.Tensor:
        """``w`` (1, w_dim) of ``seed`` (with its labels and truncation)."""
        psi = check_truncation(truncation)
        lat = self.latent(seed, labels)
        c = self._center_for(lat, center) if psi != 1.0 else None
        return self.w_of(lat.z, self.embed(lat.age, lat.gender), psi, c)

    def sample_w(self, n: int, seed: int, labels: Labels | None = None) -> torch.Tensor:
        """Untruncated ``w`` (n, w_dim) of seeds ``seed .. seed+n-1`` with their labels, in one mapping pass."""
        lats = self.latents(n, seed, labels)
        z = torch.from_numpy(np.stack([lat.z for lat in lats])).to(self.device)
        age = torch.tensor([lat.age for lat in lats], device=self.device)
        gender = torch.tensor([lat.gender for lat in lats], device=self.device)
        with torch.no_grad():
            return self.G.mapping(z, age, gender, update_w_avg=False).float()

    def modulation_weights(self) -> list[torch.Tensor]:
        """The affine (style) weight (channels, w_dim) of every modulated conv, in synthesis order."""
        return [conv.affine.weight.detach().float() for conv in self.G.synthesis.convs]

    def latents(self, n: int, seed: int, labels: Labels | None = None) -> list[Latent]:
        """The :class:`Latent` of each face of ``generate(n, seed, labels=labels)``."""
        return [self.latent(seed + i, labels) for i in range(n)]

    def interpolate(self, seed_a: int, seed_b: int, frames: int, truncation: float = 1.0,
                    labels: Labels | None = None, *, center: str = "label") -> list[np.ndarray]:
        """``frames`` faces walking from ``seed_a`` to ``seed_b``: slerp of ``z``, lerp of labels.

        The label embeddings (and truncation centres) of the two seeds are interpolated
        linearly, so a walk between faces of different labels changes age/gender smoothly.
        The first and last frames equal ``generate(1, seed_a)`` and ``generate(1, seed_b)``.
        """
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
            raise ValueError(f"frames must be at least 2, got {frames!r}")
        psi = check_truncation(truncation)
        a, b = self.latent(seed_a, labels), self.latent(seed_b, labels)
        ea, eb = self.embed(a.age, a.gender), self.embed(b.age, b.gender)
        ca = self._center_for(a, center) if psi != 1.0 else None
        cb = self._center_for(b, center) if psi != 1.0 else None
        ws = []
        for k in range(frames):
            t = k / (frames - 1)
            z = slerp(a.z, b.z, t)
            e = torch.lerp(ea, eb, t)
            c = None if ca is None else torch.lerp(ca, cb, t)
            ws.append(self.w_of(z, e, psi, c))
        return self.render_batched(ws)
