"""A training run's directory: config, metrics log, sample grids, checkpoints, export.

Layout::

    RUN_DIR/config.json           the run's configuration (written once, checked on resume)
    RUN_DIR/metrics.jsonl         one JSON object per logged step
    RUN_DIR/samples/step00001000.png
    RUN_DIR/checkpoints/ckpt-00001000.pt   (last K kept; written atomically)
    RUN_DIR/export.safetensors    the EMA generator, loadable with --weights

Every file but the metrics log is written with :func:`gantools.image.atomic.write_atomic` (a
temporary file renamed into place; new files get the umask's permissions), so a run stopped at
any moment leaves either the previous or the new checkpoint, never a partial one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gantools.image.atomic import write_atomic


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (message offers an older one when there is one)."""


class RunDir:
    """Files of one training run under ``path`` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ckpt_dir = self.path / "checkpoints"
        self.sample_dir = self.path / "samples"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def export_path(self) -> Path:
        return self.path / "export.safetensors"

    def create(self) -> None:
        """Create the folders; raise ``OSError`` with the path when it is not writable."""
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            self.sample_dir.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OSError(f"{self.path}: cannot write the run directory ({exc.strerror or exc})") from None

    # -- config and metrics -------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        write_atomic(self.config_path, json.dumps(config, indent=2, sort_keys=True).encode())

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            raise CheckpointError(f"{self.path}: no training run here to resume (config.json missing)")
        try:
            config = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"{self.config_path}: cannot resume: not a readable config.json ({exc})") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{self.config_path}: cannot resume: not a config.json (expected a JSON object)")
        return config

    def log_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def save_samples(self, grid_rgb: np.ndarray, step: int) -> Path:
        """Write an RGB uint8 grid as ``samples/stepNNNNNNNN.png``."""
        import cv2

        path = self.sample_dir / f"step{step:08d}.png"
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(grid_rgb[:, :, ::-1]))
        if ok:
            write_atomic(path, buf.tobytes())
        return path

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        """Checkpoints, oldest first."""
        return sorted(self.ckpt_dir.glob("ckpt-*.pt"))

    def save_checkpoint(self, state: dict[str, Any], step: int, keep: int) -> Path:
        import io

        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.ckpt_dir / f"ckpt-{step:08d}.pt"
        write_atomic(path, buf.getvalue())
        for old in self.checkpoints()[:-keep] if keep > 0 else []:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, path: Path | None = None) -> dict[str, Any]:
        """Load ``path`` or the newest checkpoint; a corrupt one raises and names older ones."""
        import torch

        all_ckpts = self.checkpoints()
        if path is None:
            if not all_ckpts:
                raise CheckpointError(f"{self.path}: no checkpoint to resume from")
            path = all_ckpts[-1]
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupted or truncated file
            older = [p for p in all_ckpts if p.name < Path(path).name]
            hint = f"; resume from an older one with --checkpoint {older[-1]}" if older else ""
            raise CheckpointError(f"{path}: checkpoint is corrupt ({type(exc).__name__}){hint}") from None

