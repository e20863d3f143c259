"""Training images from folders (recursive) or zip shards, decoded once and cached in memory.

Sources yield RGB ``uint8`` arrays (HxWx3). Non-image files are skipped and counted; so are image
files that cannot be used - empty, not a PNG/JPEG/WebP/TIFF/BMP, corrupt, or with more pixels in
their header than ``max_pixels`` (the same header check and limit as ``gantools run``, made before
anything is decoded, so a decompression bomb costs nothing; the limit is the training run's
``--max-pixels``, :func:`pixel_limit`). Images smaller than ``min_side`` are
upscaled on load (reported once, as a count). Batches are built by
pure functions of ``(seed, step)`` in worker threads, ahead of the training loop, so that a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from gantools.image import formats
from gantools.image.formats import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    import torch

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


class DataError(ValueError):
    """A data folder that cannot be trained on (message names the path)."""


#: the pixel limit an :class:`ImageSet` applies by default (``None``: no limit)
_PIXEL_LIMIT: ContextVar[int | None] = ContextVar("gantools_train_max_pixels", default=DEFAULT_MAX_PIXELS)


@contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Within the block, an :class:`ImageSet` made without ``max_pixels`` refuses images above
    ``max_pixels`` pixels (``None`` or 0: no limit). The engine wraps a task's ``setup_data`` in
    it with the run's ``--max-pixels``, so every task's data follows the flag."""
    token = _PIXEL_LIMIT.set(max_pixels or None)
    try:
        yield
    finally:
        _PIXEL_LIMIT.reset(token)


@dataclass
class Item:
    """Where one image lives: a file, or a member of a zip archive."""

    path: str
    member: str | None = None

    @property
    def name(self) -> str:
        return self.member or Path(self.path).name

    def read_bytes(self) -> bytes:
        if self.member is None:
            return Path(self.path).read_bytes()
        return _open_zip(self.path).read(self.member)


_zips = threading.local()


def _open_zip(path: str) -> zipfile.ZipFile:
    """One open handle per zip archive and thread (reopening costs far more than reading)."""
    cache = getattr(_zips, "handles", None)
    if cache is None:
        cache = _zips.handles = {}
    if path not in cache:
        cache[path] = zipfile.ZipFile(path)
    return cache[path]


@dataclass
class ScanReport:
    """What a scan found: images, and how many files were skipped or fixed."""

    items: list[Item] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan(paths: list[str | Path], *, exclude: Callable[[str], bool] | None = None) -> ScanReport:
    """List images under ``paths`` (files, folders searched recursively, ``.zip`` shards).

    Order is deterministic (sorted). ``exclude(name)`` drops matching names (e.g. a held-out set).
    """
    report = ScanReport()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            zips = [f for f in files if f.suffix.lower() == ".zip"]
            for f in files:
                if f.suffix.lower() in IMAGE_EXTS:
                    report.items.append(Item(str(f)))
                elif f.suffix.lower() != ".zip" and not f.name.startswith("."):
                    report.skipped.append(str(f))
            for z in zips:
                _scan_zip(z, report)
        elif p.suffix.lower() == ".zip":
            _scan_zip(p, report)
        elif p.suffix.lower() in IMAGE_EXTS:
            report.items.append(Item(str(p)))
        else:
            report.skipped.append(str(p))
    if exclude is not None:
        report.items = [it for it in report.items if not exclude(it.name)]
    return report


def _scan_zip(path: Path, report: ScanReport) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = sorted(n for n in zf.namelist() if not n.endswith("/"))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc})") from None
    for n in names:
        if Path(n).suffix.lower() in IMAGE_EXTS:
            report.items.append(Item(str(path), n))
        else:
            report.skipped.append(f"{path}:{n}")


def header_pixels(data: bytes) -> int | None:
    """Width x height from the header of a supported image, or ``None`` (empty, unknown format or
    unreadable header). Nothing is decoded."""
    fmt = formats.sniff(data) if data else None
    if fmt is None:
        return None
    try:
        (width, height), *_ = fmt.header(data)
    except Exception:  # noqa: BLE001 - any failure of a header parser means the header is unusable
        return None
    return int(width) * int(height)


def decode_rgb(data: bytes) -> np.ndarray | None:
    """Decode bytes to RGB uint8 (HxWx3); 16-bit is reduced, alpha dropped, gray expanded.

    ``None`` when OpenCV cannot decode ``data`` (empty data included). Check the size first
    (:func:`header_pixels`): this function has no pixel limit.
    """
    import cv2

    from gantools.image.quiet import quiet_libraries

    try:
        with quiet_libraries():  # libpng/libjpeg lines: the file is counted as unreadable instead
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        arr = None
    if arr is None:
        return None
    return np.ascontiguousarray(arr[:, :, ::-1])


class ImageSet:
    """In-memory cache of decoded training images.

    ``transform`` (optional) runs once per image after decoding (e.g. resize faces to 64 px).
    ``min_side``: smaller images are upscaled (Lanczos) so the shorter side equals it, or
    skipped when ``small="skip"`` (for tasks where upscaled images would teach blur).
    ``max_pixels`` (``None``: no limit; default: the run's ``--max-pixels``, :func:`pixel_limit`)
    refuses larger images from their header, before decoding. Files that are empty, of an
    unknown format, corrupt or above ``max_pixels`` are skipped and counted in ``self.bad``
    (those above ``max_pixels`` also in ``self.too_large``); ``DataError`` when none is left.
    """

    def __init__(
        self,
        paths: list[str | Path],
        *,
        min_side: int = 0,
        small: str = "upscale",
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        exclude: Callable[[str], bool] | None = None,
        workers: int = 2,
        log: Callable[[str], None] | None = None,
        max_pixels: int | None | EllipsisType = ...,
    ) -> None:
        import cv2

        if max_pixels is ...:
            max_pixels = _PIXEL_LIMIT.get()
        report = scan(paths, exclude=exclude)
        label = ", ".join(map(str, paths))
        if not report.items:
            extra = f" ({len(report.skipped)} non-image files skipped)" if report.skipped else ""
            raise DataError(f"{label}: no images found{extra}")
        self.skipped = len(report.skipped)
        self.upscaled = 0
        self.too_small = 0
        self.too_large = 0

        def load(item: Item) -> np.ndarray | None:
            try:
                data = item.read_bytes()
            except (OSError, zipfile.BadZipFile):
                return None
            pixels = header_pixels(data)
            if pixels is None:
                return None
            if max_pixels is not None and pixels > max_pixels:
                self.too_large += 1
                return None
            img = decode_rgb(data)
            if img is None:
                return None
            if min_side and min(img.shape[:2]) < min_side and small == "skip":
                self.too_small += 1
                return None
            if min_side and min(img.shape[:2]) < min_side:
                f = min_side / min(img.shape[:2])
                size = (max(min_side, round(img.shape[1] * f)), max(min_side, round(img.shape[0] * f)))
                img = cv2.resize(img, size, interpolation=cv2.INTER_LANCZOS4)
                self.upscaled += 1
            return transform(img) if transform is not None else img

        with cf.ThreadPoolExecutor(max(1, workers)) as pool:
            loaded = list(pool.map(load, report.items, chunksize=64))
        self.images = [im for im in loaded if im is not None]
        self.names = [it.name for it, im in zip(report.items, loaded) if im is not None]
        self.bad = len(loaded) - len(self.images) - self.too_small
        too_large = f"above {max_pixels} pixels (raise the limit with --max-pixels)"
        if not self.images and self.too_large:
            raise DataError(f"{label}: none of the {len(loaded)} image files could be used; {self.too_large} "
                            f"of them are {too_large}")
        if not self.images and self.too_small:
            raise DataError(f"{label}: none of the {len(loaded)} image files could be used; {self.too_small} "
                            f"of them are smaller than {min_side} px")
        if not self.images:
            raise DataError(f"{label}: none of the {len(loaded)} image files could be decoded")
        if log is not None:
            msg = f"{label}: {len(self.images)} images"
            if self.skipped:
                msg += f", {self.skipped} non-image files skipped"
            if self.bad:
                large = f", {self.too_large} of them {too_large}" if self.too_large else ""
                msg += f", {self.bad} unreadable images skipped{large}"
            if self.too_small:
                msg += f", {self.too_small} images smaller than {min_side} px skipped"
            if self.upscaled:
                msg += f", {self.upscaled} images smaller than {min_side} px upscaled"
            log(msg)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.images[i]


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random position (image must be at least that large)."""
    h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return img[y : y + size, x : x + size]


def random_flip_rot(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip and 90-degree rotation (the 8 dihedral variants)."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.rot90(img, int(rng.integers(0, 4)))


def to_batch_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """List of HxWxC uint8 RGB arrays (training data is kept in RGB) -> (N, C, H, W) in [0, 1]."""
    from gantools.tensor.convert import images_to_tensor

    return images_to_tensor(arrays, bgr_to_rgb=False)


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """Independent, reproducible generator for one training step."""
    return np.random.default_rng([seed, step, stream])


class Prefetcher:
    """Runs ``make(step)`` for upcoming steps in worker threads; yields results in order."""

    def __init__(self, make: Callable[[int], dict], start: int, *, workers: int = 2, ahead: int = 4) -> None:
        self.make = make
        self.next = start
        self.pool = cf.ThreadPoolExecutor(max(1, workers), thread_name_prefix="gantools-data")
        self.ahead = ahead
        self.queue: list[cf.Future] = []

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        while len(self.queue) < self.ahead:
            self.queue.append(self.pool.submit(self.make, self.next + len(self.queue)))
        fut = self.queue.pop(0)
        self.next += 1
        return fut.result()

    def close(self) -> None:
        for f in self.queue:
            f.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
