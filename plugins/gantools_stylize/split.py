"""The fixed train / held-out split of stylize content photos, shared by training and ``bench/style.py``.

Rule (by file name only, so it needs no listing and cannot drift between the two):

* a photo is held out when ``zlib.crc32(name) % every == 0`` (``name``: the file name, e.g.
  ``100075.jpg``; ``every`` is ``--holdout``, default 5, i.e. about 1 in 5 of every folder), but
  only when the content set has at least :data:`MIN_SET` photos (a few photos of one's own are
  all trained on);
* the SR benchmark images (Set5 and Set14, :data:`BENCH_NAMES`) are always held out.

On ``../shared/data`` this holds out 56 of monet2photo/photo, 16 of T91, 44 of BSD200 and all 19 of
Set5 + Set14 (135 photos: landscapes, people, animals, buildings, close-ups, text).
``--holdout 0`` trains on every photo, Set5/Set14 included (the shipped styles of 2026-12-01 were trained that way, so
for them only Set5 + Set14 are unseen).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

#: default ``every``: one photo in this many is held out
HOLDOUT_EVERY = 5
#: content sets smaller than this hold nothing out by the hash rule
MIN_SET = 20
#: Set5 + Set14 (``../shared/data/sr/bench``): never trained on
BENCH_NAMES = frozenset(
    f"{n}.png" for n in ("baby", "bird", "butterfly", "head", "woman", "baboon", "barbara", "bridge", "coastguard",
                         "comic", "face", "flowers", "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra")
)


def hashed_out(name: str, every: int = HOLDOUT_EVERY) -> bool:
    """True when the hash rule holds ``name`` out (never for ``every < 2``)."""
    return every > 1 and zlib.crc32(name.encode("utf-8")) % every == 0


def held_out_names(names: Iterable[str], every: int = HOLDOUT_EVERY) -> set[str]:
    """The names of a content set (file names, all ``--content`` folders together) that training
    must not see: :data:`BENCH_NAMES`, plus the hash rule's when the set has ``>= MIN_SET`` names;
    none at all for ``every < 2``."""
    names = list(names)
    if every < 2:
        return set()
    held = {n for n in names if n in BENCH_NAMES}
    if len(names) >= MIN_SET:
        held |= {n for n in names if hashed_out(n, every)}
    return held


def split(names: Iterable[str], every: int = HOLDOUT_EVERY) -> tuple[list[str], list[str]]:
    """``(train, held_out)`` of ``names``, each in the given order."""
    names = list(names)
    held = held_out_names(names, every)
    return [n for n in names if n not in held], [n for n in names if n in held]


__all__ = ["BENCH_NAMES", "HOLDOUT_EVERY", "MIN_SET", "held_out_names", "hashed_out", "split"]
