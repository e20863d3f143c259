"""Exported generators: ``export.safetensors`` = EMA weights + metadata describing them.

Metadata keys (all strings): ``format`` ("gantools-export-1"), ``task``, ``arch`` (name in the
``gantools.nn`` registry), ``arch_config`` (JSON), ``command``, ``dataset``, ``steps``,
``images_seen``, ``date`` (UTC ISO), ``options`` (JSON: the run's task options; older exports
lack it), plus task-specific keys (e.g. ``scale``, ``style``).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import torch

FORMAT = "gantools-export-1"


def export_generator(
    path: str | Path,
    model: torch.nn.Module,
    arch: str,
    arch_config: dict[str, Any],
    metadata: dict[str, str],
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model``'s state dict (as ``dtype``) with metadata, atomically."""
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype)
               for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "arch": arch,
        "arch_config": json.dumps(arch_config, sort_keys=True),
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        **{k: str(v) for k, v in metadata.items()},
    }
    return save_safetensors(path, tensors, meta)


def save_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``tensors`` (made contiguous) with string ``metadata`` to ``path`` atomically."""
    from safetensors.torch import save

    from gantools.image.atomic import write_atomic

    path = Path(path)
    write_atomic(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))
    return path


def read_export(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of an export; ``ValueError`` when it is not a gantools export."""
    from gantools.checkpoint import read_state_dict

    state, meta = read_state_dict(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a gantools export (no '{FORMAT}' metadata)")
    return state, meta


def float32_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with its floating-point tensors as float32 (others as they are)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_generator_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights (a gantools export or a third-party checkpoint) into ``model``, strictly."""
    from gantools.checkpoint import read_state_dict

    state, _ = read_state_dict(path)
    try:
        model.load_state_dict(float32_state(state))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"{path}: weights do not fit this architecture ({first})") from None
