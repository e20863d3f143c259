"""Face labels: UTKFace file names, age groups and genders, and the label distribution.

UTKFace names are ``age_gender_race_date.jpg`` (gender 0 male, 1 female). A few names lack a
field (e.g. ``61_1_20170109142408075.jpg`` has no race); :func:`parse_name` returns ``None`` for
any field it cannot read, never guesses, and never raises. Race is not used.

Age groups (index: years): 0: 0-2, 1: 3-9, 2: 10-19, 3: 20-29, 4: 30-39, 5: 40-49, 6: 50-59,
7: 60-69, 8: 70+. ``--age 60`` on the command line means the group that contains 60 (60-69).
Pure Python + numpy: no torch import.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Sequence

import numpy as np

#: Lower bound (years) of each age group; the last group is open-ended.
AGE_BOUNDS = (0, 3, 10, 20, 30, 40, 50, 60, 70)
AGE_GROUPS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
GENDERS = ("male", "female")
NUM_AGES, NUM_GENDERS = len(AGE_GROUPS), len(GENDERS)
#: Label value for "not known" (file name lacks the field).
UNKNOWN = -1
MAX_AGE = 130

_INT = re.compile(r"^\d{1,3}$")


class LabelError(ValueError):
    """An age or gender value that names no group (message lists the accepted values)."""


def age_to_group(age: int) -> int:
    """Index of the age group containing ``age`` years (0..8); ``LabelError`` outside 0..130."""
    if isinstance(age, bool) or not isinstance(age, (int, np.integer)) or not 0 <= age <= MAX_AGE:
        raise LabelError(f"age {age!r} is not a whole number of years from 0 to {MAX_AGE}")
    for i in range(NUM_AGES - 1, -1, -1):
        if age >= AGE_BOUNDS[i]:
            return i
    return 0  # unreachable


def parse_age(value: str | int) -> int:
    """CLI age -> group index: a number of years (``60`` -> 60-69) or a group name (``60-69``, ``70+``)."""
    text = str(value).strip().lower()
    if text in AGE_GROUPS:
        return AGE_GROUPS.index(text)
    if _INT.match(text):
        return age_to_group(int(text))
    raise LabelError(f"unknown age {value!r}: give years (0-{MAX_AGE}, e.g. 60 for 60-69) or a group "
                     f"({', '.join(AGE_GROUPS)})")


def parse_gender(value: str | int) -> int:
    """CLI gender -> index: ``male``/``m``/``0`` -> 0, ``female``/``f``/``1`` -> 1."""
    text = str(value).strip().lower()
    table = {"male": 0, "m": 0, "0": 0, "man": 0, "female": 1, "f": 1, "1": 1, "woman": 1}
    if text in table:
        return table[text]
    raise LabelError(f"unknown gender {value!r} (choose from male, female)")


def parse_name(name: str) -> tuple[int | None, int | None]:
    """``(age_group, gender)`` read from a UTKFace file name; ``None`` for a missing/bad field.

    The age is the first ``_`` field; the gender is the second, but only when the name has at
    least three fields (``age_gender_date`` or ``age_gender_race_date``) and it is 0 or 1.
    Folders in ``name`` are ignored.
    """
    stem = PurePosixPath(name.replace("\\", "/")).name.split(".")[0]
    fields = stem.split("_")
    age: int | None = None
    if fields and _INT.match(fields[0]) and int(fields[0]) <= MAX_AGE:
        age = age_to_group(int(fields[0]))
    gender: int | None = None
    if len(fields) >= 3 and fields[1] in ("0", "1"):
        gender = int(fields[1])
    return age, gender


def label_arrays(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Age-group and gender arrays (int64) for ``names``, :data:`UNKNOWN` where a field is missing."""
    ages = np.full(len(names), UNKNOWN, np.int64)
    genders = np.full(len(names), UNKNOWN, np.int64)
    for i, n in enumerate(names):
        a, g = parse_name(n)
        if a is not None:
            ages[i] = a
        if g is not None:
            genders[i] = g
    return ages, genders


class LabelDistribution:
    """Joint frequencies of (age group, gender) over the training images with both labels known.

    Used to draw labels for unconditional sampling: :meth:`sample` fills the fields that are not
    given from the (conditional) distribution, with one uniform draw from the caller's generator.
    Serialised as JSON ``{"age_groups": [...], "genders": [...], "counts": [[...] x 9]}``.
    """

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, np.float64)
        if counts.shape != (NUM_AGES, NUM_GENDERS) or (counts < 0).any():
            raise ValueError(f"label counts must be a non-negative {NUM_AGES}x{NUM_GENDERS} table")
        self.counts = counts if counts.sum() > 0 else np.ones_like(counts)

    @classmethod
    def from_labels(cls, ages: np.ndarray, genders: np.ndarray) -> "LabelDistribution":
        counts = np.zeros((NUM_AGES, NUM_GENDERS), np.float64)
        known = (ages >= 0) & (genders >= 0)
        np.add.at(counts, (ages[known], genders[known]), 1)
        return cls(counts)

    @classmethod
    def uniform(cls) -> "LabelDistribution":
        return cls(np.ones((NUM_AGES, NUM_GENDERS)))

    def to_json(self) -> str:
        return json.dumps({"age_groups": list(AGE_GROUPS), "genders": list(GENDERS),
                           "counts": [[int(round(c)) for c in row] for row in self.counts]})

    @classmethod
    def from_json(cls, text: str) -> "LabelDistribution":
        data = json.loads(text)
        return cls(np.asarray(data["counts"], np.float64))

    def sample(self, rng: np.random.Generator, age: int | None = None, gender: int | None = None) -> tuple[int, int]:
        """``(age_group, gender)``; given fields are kept, the others drawn given them.

        Always consumes exactly one ``rng.random()`` so that callers' later draws do not depend on
        which fields were given.
        """
        u = rng.random()
        table = self.counts.copy()
        if age is not None:
            mask = np.zeros_like(table)
            mask[age] = 1
            table *= mask
        if gender is not None:
            mask = np.zeros_like(table)
            mask[:, gender] = 1
            table *= mask
        if table.sum() <= 0:  # a combination never seen in training: draw the rest uniformly
            table = np.ones_like(table)
            if age is not None:
                table[np.arange(NUM_AGES) != age] = 0
            if gender is not None:
                table[:, np.arange(NUM_GENDERS) != gender] = 0
        cdf = np.cumsum(table.ravel()) / table.sum()
        k = int(min(np.searchsorted(cdf, u, side="right"), cdf.size - 1))
        return divmod(k, NUM_GENDERS)


def describe_label(age: int, gender: int) -> str:
    """Human-readable label, e.g. ``female 60-69``."""
    return f"{GENDERS[gender]} {AGE_GROUPS[age]}"


__all__ = [
    "AGE_BOUNDS", "AGE_GROUPS", "GENDERS", "NUM_AGES", "NUM_GENDERS", "UNKNOWN", "LabelDistribution", "LabelError",
    "age_to_group", "describe_label", "label_arrays", "parse_age", "parse_gender", "parse_name",
]
