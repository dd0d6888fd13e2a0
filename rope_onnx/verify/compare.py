"""Polygraphy-style comparison of one tensor from the original model against the fused model.

An element passes when its absolute error is within ``atol`` OR its relative error (against the
original's value) is within ``rtol`` — Polygraphy's "elemwise" rule: tiny values are judged by
absolute error, large values by relative error.  Besides PASSED/FAILED the comparison reports
what a user needs to judge a failure: max and mean absolute error, max relative error, and the
smallest ``atol`` that would have passed with the ``rtol`` used.

Default tolerances are per element type, and differ between a model's final outputs and a
site's own output.  For float16/bfloat16 the fused op computes in float32 and rounds ONCE
(docs/op-contract.md) where the original graph rounds after every Mul/Add/Neg, so the two may differ by a
unit in the last place of the site's dtype (NumPy, |x| ~ N(0,1), fp16: up to 2e-3), and such
differences grow through the layers that follow.  Measured (2026-11, onnxruntime 1.32 CPU, the
exported fixtures of models/fixtures fused by the library pass, seed 0): float32 outputs and
sites bit-identical (error 0); float16 max abs error 1.2e-4 on logits and on site outputs in the
full run (ONNX Runtime's CPU provider evaluates most fp16 element-wise chains in float32, which
hides most per-op roundings), 0 in the per-site cuts.  The defaults keep >= 100x over those
numbers and over the NumPy per-op bound, while a wrong fusion (swapped tables, wrong pairing)
errs by O(|x|): 0.5 to 5.5 on the hand-built test pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from onnx import TensorProto

from rope_onnx.op.contract import DTYPE_NAMES


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


#: Tolerances for a model's final outputs (logits, present key/values), by element type.
OUTPUT_TOLERANCES: dict[int, Tolerance] = {
    TensorProto.FLOAT: Tolerance(atol=1e-4, rtol=1e-3),
    TensorProto.FLOAT16: Tolerance(atol=2e-2, rtol=2e-2),
    TensorProto.BFLOAT16: Tolerance(atol=2e-2, rtol=2e-2),
}
#: Tolerances for one RoPE site's own output tensor, by element type.
SITE_TOLERANCES: dict[int, Tolerance] = {
    TensorProto.FLOAT: Tolerance(atol=1e-5, rtol=1e-4),
    TensorProto.FLOAT16: Tolerance(atol=1e-2, rtol=1e-2),
    TensorProto.BFLOAT16: Tolerance(atol=1e-2, rtol=1e-2),
}
#: Anything else (integer outputs such as argmax ids) must match exactly.
EXACT = Tolerance(atol=0.0, rtol=0.0)


def default_tolerance(kind: str, elem_type: int) -> Tolerance:
    table = OUTPUT_TOLERANCES if kind == "output" else SITE_TOLERANCES
    return table.get(elem_type, EXACT)


def chosen_tolerance(kind: str, elem_type: int, atol: float | None, rtol: float | None) -> Tolerance:
    """The default for ``kind``/``elem_type`` with the user's ``--atol``/``--rtol`` taking precedence."""
    base = default_tolerance(kind, elem_type)
    return Tolerance(base.atol if atol is None else atol, base.rtol if rtol is None else rtol)


def describe_defaults() -> str:
    """One line per kind, printed by the command so users see what 'passed' meant."""
    parts = []
    for kind, table in (("output", OUTPUT_TOLERANCES), ("site", SITE_TOLERANCES)):
        rows = ", ".join(f"{DTYPE_NAMES[t]} atol={v.atol:g} rtol={v.rtol:g}" for t, v in table.items())
        parts.append(f"default tolerances ({kind}s): {rows}")
    return "\n".join(parts)


@dataclass
class Comparison:
    """One row of the report (field names are the verify report's JSON keys)."""

    name: str
    kind: str  # "output" | "site"
    atol: float
    rtol: float
    max_abs: float
    mean_abs: float
    max_rel: float
    min_passing_atol: float
    passed: bool
    dtype: str = ""
    node: str = ""  # the fused RoPECustomer node, for site rows
    note: str = ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("node", "note"):
            if not data[key]:
                del data[key]
        return {k: (_json_float(v) if isinstance(v, float) else v) for k, v in data.items()}


def _json_float(value: float) -> float | str:
    """JSON has no inf/nan; write them as strings rather than emit invalid JSON."""
    return value if np.isfinite(value) else str(value)


def compare(
    name: str,
    kind: str,
    expected: np.ndarray,
    actual: np.ndarray,
    tol: Tolerance,
    dtype: str = "",
    node: str = "",
) -> Comparison:
    """Compare ``actual`` (fused) against ``expected`` (original) element by element."""

    def failed(note: str) -> Comparison:
        inf = float("inf")
        return Comparison(name, kind, tol.atol, tol.rtol, inf, inf, inf, inf, False, dtype, node, note)

    if expected.shape != actual.shape:
        return failed(f"shape {list(actual.shape)} differs from the original's {list(expected.shape)}")
    exp = np.asarray(expected, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if exp.size == 0:
        return Comparison(name, kind, tol.atol, tol.rtol, 0.0, 0.0, 0.0, 0.0, True, dtype, node)
    both_nan = np.isnan(exp) & np.isnan(act)
    same_inf = np.isinf(exp) & (exp == act)
    abs_err = np.where(both_nan | same_inf, 0.0, np.abs(act - exp))
    abs_err = np.where(np.isnan(abs_err), np.inf, abs_err)  # NaN on one side only: a failure
    scale = np.maximum(np.abs(np.nan_to_num(exp, nan=0.0, posinf=0.0, neginf=0.0)), np.finfo(np.float32).tiny)
    rel_err = abs_err / scale
    bad_rel = rel_err > tol.rtol
    min_atol = float(abs_err[bad_rel].max()) if bad_rel.any() else 0.0
    passed = bool(np.all((abs_err <= tol.atol) | ~bad_rel))
    note = "" if not (np.isnan(exp).any() and not both_nan.all()) else "the original produces NaN"
    return Comparison(
        name,
        kind,
        tol.atol,
        tol.rtol,
        max_abs=float(abs_err.max()),
        mean_abs=float(abs_err.mean()),
        max_rel=float(rel_err.max()),
        min_passing_atol=min_atol,
        passed=passed,
        dtype=dtype,
        node=node,
        note=note,
    )
