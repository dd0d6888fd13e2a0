"""``kernel-sim``: run the op package's kernel, compiled for the host, on arrays; report its traffic.

The kernel core and the tiling are the C++ the Ascend C package compiles (see :mod:`.native_sim`); here
they run block after block on a host backend that enforces the AI core's rules (32-byte DataCopy
granule where the chip has no DataCopyPad, aligned UB operands, UB capacity, each y element written
once) and counts the bytes moved to and from global memory.  The result is compared with
:func:`rope_onnx.op.reference.rope`, the op's one NumPy definition.
"""

from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rope_onnx.errors import CheckFailed, InputError
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.kernel.chips import chip as chip_named
from rope_onnx.kernel.native import SimStats, library
from rope_onnx.op.contract import OP_TYPE, RopeAttributes
from rope_onnx.op.reference import rope
from rope_onnx.schemas import stamp

_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
SPLIT_NAMES = {0: "table-rows", 1: "x-rows"}
_ONE_RUN_PER_COPY = 256  # ROPE_SIM_ONE_RUN_PER_COPY, custom_op/host_sim/host_backend.h


@dataclass(frozen=True)
class KernelSimResult:
    """y and the figures ``kernel-sim --json`` prints."""

    y: np.ndarray = field(repr=False)
    gm_bytes_read: int
    gm_bytes_written: int
    min_bytes: int
    ub_peak_bytes: int
    ub_capacity_bytes: int
    blocks: int
    max_abs_err_vs_reference: float
    plan: dict
    interleaved: int = 1
    rotary_dim: int = 0  # as given: 0 means the whole head
    x_transfers: int = 0  # x-in + y-out transfers (one DataCopy / DataCopyPad call each)
    x_transfer_min_bytes: int = 0

    @property
    def x_bytes_per_transfer(self) -> float:
        """Mean bytes of x / y per transfer (x is read once and y written once: 2 * |y| bytes in all)."""
        return 2 * self.gm_bytes_written / self.x_transfers if self.x_transfers else 0.0

    def figures(self) -> dict:
        return {
            "gm_bytes_read": self.gm_bytes_read,
            "gm_bytes_written": self.gm_bytes_written,
            "min_bytes": self.min_bytes,
            "ub_peak_bytes": self.ub_peak_bytes,
            "ub_capacity_bytes": self.ub_capacity_bytes,
            "blocks": self.blocks,
            "max_abs_err_vs_reference": self.max_abs_err_vs_reference,
        }

    def to_json(self, **paths: str) -> dict:
        """The kernel-sim report (docs/reports.md); ``paths``: ``inputs``/``output`` when known."""
        err = self.max_abs_err_vs_reference
        return stamp(
            "kernel-sim",
            {
                **paths,
                "soc_version": self.plan["soc_version"],
                "interleaved": self.interleaved,
                "rotary_dim": self.rotary_dim,
                **self.figures(),
                "max_abs_err_vs_reference": err if np.isfinite(err) else str(err),
                "traffic_ratio": self.traffic_ratio,
                "plan": self.plan,
            },
        )

    @property
    def traffic_ratio(self) -> float:
        moved = self.gm_bytes_read + self.gm_bytes_written
        return moved / self.min_bytes if self.min_bytes else 1.0


def _check_arrays(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> int:
    if x.dtype not in _DTYPE_CODES:
        raise InputError(f"x has dtype {x.dtype}; kernel-sim takes float16 or float32 arrays")
    for name, table in (("cos", cos), ("sin", sin)):
        if table.dtype != x.dtype:
            raise InputError(f"{name} has dtype {table.dtype} but x has {x.dtype}; {OP_TYPE} needs one type")
    if x.ndim < 2:
        raise InputError(f"x has shape {x.shape}; {OP_TYPE} needs rank >= 2 (..., head_dim)")
    return _DTYPE_CODES[x.dtype]


def max_abs_error(y: np.ndarray, expected: np.ndarray) -> float:
    """Largest |y - expected| in float64; inf when NaN/inf positions differ."""
    a = y.astype(np.float64)
    b = expected.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not np.all(same | (np.isfinite(a) & np.isfinite(b))):
        return float("inf")
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    return float(diff.max()) if diff.size else 0.0


def simulate(
    x: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    interleaved: int = 1,
    rotary_dim: int = 0,
    soc: str = "Ascend910B2",
    *,
    one_run_per_copy: bool = False,
) -> KernelSimResult:
    """Run the host-compiled kernel for chip ``soc`` and compare it with the NumPy reference.

    ``one_run_per_copy`` runs the schedule before issue 14 (one transfer per run of x rows, where the
    kernel now moves runs T rows apart as one strided transfer), so the two can be compared."""
    attrs = RopeAttributes(interleaved, rotary_dim)
    target = chip_named(soc)
    code = _check_arrays(x, cos, sin)
    x, cos, sin = (np.ascontiguousarray(a) for a in (x, cos, sin))
    y = np.empty_like(x)
    stats = SimStats()
    err = ctypes.create_string_buffer(512)

    def shape(a: np.ndarray):
        return (ctypes.c_int64 * max(a.ndim, 1))(*a.shape)

    status = library().rope_sim_run(
        code, x.ctypes.data, shape(x), x.ndim,
        cos.ctypes.data, shape(cos), cos.ndim,
        sin.ctypes.data, shape(sin), sin.ndim,
        y.ctypes.data, attrs.interleaved, attrs.rotary_dim,
        target.cores, target.ub_bytes, target.sim_flags | (_ONE_RUN_PER_COPY if one_run_per_copy else 0),
        ctypes.byref(stats), err, len(err),
    )  # fmt: skip
    message = err.value.decode(errors="replace")
    if status == 1:
        raise InputError(f"{OP_TYPE} rejects these inputs on {target.soc_version}: {message}")
    if status != 0:
        raise CheckFailed(f"the simulated kernel broke a rule on {target.soc_version}: {message}")
    expected = rope(x, cos, sin, attrs.interleaved, attrs.rotary_dim)
    return KernelSimResult(
        y=y,
        gm_bytes_read=stats.gm_bytes_read,
        gm_bytes_written=stats.gm_bytes_written,
        min_bytes=stats.min_bytes,
        ub_peak_bytes=stats.ub_peak_bytes,
        ub_capacity_bytes=target.ub_bytes,
        blocks=stats.blocks,
        max_abs_err_vs_reference=max_abs_error(y, expected),
        interleaved=attrs.interleaved,
        rotary_dim=rotary_dim,
        x_transfers=stats.x_copies,
        x_transfer_min_bytes=stats.x_copy_min_bytes,
        plan={
            "soc_version": target.soc_version,
            "split": SPLIT_NAMES.get(stats.split, str(stats.split)),
            "view_PQST": [stats.P, stats.Q, stats.S, stats.T],
            "tile_rows": stats.tile_rows,
            "chunk_rows": stats.chunk_rows,
            "gather_swap": bool(stats.gather_swap),
            "data_copy_pad": bool(stats.use_pad),
            "x_transfers": stats.x_copies,
            "x_bytes_per_transfer": round(2 * stats.gm_bytes_written / max(stats.x_copies, 1)),
        },
    )


def load_inputs(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, cos, sin from an .npz file, with errors that say what to fix."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give an .npz holding arrays x, cos and sin")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ("x", "cos", "sin") if name not in data.files]
            if missing:
                present = ", ".join(data.files) or "none"
                raise InputError(
                    f"{path}: missing array(s) {', '.join(missing)} (it has: {present}); "
                    "save them with numpy.savez(path, x=..., cos=..., sin=...)"
                )
            return data["x"], data["cos"], data["sin"]
    except InputError:
        raise
    except Exception as error:  # zipfile/pickle/format errors of a broken file
        raise InputError(f"{path}: not a readable .npz file ({error})") from None


def simulate_file(
    inputs: str | Path,
    output: str | Path,
    interleaved: int = 1,
    rotary_dim: int = 0,
    soc: str = "Ascend910B2",
) -> KernelSimResult:
    """kernel-sim on IN.npz, writing y to OUT.npz atomically."""
    source = Path(inputs)
    out = check_output_path(output, source)
    x, cos, sin = load_inputs(source)
    result = simulate(x, cos, sin, interleaved, rotary_dim, soc)
    buffer = io.BytesIO()
    np.savez(buffer, y=result.y)
    write_bytes_atomically(buffer.getvalue(), out)
    return result
