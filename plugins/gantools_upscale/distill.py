"""Teacher outputs for ``gantools train upscale --mode distill``, computed once and cached.

A teacher is any upscaler gantools can load: a model name of ``upscale`` (``realesrgan``,
``fidelity``, ...) or a weights file (state dict or ncnn). It upscales degraded low-resolution
patches once; the student's epochs then read the cache (``NNNNNN.npz``: ``lr``, ``target``,
``hr``, RGB uint8), so a slow teacher (Real-ESRGAN x4plus: ~1 s per 64x64 patch on one core)
costs its time once, not every epoch. An x4 teacher serves an x2 student: its output is reduced
to the student's scale with area averaging.

``cache.json`` records what the patches were made with (teacher, its weights' sha256, scale,
patch size, degradation, seed); a cache made with other settings is refused, a partly built one
is completed (each patch is written atomically and is a pure function of its index).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from gantools.plugin import OptionError

CACHE_FORMAT = "gantools-teacher-cache-1"


def load_teacher(spec: str, precision: str = "auto") -> Any:
    """The upscale plugin named by ``spec`` (a model name or a weights file); one-line errors."""
    import gantools

    options = {"weights": spec} if Path(spec).suffix or Path(spec).exists() else {"model": spec}
    try:
        teacher = gantools.load("upscale", precision=precision, **options)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise OptionError(f"--teacher {spec}: {exc}") from None
    if teacher.descriptor.scale < 2:
        raise OptionError(f"--teacher {spec}: not an upscaler (scale {teacher.descriptor.scale})")
    return teacher


def teacher_identity(spec: str, teacher: Any) -> dict[str, Any]:
    """What identifies the teacher in ``cache.json``: the name given, the sha256 of its file(s)
    when it is a file (an ncnn ``.param`` with its ``.bin``), and its scale."""
    path = Path(spec)
    files = [path, path.with_suffix(".bin")] if path.suffix == ".param" else [path]
    digest = hashlib.sha256()
    for f in files if path.is_file() else []:
        digest.update(f.read_bytes())
    return {"teacher": spec, "teacher_sha256": digest.hexdigest() if path.is_file() else "",
            "teacher_scale": teacher.descriptor.scale}


def teacher_output(teacher: Any, lr: np.ndarray, scale: int) -> np.ndarray:
    """Teacher output for ``lr`` (OpenCV BGR), at ``scale`` times its size: area-downscaled when the
    teacher upscales more (x4 teacher, x2 student); ``OptionError`` when it upscales less."""
    out = teacher.process(lr)
    h, w = lr.shape[0] * scale, lr.shape[1] * scale
    if out.shape[:2] != (h, w):
        if out.shape[0] < h:
            raise OptionError(f"--teacher upscales x{out.shape[0] // lr.shape[0]}, below the student's x{scale}")
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    return out


def teacher_target(teacher: Any, lr: np.ndarray, scale: int) -> np.ndarray:
    """:func:`teacher_output` for RGB ``lr`` (the trainer's layout), as RGB."""
    out = teacher_output(teacher, np.ascontiguousarray(lr[:, :, ::-1]), scale)
    return np.ascontiguousarray(out[:, :, ::-1])


class TeacherCache:
    """A folder of (lr, target, hr) patches; :meth:`build` fills it, :meth:`load` reads it."""

    def __init__(self, root: str | Path, settings: dict[str, Any]) -> None:
        self.root = Path(root)
        self.settings = {"format": CACHE_FORMAT, **settings}

    def check(self) -> None:
        """``OptionError`` when the folder holds a cache made with other settings; claims an empty one."""
        meta = self.root / "cache.json"
        if meta.exists():
            found = json.loads(meta.read_text())
            if found != self.settings:
                diff = sorted(k for k in set(found) | set(self.settings) if found.get(k) != self.settings.get(k))
                raise OptionError(f"{self.root}: teacher cache built with other settings ({', '.join(diff)}); "
                                  "use another --teacher-cache folder or delete this one")
        else:
            from gantools.image.atomic import write_atomic

            self.root.mkdir(parents=True, exist_ok=True)
            write_atomic(meta, json.dumps(self.settings, indent=1, sort_keys=True).encode())

    def path(self, index: int) -> Path:
        return self.root / f"{index:06d}.npz"

    def build(self, count: int, make_pair: Callable[[int], tuple[np.ndarray, np.ndarray]], teacher: Any,
              scale: int, log: Callable[[str], None] = print) -> None:
        """Make patches ``0 .. count-1`` that are missing: ``make_pair(i) -> (hr, lr)`` (RGB uint8)."""
        from gantools.image.atomic import write_atomic

        self.check()
        todo = [i for i in range(count) if not self.path(i).exists()]
        if todo:
            log(f"teacher cache {self.root}: computing {len(todo)} of {count} patches")
        for n, i in enumerate(todo, 1):
            hr, lr = make_pair(i)
            buf = io.BytesIO()
            np.savez(buf, lr=lr, target=teacher_target(teacher, lr, scale), hr=hr)
            write_atomic(self.path(i), buf.getvalue())
            if n % 100 == 0 or n == len(todo):
                log(f"teacher cache: {n}/{len(todo)} patches")

    def load(self, count: int) -> list[dict[str, np.ndarray]]:
        """The first ``count`` patches as dicts of arrays."""
        out = []
        for i in range(count):
            with np.load(self.path(i)) as z:
                out.append({k: z[k] for k in ("lr", "target", "hr")})
        return out
