"""Latent directions of style-based generators (interpretability): GANSpace PCA and SeFa.

A direction is a unit vector ``v`` of the generator's ``W`` space with a scale ``sigma``, the
standard deviation of mapped latents along ``v``; an edit moves a face's ``w`` by
``amount * sigma * v`` (``amount`` in standard deviations). Two ways to find them:

* ``"pca"`` (GANSpace, Härkönen et al. 2020): the principal components of :data:`SAMPLES`
  mapped latents (seeds ``SAMPLE_SEED ..``), ordered by variance; ``sigma`` is the component's
  standard deviation.
* ``"sefa"`` (SeFa, Shen & Zhou 2021, closed form): the eigenvectors of ``A^T A``, largest
  eigenvalue first, where ``A`` stacks the weights of the affine (style) layers that map ``w``
  to the modulation of every modulated convolution, each row scaled to unit length (as the
  published code does, so per-layer gains do not matter); ``sigma`` is the standard deviation
  of the same sampled latents projected on ``v``.

Signs are fixed so that each vector's largest-magnitude component is positive. :data:`DEFAULT_METHOD`
was chosen by ``bench/directions.py`` (``bench/results/directions.md``). A generator takes part
through :class:`LatentGenerator` (the ``faces`` and ``stylegan`` plugins implement it), so
``gantools generate NAME --directions K`` stays generic. Only numpy is used here, imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # numpy is imported where it is used: `gantools --help` reads METHODS without it
    import numpy as np

METHODS = ("pca", "sefa")
DEFAULT_METHOD = "sefa"
#: Mapped latents used for PCA and for the scales: seeds SAMPLE_SEED .. SAMPLE_SEED + SAMPLES - 1.
SAMPLES = 4096
SAMPLE_SEED = 10_000
#: Columns of a directions sheet: standard deviations around the seed's ``w``.
AMOUNTS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


@runtime_checkable
class LatentGenerator(Protocol):
    """A generator with a ``W`` space that can be sampled, edited and rendered."""

    def sample_w(self, n: int, seed: int) -> np.ndarray:
        """``(n, w_dim)`` float32: the untruncated mapped ``w`` of seeds ``seed .. seed + n - 1``."""
        ...

    def seed_w(self, seed: int) -> np.ndarray:
        """``(w_dim,)`` float32: the ``w`` that ``generate(1, seed)`` renders (options applied)."""
        ...

    def render_w(self, ws: np.ndarray) -> list[np.ndarray]:
        """Images (``HxWx3`` BGR uint8) of the rows of ``ws`` ``(n, w_dim)``; for the ``seed_w`` of
        seeds ``s .. s + n - 1`` they equal ``generate(n, s)`` exactly."""
        ...

    def modulation_weights(self) -> list[np.ndarray]:
        """The ``(channels, w_dim)`` weight of the affine layer of every modulated convolution."""
        ...


@dataclass(frozen=True)
class Directions:
    """``vectors`` ``(k, w_dim)`` orthonormal rows, strongest first; ``scales`` ``(k,)`` their sigmas."""

    method: str
    vectors: np.ndarray
    scales: np.ndarray

    def offset(self, index: int, amount: float) -> np.ndarray:
        """``(w_dim,)`` float32 shift of ``amount`` standard deviations along direction ``index``."""
        import numpy as np
        return (float(amount) * self.scales[index] * self.vectors[index]).astype(np.float32)


def _signed(vectors: np.ndarray) -> np.ndarray:
    """Rows flipped so that each one's largest-magnitude component is positive."""
    import numpy as np
    top = vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)]
    return vectors * np.where(top < 0, -1.0, 1.0)[:, None]


def _check_k(k: int, w_dim: int) -> None:
    import numpy as np
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= w_dim:
        raise ValueError(f"{k!r} directions: this model has 1 to {w_dim} (its w has {w_dim} dimensions)")


def pca(ws: np.ndarray, k: int) -> Directions:
    """The ``k`` principal components of the samples ``ws`` ``(n, w_dim)`` (GANSpace)."""
    import numpy as np
    w = np.asarray(ws, np.float64)
    _check_k(k, min(w.shape[1], len(w) - 1))
    _, s, vt = np.linalg.svd(w - w.mean(0), full_matrices=False)
    return Directions("pca", _signed(vt[:k]), s[:k] / np.sqrt(len(w) - 1))


def sefa(weights: Sequence[np.ndarray], ws: np.ndarray, k: int) -> Directions:
    """The ``k`` top eigenvectors of ``A^T A`` (``A``: the stacked, row-normalised ``weights``), SeFa;
    scales from the samples ``ws`` ``(n, w_dim)``."""
    import numpy as np
    a = np.concatenate([np.asarray(x, np.float64) for x in weights])
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    _check_k(k, a.shape[1])
    _, vecs = np.linalg.eigh(a.T @ a)  # ascending eigenvalues
    vectors = _signed(vecs[:, ::-1][:, :k].T)
    return Directions("sefa", vectors, (np.asarray(ws, np.float64) @ vectors.T).std(0, ddof=1))


def find_directions(gen: LatentGenerator, k: int, method: str = DEFAULT_METHOD,
                    samples: int = SAMPLES) -> Directions:
    """The ``k`` strongest directions of ``gen`` by ``method`` (``ValueError`` for a bad ``k`` or method)."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    ws = gen.sample_w(samples, SAMPLE_SEED)
    return pca(ws, k) if method == "pca" else sefa(gen.modulation_weights(), ws, k)


def sheet(gen: LatentGenerator, seed: int, directions: Directions,
          amounts: Sequence[float] = AMOUNTS) -> list[np.ndarray]:
    """Images row by row: one row per direction, one column per amount, around ``seed``'s ``w``."""
    import numpy as np
    w = gen.seed_w(seed)
    rows = [w + directions.offset(i, a) for i in range(len(directions.vectors)) for a in amounts]
    return gen.render_w(np.stack(rows).astype(np.float32))


__all__ = ["AMOUNTS", "DEFAULT_METHOD", "Directions", "LatentGenerator", "METHODS", "SAMPLES", "SAMPLE_SEED",
           "find_directions", "pca", "sefa", "sheet"]
