"""Reading published StyleGAN2 files without running any code from them.

* rosinality ``stylegan2-pytorch`` ``.pt``: ``{"g_ema": ..., "latent_avg": ...}`` (converted TF
  models) or training checkpoints (``g``, ``d``, ``g_ema``, ``args``, optimiser states), read with
  ``torch.load(weights_only=True)``; ``args`` is an ``argparse.Namespace``, which is allowed as a
  safe global (it only holds attribute values; building one runs no code of the file).
* NVlabs ``stylegan2-ada-pytorch`` network pickles (``.pkl``): :class:`NetworkUnpickler`, a
  restricted ``pickle.Unpickler`` that rebuilds tensors, plain containers and numpy scalars,
  turns every ``torch_utils.persistence`` record into a :class:`Record` (class name + the stored
  attribute dict, never its source code) and refuses every other global with one line.
* a flat state dict in either layout (``.pt`` / ``.pth`` / ``.safetensors``), e.g. a converted file.

:func:`read_generator` returns the ``G_ema`` / ``g_ema`` state dict in either published layout
(:mod:`gantools.nn.stylegan2` renames it), the config the state dict cannot show (``conv_clamp``)
and whether the file holds the truncation centre (``w_avg`` / ``latent_avg``).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


class Refused(pickle.UnpicklingError):
    """The pickle names a global (code) that a network pickle has no reason to hold."""


@dataclass
class Record:
    """A ``torch_utils.persistence`` object of an NVlabs pickle: its class name and stored ``__dict__``."""

    class_name: str
    state: dict = field(default_factory=dict)


def _persistent(meta: Any) -> Record:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise Refused("unsupported torch_utils.persistence record (only persistent classes are read)")
    return Record(str(meta.get("class_name")), meta["state"])


def _storage(data: Any) -> Any:
    if not isinstance(data, bytes):
        raise Refused("tensor storage is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _tensor(storage: Any, offset: int, size: tuple, stride: tuple, requires_grad: bool = False, *_: Any) -> torch.Tensor:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise Refused("tensor data is not a storage")
    untyped = storage._untyped_storage if isinstance(storage, torch.TypedStorage) else storage
    t = torch.empty((0,), dtype=storage.dtype if isinstance(storage, torch.TypedStorage) else torch.uint8)
    return t.set_(untyped, int(offset), tuple(size), tuple(stride))


def _parameter(data: Any, requires_grad: bool = False, *_: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise Refused("parameter data is not a tensor")
    return data


def _dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dt = np.dtype(obj) if isinstance(obj, str) else None
    if dt is None or dt.hasobject:
        raise Refused(f"numpy dtype {obj!r} is not a plain numeric type")
    return dt


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise Refused("numpy scalar that is not plain numeric data")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise Refused("numpy array of a subclass")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


#: The only globals an NVlabs network pickle may name, each mapped to a function that builds data only.
SAFE_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): dict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
    ("torch.storage", "_load_from_bytes"): _storage,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_reconstruct"): _array for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
}


class NetworkUnpickler(pickle.Unpickler):
    """Unpickler for NVlabs network pickles: :data:`SAFE_GLOBALS` only, everything else :class:`Refused`."""

    def find_class(self, module: str, name: str) -> Any:
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise Refused(f"it names {module}.{name}, which a network pickle does not need (nothing was run)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("it uses persistent ids, which a network pickle does not")


def _line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "truncated or damaged")
    return text if len(text) <= 160 else text[:157] + "..."


def flatten(record: Record, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a persistent module record: its parameters and persistent buffers, recursively."""
    state, out = record.state, {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if isinstance(value, torch.Tensor) and name not in skip:
                out[prefix + name] = value.detach()
    for name, sub in (state.get("_modules") or {}).items():
        if isinstance(sub, Record):
            out.update(flatten(sub, f"{prefix}{name}."))
        elif sub is not None:
            raise ValueError(f"module {prefix}{name} is a {type(sub).__name__}, not a network record")
    return out


def _find(record: Record, *path: str) -> Record | None:
    for name in path:
        record = (record.state.get("_modules") or {}).get(name)
        if not isinstance(record, Record):
            return None
    return record


@dataclass
class Loaded:
    """A generator read from a file: state dict (a published layout), extra config, truncation centre known."""

    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    has_w_avg: bool


def read_pkl(path: Path) -> Loaded:
    """The ``G_ema`` of an NVlabs network pickle (see :class:`NetworkUnpickler`)."""
    with open(path, "rb") as fh:
        try:
            data = NetworkUnpickler(fh).load()
        except Refused as exc:
            raise ValueError(f"refused: {exc}") from None
        except (EOFError, pickle.UnpicklingError, RuntimeError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a readable network pickle ({type(exc).__name__}: {_line(exc)})") from None
    g = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(g, Record):
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"no G_ema network in this pickle (found: {keys})")
    layer = _find(g, "synthesis", "b4", "conv1")
    clamp = None if layer is None else layer.state.get("conv_clamp")
    return Loaded(flatten(g), {"conv_clamp": None if clamp is None else float(clamp)}, True)


def read_torch(path: Path) -> Loaded:
    """A rosinality ``.pt`` (``g_ema`` + ``latent_avg``, or a training checkpoint) or a flat state dict."""
    from gantools.checkpoint import read_state_dict, unwrap_state_dict

    if path.suffix.lower() in (".safetensors", ".sft"):
        state, _ = read_state_dict(path)
        return Loaded(state, {}, "mapping.w_avg" in state or "latent_avg" in state)
    with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
        warnings.simplefilter("ignore")
        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            reason = str(exc).partition("WeightsUnpickler error:")[2].strip().splitlines()
            raise ValueError(f"refused: it holds objects other than tensors and plain data ({reason[0] if reason else 'code'})") from None
        except (EOFError, RuntimeError) as exc:
            raise ValueError(f"not a readable checkpoint ({type(exc).__name__}: {_line(exc)})") from None
    latent_avg = raw.get("latent_avg") if isinstance(raw, dict) else None
    state = unwrap_state_dict(raw["g_ema"] if isinstance(raw, dict) and isinstance(raw.get("g_ema"), dict) else raw)
    if isinstance(latent_avg, torch.Tensor):
        state["latent_avg"] = latent_avg
    return Loaded(state, {}, "latent_avg" in state or "mapping.w_avg" in state)


def read_generator(path: str | os.PathLike) -> Loaded:
    """The generator in ``path`` (``.pkl``: NVlabs; anything else: torch / safetensors). ``ValueError``
    (one line, without the path) for a file that is refused, unreadable or holds non-finite weights."""
    from gantools.checkpoint import nonfinite_tensor

    p = Path(path)
    if p.stat().st_size == 0:
        raise ValueError("empty file")
    loaded = read_pkl(p) if p.suffix.lower() == ".pkl" else read_torch(p)
    bad = nonfinite_tensor(loaded.state)
    if bad is not None:
        raise ValueError(f"weights hold NaN or infinite values (first in {bad!r})")
    return loaded


__all__ = ["Loaded", "NetworkUnpickler", "Record", "Refused", "SAFE_GLOBALS", "flatten", "read_generator"]
