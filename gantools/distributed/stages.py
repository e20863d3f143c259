"""What runs inside Ray: decoding tasks, the plugin actor, encoding tasks.

Rows travel as plain columns so that images of any size, channel count and bit depth can share a
batch: ``image`` holds the raw pixel bytes, ``shape`` (``"h,w[,c]"``) and ``dtype`` describe them
(:func:`pack`/:func:`unpack`). Every stage keeps ``path`` (the key of the file in the plan),
``error`` (``""``: none; else the problem, without the file name: the driver adds it) and
``warnings`` (problems joined by newlines); a row that carries an error passes through untouched,
so a bad file never fails the job. Decoding and encoding call exactly what the local runner calls
(:func:`gantools.image.read_image` on the file's bytes, :func:`gantools.image.encode_image`), so
the written bytes are the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gantools.batch import check_fits, check_result

Batch = dict[str, np.ndarray]
#: the name given to ``read_image`` so that its messages can be re-attached to the shown name
_NAME = "F"


def pack(image: np.ndarray) -> tuple[bytes, str, str]:
    """``(pixel bytes, "h,w[,c]", dtype name)`` of an image array."""
    image = np.ascontiguousarray(image)
    return image.tobytes(), ",".join(map(str, image.shape)), image.dtype.str


def unpack(data: bytes, shape: str, dtype: str) -> np.ndarray:
    """The array :func:`pack` described (a writable copy)."""
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape([int(n) for n in shape.split(",")]).copy()


def _problem(exc: BaseException) -> str:
    """One line, without the ``F:`` name prefix that :data:`_NAME` produced."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[len(_NAME) + 2:] if text.startswith(f"{_NAME}: ") else text


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> Batch:
    """Rows -> a numpy batch (object columns keep bytes and strings as they are)."""
    out: Batch = {}
    for name in names:
        column = np.empty(len(rows), dtype=object)
        column[:] = [row[name] for row in rows]
        out[name] = column
    return out


COLUMNS = ("path", "image", "shape", "dtype", "icc", "exif", "frames", "format", "error", "warnings")


def _blank(path: str, **values: Any) -> dict[str, Any]:
    row = {"path": path, "image": b"", "shape": "0", "dtype": "|u1", "icc": b"", "exif": b"", "frames": 1,
           "format": "", "error": "", "warnings": ""}
    row.update(values)
    return row


def decode_batch(batch: Batch, *, max_pixels: int | None) -> Batch:
    """Files' bytes (``path``, ``bytes`` from Ray's binary reader) -> decoded rows."""
    from gantools.image import read_image

    rows = []
    for path, data in zip(batch["path"], batch["bytes"]):
        try:
            decoded = read_image(bytes(data), name=_NAME, max_pixels=max_pixels)
        except Exception as exc:  # noqa: BLE001 - a bad file is an error row, never a failed job
            rows.append(_blank(str(path), error=_problem(exc)))
            continue
        image, shape, dtype = pack(decoded.image)
        rows.append(_blank(str(path), image=image, shape=shape, dtype=dtype, icc=decoded.icc or b"",
                           exif=decoded.exif or b"", frames=decoded.frames))
    return _columns(rows, COLUMNS)


class PluginActor:
    """One plugin instance per actor: made once (``make()``), set up once, then fed batches.

    ``formats`` is a one-element list holding a Ray object reference to ``{path: output
    format}``, fetched once per actor (the output size check needs the format's limits).
    """

    def __init__(self, make: Any, formats: list[Any]) -> None:
        import ray

        self.plugin = make()
        self.plugin.ensure_setup()
        self.formats: dict[str, str] = ray.get(formats[0])

    def __call__(self, batch: Batch) -> Batch:
        rows = [dict(zip(COLUMNS, values)) for values in zip(*(batch[name] for name in COLUMNS))]
        return _columns([self._one(row) for row in rows], COLUMNS)

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        row["format"] = self.formats.get(str(row["path"]), "png")
        if row["error"]:
            return row
        warnings = []
        try:
            image = unpack(row["image"], row["shape"], row["dtype"])
            if row["frames"] > 1:
                warnings.append(f"has {row['frames']} frames; only the first is processed")
            check_fits(self.plugin, image, row["format"])
            result = self.plugin.process(image)
            check_result(self.plugin, result)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - even a plugin's sys.exit() fails one file only
            failure = exc if isinstance(exc, Exception) else RuntimeError(f"the plugin raised {exc!r}")
            return {**row, "image": b"", "error": _problem(failure), "warnings": "\n".join(warnings)}
        data, shape, dtype = pack(result)
        return {**row, "image": data, "shape": shape, "dtype": dtype, "warnings": "\n".join(warnings)}



def encode_batch(batch: Batch, *, quality: int | None, background: tuple[int, int, int]) -> Batch:
    """Processed rows -> ``path``, ``data`` (the encoded file), ``error``, ``warnings``."""
    from gantools.image import encode_image

    rows = []
    for values in zip(*(batch[name] for name in COLUMNS)):
        row = dict(zip(COLUMNS, values))
        out = {"path": str(row["path"]), "data": b"", "error": row["error"], "warnings": row["warnings"]}
        if not row["error"]:
            said: list[str] = []
            try:
                out["data"] = encode_image(
                    unpack(row["image"], row["shape"], row["dtype"]), row["format"], quality=quality,
                    background=background, icc=row["icc"] or None, exif=row["exif"] or None, warn=said.append,
                )
            except Exception as exc:  # noqa: BLE001
                out["error"] = _problem(exc)
            out["warnings"] = "\n".join(filter(None, [row["warnings"], *(" ".join(w.split()) for w in said)]))
        rows.append(out)
    return _columns(rows, ("path", "data", "error", "warnings"))
