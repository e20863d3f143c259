"""Shipped weights: ``weights/manifest.toml`` lists every model file gantools ships.

Each ``[[model]]`` entry names ``file`` (in the weights folder), ``task``, ``name``, ``arch``,
``sha256``, ``dataset``, ``terms``, ``command`` and task keys such as ``scale``. Loading a shipped
model checks the file's sha256 against the manifest, so a damaged download is caught.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    known = {"file", "task", "name", "arch", "sha256", "dataset", "terms", "command"}
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
