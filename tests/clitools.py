"""Helpers shared by the platform tests: run the CLI, write small images, look at outputs.

Test images themselves come from :mod:`imagegen`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from imagegen import gradient

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, input: bytes | None = None, cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m gantools ARGS`` in a subprocess (bytes in/out, wide terminal)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gantools", *args], input=input, capture_output=True,
        cwd=cwd, env=full_env, timeout=timeout, check=False,
    )


def write(path: str | os.PathLike, img: np.ndarray | None = None) -> Path:
    """Encode ``img`` (default: a 12x16 BGR image) by the path's extension; make parent dirs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = gradient() if img is None else img
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
