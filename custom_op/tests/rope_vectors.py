"""Device check kit, part 1: test vectors for RoPECustomer, produced by rope_onnx's NumPy reference.

    python custom_op/tests/rope_vectors.py OUT_DIR   # OUT_DIR/manifest.json and one .npz per case

Each case holds x, cos, sin and the expected y of :func:`rope_onnx.op.reference.rope` (the op's one
definition, docs/op-contract.md), stored as raw little-endian bits (bfloat16 as uint16), plus the
attributes and the chips it is meant for.  The shapes cover decode (L = 1), prefill, partial rotary,
interleaved and half layouts, float16 / bfloat16 / float32 and the table broadcasts the fuser emits
([L, R], [1, 1, L, R], [B, 1, L, R], [B, L, 1, R]).  On the development machine the vectors are
only cross-checked against the g++ host build of the kernel for each chip
(tests/kernel/test_device_kit.py); they were NOT run on an NPU here -- run_on_device.py does that
on an Ascend host (docs/device-check.md).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import ml_dtypes
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing rope-onnx
    sys.path.insert(0, str(ROOT))

from rope_onnx.op.reference import rope  # noqa: E402

DTYPES = {
    "float16": np.dtype(np.float16),
    "float32": np.dtype(np.float32),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
}
ALL_CHIPS = ("ascend910b", "ascend310p")


@dataclass(frozen=True)
class Case:
    name: str
    x_shape: tuple[int, ...]
    table_shape: tuple[int, ...]
    interleaved: int
    rotary_dim: int  # 0: the whole head
    dtype: str
    chips: tuple[str, ...]  # where the custom kernel serves it (310P: no bfloat16, rows of 32-byte multiples)


_SHAPES = [
    # name, x, tables, interleaved, rotary_dim, 310P too
    ("decode_b1sd_half", (2, 8, 1, 128), (2, 1, 1, 128), 0, 0, True),
    ("decode_lr_interleaved", (1, 32, 1, 128), (1, 128), 1, 0, True),
    ("prefill_11sd_half", (1, 8, 64, 128), (1, 1, 64, 128), 0, 0, True),
    ("prefill_bsnd_interleaved", (2, 16, 4, 64), (2, 16, 1, 64), 1, 0, True),
    ("prefill_lr_half", (2, 4, 32, 64), (32, 64), 0, 0, True),
    ("partial_half", (1, 4, 16, 128), (16, 64), 0, 64, True),
    ("partial_interleaved", (1, 4, 16, 64), (1, 1, 16, 32), 1, 32, True),
    ("unaligned_rows", (1, 2, 5, 40), (5, 20), 1, 20, False),  # 40 and 20 channels: DataCopyPad (910B)
]


def cases() -> list[Case]:
    out = []
    for name, x, table, inter, rot, on_310p in _SHAPES:
        for dtype in DTYPES:
            chips = ("ascend910b", "ascend310p") if on_310p and dtype != "bfloat16" else ("ascend910b",)
            out.append(Case(f"{name}_{dtype}", x, table, inter, rot, dtype, chips))
    return out


def arrays(case: Case) -> dict[str, np.ndarray]:
    """x, cos, sin (real rotation tables) and the reference y, in the case's dtype; seeded by its name."""
    rng = np.random.default_rng(sum(case.name.encode()))
    dtype = DTYPES[case.dtype]
    x = rng.standard_normal(case.x_shape).astype(np.float32).astype(dtype)
    rotary = case.table_shape[-1]
    positions = rng.integers(0, 4096, size=case.table_shape[:-1]).astype(np.float64)
    inv_freq = 10000.0 ** (-np.arange(0, rotary, 2) / rotary)
    angles = positions[..., None] * inv_freq
    # interleaved pairs (2i, 2i+1) share angle i; the half layout pairs (i, i + R/2)
    angles = np.repeat(angles, 2, axis=-1) if case.interleaved else np.concatenate([angles, angles], axis=-1)
    cos = np.cos(angles).astype(np.float32).astype(dtype)
    sin = np.sin(angles).astype(np.float32).astype(dtype)
    y = rope(x, cos, sin, case.interleaved, case.rotary_dim)
    return {"x": x, "cos": cos, "sin": sin, "y": y}


def bits(a: np.ndarray) -> np.ndarray:
    """The raw little-endian bits (uint16 for 2-byte types), the form .bin files and the simulator take."""
    return np.ascontiguousarray(a).view(np.uint16 if a.dtype.itemsize == 2 else np.uint32)


def from_bits(raw: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(raw).view(DTYPES[dtype])


def write(out: Path) -> list[Case]:
    out.mkdir(parents=True, exist_ok=True)
    written = cases()
    manifest = []
    for case in written:
        data = arrays(case)
        np.savez(out / f"{case.name}.npz", **{k: bits(v) for k, v in data.items()})
        manifest.append(asdict(case) | {"file": f"{case.name}.npz"})
    note = "expected y from rope_onnx.op.reference.rope; raw bits; not run on an NPU where generated"
    (out / "manifest.json").write_text(json.dumps({"note": note, "cases": manifest}, indent=1) + "\n")
    return written


def load(folder: Path) -> list[tuple[Case, dict[str, np.ndarray]]]:
    """The cases of a vectors folder with their arrays in their dtypes."""
    manifest = json.loads((folder / "manifest.json").read_text())
    loaded = []
    for entry in manifest["cases"]:
        case = Case(entry["name"], tuple(entry["x_shape"]), tuple(entry["table_shape"]), entry["interleaved"],
                    entry["rotary_dim"], entry["dtype"], tuple(entry["chips"]))  # fmt: skip
        with np.load(folder / entry["file"]) as data:
            loaded.append((case, {k: from_bits(data[k], case.dtype) for k in data.files}))
    return loaded


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    done = write(Path(sys.argv[1]))
    print(f"{len(done)} cases written to {sys.argv[1]}")
