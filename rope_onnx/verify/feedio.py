"""Feeds and goldens on disk: the forms other tools read and write, so one set of inputs serves both ends.

``verify --inputs`` takes what a deployer already has: a NumPy ``.npz`` keyed by input name, a folder
of ``<name>.npy`` (what ``--save-inputs`` writes), or the JSON Polygraphy writes with ``polygraphy run
--save-inputs`` (a list of feed dicts, one per iteration, each array an ``np.save`` payload in base64
tagged ``"polygraphy_class": "ndarray"``; Polygraphy's ``polygraphy/json/serde.py``).  Polygraphy itself
is never imported: its format is read here.

``--save-inputs DIR`` / ``--save-outputs DIR`` write one ``<name>.npy`` per tensor and, with ``--bin``,
the raw C-order bytes next to it as ``<name>.bin``: the layout ``ais_bench --input`` and ``msit debug
compare -i`` read on the Ascend host (docs/deploy.md).  A tensor name that is not a safe file name
(``/``, ``:`` …) is written with those characters replaced by ``_``; ``manifest.json`` in the folder
records name → file, dtype and shape, in the model's input order (the order ``ais_bench`` takes files).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from rope_onnx.errors import InputError
from rope_onnx.io.atomic import write_bytes_atomically

POLYGRAPHY_MARKER = "polygraphy_class"  # polygraphy.constants.TYPE_MARKER
POLYGRAPHY_LEGACY_MARKER = "__polygraphy_encoded_ndarray"  # before Polygraphy 0.38
MANIFEST = "manifest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FORMS = "an .npz, a folder of <name>.npy, or Polygraphy's --save-inputs JSON"


def file_stem(name: str) -> str:
    """The file name (without suffix) a tensor is saved under: unsafe characters become '_'."""
    stem = _UNSAFE.sub("_", name)
    return stem if stem not in ("", ".", "..") else f"_{stem}"


def read_arrays(path: Path, names: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays stored at ``path``, keyed by tensor name, and notes on how they were read.

    ``names`` (the model's inputs) map the file stems of a folder back to tensor names.
    """
    if path.is_dir():
        return _read_folder(path, names)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder; give {FORMS}")
    with path.open("rb") as handle:
        head = handle.read(1)
        handle.seek(0)
        first = handle.read(64).lstrip()[:1]
    if path.suffix.lower() == ".json" or first in (b"[", b"{"):
        return _read_polygraphy(path)
    if head == b"P":  # a zip archive: .npz
        return _read_npz(path), []
    raise InputError(f"{path}: not a feed file this tool reads; give {FORMS}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each header checked against its member's size before any read.

    A member whose header declares more bytes than it holds (a 4 TB array in a 1 KB file) would
    make numpy allocate the declared size first; a corrupt zip, an empty file or a lone ``.npy``
    are not feeds.  Every such case is one :class:`InputError`.
    """
    hint = "give an .npz written by numpy.savez"
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(member)
                    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size:
                    raise InputError(
                        f"{path}: feeds member '{info.filename}' declares {declared} bytes "
                        f"{tuple(shape)} but holds {info.file_size}; the file is corrupt"
                    )
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot read feeds ({first}); {hint}") from exc


def _read_folder(path: Path, names: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    by_stem: dict[str, str] = {}
    for name in names:
        by_stem.setdefault(file_stem(name), name)
        by_stem[name] = name  # an exact file name wins over a sanitised one
    files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
    if not files:
        extra = (
            " (it has .bin files: save them as .npy, raw bytes carry no dtype or shape)"
            if any(path.glob("*.bin"))
            else ""
        )
        raise InputError(f"{path}: no <name>.npy files in this folder{extra}; give {FORMS}")
    arrays: dict[str, np.ndarray] = {}
    for file in files:
        name = by_stem.get(file.stem, file.stem)
        try:
            arrays[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: cannot read this .npy ({exc})") from exc
    return arrays, []


def _decode_array(value: object, where: str) -> np.ndarray:
    if not isinstance(value, dict) or "array" not in value:
        kind = value.get(POLYGRAPHY_MARKER) if isinstance(value, dict) else type(value).__name__
        raise InputError(f"{where}: not a Polygraphy-encoded NumPy array (found {kind!r})")
    marker = value.get(POLYGRAPHY_MARKER)
    if marker not in ("ndarray", None) or (marker is None and POLYGRAPHY_LEGACY_MARKER not in value):
        raise InputError(f"{where}: a Polygraphy '{marker}' value, not an ndarray; save NumPy inputs")
    text = value["array"]
    if not isinstance(text, str):
        raise InputError(f"{where}: the array payload is not a string")
    try:
        data = base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        data = text.encode("latin-1")  # Polygraphy's oldest JSON stored the bytes as latin-1 text
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{where}: the array payload is not an np.save stream ({exc})") from exc
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:  # very old Polygraphy wrapped each array in an .npz
        values = [loaded[k] for k in loaded.files]
    if not values:
        raise InputError(f"{where}: the archive holds no array")
    return values[0]


def _read_polygraphy(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); give {FORMS}") from exc
    iterations = data if isinstance(data, list) else [data]
    if not iterations or not all(isinstance(it, dict) for it in iterations):
        raise InputError(f"{path}: expected Polygraphy's list of feed dicts (polygraphy run --save-inputs)")
    arrays = {name: _decode_array(v, f"{path}: [0].{name}") for name, v in iterations[0].items()}
    notes = []
    if len(iterations) > 1:
        notes.append(f"{path.name} holds {len(iterations)} iterations of inputs; the first was used")
    return arrays, notes


def cast_integers(
    arrays: dict[str, np.ndarray], wanted: dict[str, np.dtype], where: Path
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Integer feeds of another integer type are cast to the model's (int32 ids for an int64 model),
    when every value fits; a value that does not fit is an error, never a silent wrap."""
    notes, out = [], dict(arrays)
    for name, array in arrays.items():
        want = wanted.get(name)
        if want is None or array.dtype == want or array.dtype.kind not in "iu" or want.kind not in "iu":
            continue
        info = np.iinfo(want)
        if array.size and (int(array.min()) < info.min or int(array.max()) > info.max):
            raise InputError(
                f"{where}: feed '{name}' is {array.dtype} with values outside {want}'s range "
                f"[{info.min}, {info.max}]; the model takes {want}"
            )
        out[name] = array.astype(want)
        notes.append(f"feed '{name}' cast from {array.dtype} to {want}, the model's type (values fit)")
    return out, notes


def _raw_bytes(array: np.ndarray, raw_dtype: np.dtype | None) -> bytes:
    return np.ascontiguousarray(array.astype(raw_dtype) if raw_dtype is not None else array).tobytes()


def save_arrays(
    folder: Path,
    arrays: dict[str, np.ndarray],
    *,
    raw: bool = False,
    raw_dtypes: dict[str, str] | None = None,
    what: str = "tensors",
) -> list[Path]:
    """Write ``<stem>.npy`` (and ``<stem>.bin`` when ``raw``) per array, in the given order, plus
    ``manifest.json``; returns the files written.  ``raw_dtypes`` names tensors whose ``.bin`` holds
    another element type than the ``.npy`` (bfloat16 bits of a float32 upcast)."""
    stems: dict[str, str] = {}
    for name in arrays:
        stem = file_stem(name)
        if stem in stems.values():
            other = next(n for n, s in stems.items() if s == stem)
            raise InputError(f"{what} '{other}' and '{name}' would both be saved as {stem}.npy")
        stems[name] = stem
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from exc
    if not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    raw_dtypes = raw_dtypes or {}
    written, manifest = [], []
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        npy = folder / f"{stems[name]}.npy"
        write_bytes_atomically(buffer.getvalue(), npy)
        written.append(npy)
        entry: dict[str, object] = {
            "name": name,
            "npy": npy.name,
            "dtype": str(array.dtype),
            "shape": list(array.shape),
        }
        if raw:
            bin_path = folder / f"{stems[name]}.bin"
            raw_name = raw_dtypes.get(name)
            data = _bfloat16_bits(array) if raw_name == "bfloat16" else _raw_bytes(array, None)
            write_bytes_atomically(data, bin_path)
            written.append(bin_path)
            entry.update(bin=bin_path.name, bin_dtype=raw_name or str(array.dtype))
        manifest.append(entry)
    text = json.dumps({"tensors": manifest}, indent=2) + "\n"
    write_bytes_atomically(text.encode(), folder / MANIFEST)
    return written


def _bfloat16_bits(array: np.ndarray) -> bytes:
    """float32 values on the bfloat16 grid → their bfloat16 bit patterns (the top 16 bits)."""
    bits = np.ascontiguousarray(array.astype(np.float32)).view(np.uint32) >> 16
    return bits.astype(np.uint16).tobytes()
