"""Reading weight files: safetensors or torch pickles, unwrapped to a flat state dict.

:func:`read_state_dict` is the one entry point for weight files and :func:`unwrap_state_dict`
the one place where training wrappers are removed (``params_ema`` from BasicSR/Real-ESRGAN,
``g_ema`` from StyleGAN, ``state_dict`` from Lightning, ``module.`` from DataParallel, ...).
Torch files are read with ``weights_only=True``: no code from a checkpoint is ever run. torch is
imported only when a function is called.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from torch import Tensor

#: Nested dicts that hold the weights, most preferred first (EMA weights beat raw ones).
WRAPPER_KEYS = ("params_ema", "params", "g_ema", "generator", "net_g", "netG", "state_dict", "model")
#: Key prefixes added by wrappers: DataParallel/DDP and torch.compile.
STRIP_PREFIXES = ("module.", "_orig_mod.")
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def unwrap_state_dict(obj: Any) -> dict[str, Tensor]:
    """The flat ``{name: tensor}`` state dict inside a loaded checkpoint object.

    Descends into the first of :data:`WRAPPER_KEYS` present while the mapping is not already
    all tensors, keeps tensor values only, and strips :data:`STRIP_PREFIXES` from key names.
    A flat state dict comes back unchanged (as a new dict). Raises ``ValueError`` when no
    tensors are found.
    """
    while isinstance(obj, Mapping):
        if obj and all(_is_tensor(v) for v in obj.values()):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a dict of tensors, found {type(obj).__name__}")
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        if not (isinstance(key, str) and _is_tensor(value)):
            continue
        changed = True
        while changed:
            changed = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    if not out:
        keys = ", ".join(map(str, list(obj)[:5])) or "empty"
        raise ValueError(f"no tensors found (top-level keys: {keys})")
    return out


def _scalar_metadata(obj: Any) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): str(v) for k, v in obj.items() if isinstance(v, (str, int, float, bool))}


def _sniff_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: 8-byte little-endian header length, then a JSON object
    return len(head) == 9 and head[8:9] == b"{"


def _short(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Load ``path`` and return ``(state_dict, metadata)`` with tensors on CPU.

    ``.safetensors`` files give their header metadata; torch files (``.pth``, ``.pt``, ``.ckpt``,
    ``.bin``, ...) give the scalar top-level entries of the saved dict (e.g. ``epoch``) as
    strings. A missing file raises ``FileNotFoundError``; a truncated, corrupt or
    non-checkpoint file raises ``ValueError("<path>: not a readable checkpoint (<reason>)")``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such checkpoint file", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: not a readable checkpoint (it is a directory)")
    try:
        suffix = p.suffix.lower()
        if suffix in SAFETENSORS_SUFFIXES or (suffix not in TORCH_SUFFIXES and _sniff_safetensors(p)):
            from safetensors import safe_open
            from safetensors.torch import load_file

            tensors = load_file(str(p), device="cpu")
            with safe_open(str(p), framework="pt", device="cpu") as fh:
                metadata = dict(fh.metadata() or {})
            raw: Any = tensors
        else:
            import torch

            raw = torch.load(str(p), map_location="cpu", weights_only=True)
            metadata = _scalar_metadata(raw)
        state_dict = unwrap_state_dict(raw)
    except Exception as exc:  # every loader failure becomes one clear line
        raise ValueError(f"{p}: not a readable checkpoint ({_short(exc)})") from exc
    return state_dict, metadata


__all__ = ["STRIP_PREFIXES", "WRAPPER_KEYS", "read_state_dict", "unwrap_state_dict"]
