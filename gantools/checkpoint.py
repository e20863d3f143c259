"""Reading weight files: safetensors or torch pickles, unwrapped to a flat state dict.

:func:`read_state_dict` is the one entry point for weight files and :func:`unwrap_state_dict`
the one place where training wrappers are removed (``params_ema`` from BasicSR/Real-ESRGAN,
``g_ema`` from StyleGAN, ``state_dict`` from Lightning, ``module.`` from DataParallel, ...).
Torch files are read with ``weights_only=True``: no code from a checkpoint is ever run (a file that
holds code is refused with the one-liner that converts a trusted one: :func:`convert_trusted`).
Weights with NaN or infinite values are refused. torch is imported only when a function is called.

Plugins read a user's ``--weights`` through :func:`check_weights_file` (cheap, at construction),
:func:`load_weights` and :func:`weights_errors` (at setup): every problem with the file - missing,
a folder, empty, truncated, code, non-finite, another task's export, a network that does not fit -
is one :class:`~gantools.plugin.OptionError` ``"<file>: <problem>"`` (exit code 2 on the CLI).
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from gantools.plugin import OptionError

if TYPE_CHECKING:
    from torch import Tensor

#: Nested dicts that hold the weights, most preferred first (EMA weights beat raw ones).
WRAPPER_KEYS = ("params_ema", "params", "g_ema", "generator", "net_g", "netG", "state_dict", "model")
#: Key prefixes added by wrappers: DataParallel/DDP and torch.compile.
STRIP_PREFIXES = ("module.", "_orig_mod.")
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
#: ``format`` metadata of ``gantools train`` exports starts with this
EXPORT_FORMAT_PREFIX = "gantools-export"
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")


#: torch's weights_only unpickler: the start of its errors, the start of its reason, and reasons that mean code
_WEIGHTS_ONLY = "Weights only load failed"
_UNPICKLER = "WeightsUnpickler error:"
_CODE_MARKERS = ("GLOBAL", "call reduce", "Can only create new object", "Can only build")


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
    text = str(exc)
    if _WEIGHTS_ONLY in text:  # torch's advice to load with weights_only=False is not for us: keep its reason
        text = text.partition(_UNPICKLER)[2] if _UNPICKLER in text else ""
    text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Load ``path`` and return ``(state_dict, metadata)`` with tensors on CPU.

    ``.safetensors`` files give their header metadata; torch files (``.pth``, ``.pt``, ``.ckpt``,
    ``.bin``, ...) give the scalar top-level entries of the saved dict (e.g. ``epoch``) as
    strings. A missing file raises ``FileNotFoundError``; a truncated, corrupt or
    non-checkpoint file raises ``ValueError("<path>: not a readable checkpoint (<reason>)")``; a
    pickle that contains code (or any object other than tensors and plain data) raises a one-line
    ``ValueError`` saying so and how to convert a trusted file; NaN or infinite weights raise
    ``ValueError`` naming the first such tensor.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such checkpoint file", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: not a readable checkpoint (it is a directory)")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: not a readable checkpoint (empty file)")
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
            raw = _torch_load(p, weights_only=True)
            metadata = _scalar_metadata(raw)
        state_dict = unwrap_state_dict(raw)
    except Exception as exc:  # every loader failure becomes one clear line
        if _holds_code(exc):
            raise ValueError(
                f"{p}: contains pickled code (or Python objects other than tensors), so it will not be loaded; if you "
                f"trust its source, convert it once to safetensors: {_convert_command(p)}"
            ) from None
        raise ValueError(f"{p}: not a readable checkpoint ({_short(exc)})") from exc
    bad = nonfinite_tensor(state_dict)
    if bad is not None:
        raise ValueError(f"{p}: weights hold NaN or infinite values (first in {bad!r}): the file is damaged "
                         "or its training diverged")
    return state_dict, metadata


def _torch_load(path: Path, *, weights_only: bool) -> Any:
    import torch

    with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says it all
        warnings.simplefilter("ignore")
        return torch.load(str(path), map_location="cpu", weights_only=weights_only)


def _holds_code(exc: BaseException) -> bool:
    """Whether torch's ``weights_only`` unpickler refused a global, a call or an object it may not build."""
    import pickle

    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) and _WEIGHTS_ONLY in text and any(m in text for m in _CODE_MARKERS)


def _convert_command(path: Path) -> str:
    """The shell one-liner that converts ``path`` with :func:`convert_trusted`."""
    call = f"convert_trusted({str(path)!r}, {str(path.with_suffix('.safetensors'))!r})"
    return f'python -c "from gantools.checkpoint import convert_trusted; {call}"'


def convert_trusted(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Convert a TRUSTED torch pickle to ``dest`` (safetensors): runs the pickle's code, so only
    for files from a source you trust. The state dict is unwrapped (:func:`unwrap_state_dict`),
    scalar top-level entries become metadata; returns ``dest``."""
    from safetensors.torch import save_file

    raw = _torch_load(Path(source), weights_only=False)
    state = {k: v.detach().clone().contiguous() for k, v in unwrap_state_dict(raw).items()}
    save_file(state, str(dest), metadata=_scalar_metadata(raw))
    return Path(dest)


def nonfinite_tensor(state_dict: Mapping[str, Tensor]) -> str | None:
    """Name of the first floating-point tensor with a NaN or infinite value, or ``None``."""
    import torch

    for name, t in state_dict.items():
        if t.is_floating_point() or t.is_complex():
            if not bool(torch.isfinite(t).all()):
                return name
    return None


# -- a plugin's --weights ----------------------------------------------------------------------
def _named(path: str | os.PathLike, exc: BaseException) -> str:
    """``"<path>: <problem>"`` for ``exc``, the path shown once."""
    shown = os.fspath(path)
    if isinstance(exc, FileNotFoundError):
        return f"{shown}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{shown}: is a directory, not a weights file"
    text = " ".join(str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).split())
    text = text or type(exc).__name__
    for prefix in (shown, str(Path(shown))):
        if text.startswith(f"{prefix}: "):
            return text
    return f"{shown}: {text}"


@contextlib.contextmanager
def weights_errors(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, a failure to read ``path`` or build its network (``OSError``, ``ValueError``,
    ``KeyError``, ``TypeError``) becomes one :class:`OptionError` ``"<path>: <problem>"``."""
    try:
        yield
    except OptionError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OptionError(_named(path, exc)) from None


def check_weights_file(path: str | os.PathLike) -> None:
    """Cheap check of a ``--weights`` file (nothing is read): ``OptionError`` when it is missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise OptionError(f"{os.fspath(path)}: no such file")
    if p.is_dir():
        raise OptionError(f"{os.fspath(path)}: is a directory, not a weights file")


def peek_metadata(path: str | os.PathLike) -> dict[str, str] | None:
    """The safetensors header metadata of ``path`` (tensors are not read), ``None`` for other files."""
    try:
        from safetensors import safe_open

        with safe_open(os.fspath(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # noqa: BLE001 - not a (readable) safetensors file: read_state_dict will say why
        return None


def check_task(path: str | os.PathLike, metadata: Mapping[str, str] | None, task: str, what: str = "") -> None:
    """Refuse a gantools export of another task (``OptionError`` naming the file, its task and plugin)."""
    if not metadata or not metadata.get("format", "").startswith(EXPORT_FORMAT_PREFIX):
        return
    found = metadata.get("task", "?")
    if found != task:
        raise OptionError(
            f"{os.fspath(path)}: a {found!r} model (exported by `gantools train {found}`), not "
            f"{what or f'a {task!r} model'}; run it with its own plugin (gantools run {found})"
        )


def load_weights(path: str | os.PathLike, task: str, what: str = "") -> tuple[dict[str, Tensor], dict[str, str]]:
    """:func:`read_state_dict` for plugin ``task``: every problem, and a gantools export of another
    task, is one :class:`OptionError` ``"<path>: <problem>"``."""
    with weights_errors(path):
        check_weights_file(path)
        state, meta = read_state_dict(path)
        check_task(path, meta, task, what)
    return state, meta


__all__ = [
    "STRIP_PREFIXES", "WRAPPER_KEYS", "check_task", "check_weights_file", "convert_trusted", "load_weights",
    "nonfinite_tensor", "peek_metadata", "read_state_dict", "unwrap_state_dict", "weights_errors",
]
