"""Shipped weights: ``weights/manifest.toml`` lists every model file gantools ships.

Each ``[[model]]`` entry names ``file`` (in the weights folder), ``task``, ``name``, ``arch``,
``sha256``, ``dataset``, ``terms``, ``command`` and task keys such as ``scale``. Loading a shipped
model checks the file's sha256 against the manifest, so a damaged download is caught.

A model may also have a **training state** (``state``, ``state_sha256``): the file
``state/<stem>.d.safetensors`` beside the weights, holding what continuing its adversarial
training needs (the discriminator, the run's options; see :mod:`gantools.train.shipped`). The
state folder lives in a source checkout's ``weights/`` only: it is not packed into the wheel.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class ShippedModel:
    """One manifest entry."""

    file: str
    task: str
    name: str
    arch: str
    sha256: str
    dataset: str = ""
    terms: str = ""
    command: str = ""
    state: str = ""  # training state, relative to the weights folder ("" = none shipped)
    state_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return weights_dir() / self.file

    @property
    def scale(self) -> int | None:
        return self.extra.get("scale")

    def verify(self) -> Path:
        """The file's path after checking it exists and matches its sha256."""
        p = self.path
        if not p.exists():
            raise FileNotFoundError(f"{p}: shipped weights missing (reinstall gantools)")
        digest = sha256_file(p)
        if digest != self.sha256:
            raise ValueError(f"{p}: sha256 {digest[:12]}... does not match the manifest ({self.sha256[:12]}...)")
        return p

    @property
    def state_path(self) -> Path | None:
        """The training-state file, or None when the manifest lists none for this model."""
        return weights_dir() / self.state if self.state else None

    def verify_state(self) -> Path | None:
        """The training state's path after checking its sha256; None when it is not shipped or not installed.

        ``ValueError`` when the file is there but does not match the manifest.
        """
        p = self.state_path
        if p is None or not p.exists():
            return None
        digest = sha256_file(p)
        if digest != self.state_sha256:
            raise ValueError(f"{p}: sha256 {digest[:12]}... does not match the manifest ({self.state_sha256[:12]}...)")
        return p


#: folder of training-state files inside the weights folder (not in the wheel)
STATE_DIR = "state"


def state_file(file: str) -> str:
    """Manifest path of the training state of weights ``file``: ``state/<stem>.d.safetensors``."""
    return f"{STATE_DIR}/{Path(file).stem}.d.safetensors"


def weights_dir() -> Path:
    """Folder of the shipped weights (``weights/`` in a checkout, ``gantools/weights_data`` installed)."""
    import gantools.weights_data as pkg

    return Path(next(iter(pkg.__path__)))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def manifest() -> tuple[ShippedModel, ...]:
    """All manifest entries (empty when there is no manifest)."""
    path = weights_dir() / "manifest.toml"
    if not path.exists():
        return ()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    known = {"file", "task", "name", "arch", "sha256", "dataset", "terms", "command", "state", "state_sha256"}
    return tuple(
        ShippedModel(**{k: v for k, v in m.items() if k in known}, extra={k: v for k, v in m.items() if k not in known})
        for m in data.get("model", [])
    )


def shipped(task: str, **match: Any) -> list[ShippedModel]:
    """Entries of ``task`` whose fields (or extra keys such as ``scale``) equal ``match``."""
    out = []
    for m in manifest():
        if m.task != task:
            continue
        if all((getattr(m, k) if k in m.__dataclass_fields__ and k != "extra" else m.extra.get(k)) == v
               for k, v in match.items()):
            out.append(m)
    return out


def find(task: str, ref: str, match: dict[str, Any] | None = None, keys: Iterable[str] = ()) -> ShippedModel | None:
    """The shipped ``task`` model that ``ref`` names: a path to its weights file, its name or file name.

    ``match`` (e.g. ``{"scale": 2}``) picks among models shipped under one name (and is otherwise
    ignored). None when ``ref`` names no shipped model of ``task``; ``ValueError`` when it names
    several, naming the entry keys among ``keys`` (the task's options) that tell them apart.
    """
    match, keys = match or {}, set(keys)
    path = Path(ref)
    if path.is_file():
        here = path.resolve()
        return next((m for m in manifest() if m.task == task and m.path.resolve() == here), None)
    found = [m for m in manifest() if m.task == task and ref in (m.name, m.file)]
    if len(found) > 1:
        found = [m for m in found if all(m.extra.get(k, v) == v for k, v in match.items())] or found
    if len(found) > 1:
        differ = sorted({k for m in found for k in m.extra
                         if k in keys and len({str(o.extra.get(k)) for o in found}) > 1})
        which = ", ".join(f"{m.file} ({' '.join(f'{k} {m.extra.get(k)}' for k in differ)})" for m in found)
        flags = " or ".join("--" + k.replace("_", "-") for k in differ) or "the file"
        raise ValueError(f"{task} model {ref!r} is shipped several times: {which}; choose with {flags}")
    return found[0] if found else None
