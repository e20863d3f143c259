"""Device, thread and precision policy shared by inference and training.

``auto`` precision means bf16 autocast on CPUs with AMX (where bf16 matrix work is several times
faster than fp32) and fp32 elsewhere. This module imports torch lazily so that the CLI can import
it at start-up.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator


@functools.lru_cache(maxsize=1)
def has_amx() -> bool:
    """True when the CPU advertises AMX bf16 tiles (``GANTOOLS_AMX=0/1`` overrides)."""
    forced = os.environ.get("GANTOOLS_AMX")
    if forced is not None:
        return forced not in {"0", "false", "no"}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
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
        return "bf16" if has_amx() else "fp32"
    return precision


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
