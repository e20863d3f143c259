"""Device, thread and precision policy shared by inference and training.

``auto`` precision means bf16 autocast on CPUs with native bf16 matrix instructions (Intel AMX or
AVX512-BF16, e.g. AMD Zen 4, where bf16 convolutions run about 2x (AVX512-BF16) to several times
(AMX) faster than fp32, see ``bench/results/train_speed.md``) and fp32 elsewhere. This module imports torch lazily so that the CLI can import
it at start-up.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator

#: /proc/cpuinfo flags of CPUs whose bf16 convolutions beat fp32
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.lru_cache(maxsize=1)
def has_bf16_cpu() -> bool:
    """True when the CPU advertises AMX bf16 tiles or AVX512-BF16 (``GANTOOLS_BF16=0/1`` overrides)."""
    forced = os.environ.get("GANTOOLS_BF16")
    if forced is not None:
        return forced not in {"0", "false", "no"}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return not BF16_FLAGS.isdisjoint(line.split())
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: str = "cpu", *, allow_bf16: bool = True, sixteen_bit: bool = False) -> str:
    """Turn ``auto``/``fp32``/``bf16`` into the precision actually used: ``fp32`` or ``bf16``.

    16-bit input always runs in fp32 (bf16 has 8 bits of mantissa: it would lose the extra depth).
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    if sixteen_bit or not allow_bf16:
        return "fp32"
    if precision == "auto":
        if device.startswith("cuda"):
            return "bf16"
        return "bf16" if has_bf16_cpu() else "fp32"
    return precision


_DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"


def check_device(device: str) -> None:
    """``ValueError`` (naming ``--device``) unless ``device`` is one of :data:`_DEVICE_FORMS` and
    present on this machine. The one device check of every plugin, run when it is created, so
    a bad value stops a run before any work; torch is imported only for ``cuda``/``mps``."""
    kind, _, index = str(device).partition(":")
    if kind in ("auto", "cpu") and not index:
        return
    if kind not in ("cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"option --device: {device!r} is not one of {_DEVICE_FORMS}")
    import torch

    if kind == "mps":
        present = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        where = "MPS is not available on this machine"
    else:
        present = torch.cuda.is_available() and int(index or 0) < torch.cuda.device_count()
        where = "CUDA is not available on this machine" if not torch.cuda.is_available() else (
            f"there are {torch.cuda.device_count()} CUDA devices")
    if not present:
        raise ValueError(f"option --device: {device} cannot be used: {where} (use --device cpu or auto)")


def torch_device(device: str = "cpu") -> Any:
    """A ``torch.device``; ``auto`` picks CUDA when available."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@contextlib.contextmanager
def autocast(precision: str, device: Any = "cpu") -> Iterator[None]:
    """Autocast context for a resolved precision (no-op for fp32)."""
    import torch

    dev_type = torch.device(device).type if not isinstance(device, str) else torch.device(device).type
    if precision == "bf16":
        with torch.autocast(dev_type, dtype=torch.bfloat16):
            yield
    else:
        yield


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op threads (``None`` leaves the default)."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(max(1, int(threads)))
