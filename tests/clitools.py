"""Helpers shared by the platform tests: run the CLI, write small images, look at outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, input: bytes | None = None, cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m gantools ARGS`` in a subprocess (bytes in/out, wide terminal)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gantools", *args], input=input, capture_output=True,
        cwd=cwd, env=full_env, timeout=timeout, check=False,
    )


def image(h: int = 12, w: int = 16, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth test image (``channels`` 1 gives ``HxW``)."""
    maxval = np.iinfo(dtype).max
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * (c + 1) + y * (3 - c % 3)) / (w * (c + 1) + h * 3) for c in range(channels)]
    arr = np.rint(np.stack(planes, axis=2) * maxval).astype(dtype)
    return arr[:, :, 0] if channels == 1 else arr


def write(path: str | os.PathLike, img: np.ndarray | None = None) -> Path:
    """Encode ``img`` (default: a 12x16 BGR image) by the path's extension; make parent dirs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = image() if img is None else img
    ok, buf = cv2.imencode(path.suffix if path.suffix.lower() != ".jpg" else ".jpg", img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def read(path: str | os.PathLike) -> np.ndarray:
    data = np.frombuffer(Path(path).read_bytes(), np.uint8)
    out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert out is not None, path
    return out


def files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` as sorted relative POSIX paths (hidden ones included)."""
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def snapshot(root: str | os.PathLike) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``root``."""
    return {rel: (Path(root) / rel).read_bytes() for rel in files(root)}
