"""Which kernel each fused RoPE node gets under ATC: the custom ``ro_pe_customer`` or Huawei's built-in.

CANN 8.1 ships ``RotaryPositionEmbedding(x, cos, sin, mode)`` for ascend910b and ascend910_93 (and
ops-transformer adds ascend910_95), not for ascend310p (CANN 8.1.RC1 ``opp/built-in/op_impl/ai_core/tbe/
config/<family>/aic-<family>-ops-info.json``; ops-transformer ``posembedding/rotary_position_embedding/
op_host/rotary_position_embedding_def.cpp:51-59``).  Its semantics are RoPECustomer's with
``mode = interleaved`` (``docs/aclnnRotaryPositionEmbedding.md:16,32``), but it serves fewer shapes
(same file, ``:308-321``): x 4-D, D == rotary_dim (no pass-through), D even and < 896, cos/sin of one
4-D shape that keeps or broadcasts x's leading axes in a listed pattern, B and N < 1000 (half mode) or
B·N < 1000 (interleaved mode); and the half-mode tiling refuses, at run time, "BNSD" inputs with
B·N > 8·S for 32-byte aligned D/2 and small unaligned D (``op_host/rope_rotate_half_tiling.cpp:411``).

The ONNX plugin sees attributes only -- neither the chip nor the shapes -- so the choice is made here,
from the profile's ``--soc_version`` and its input shapes, and only when every value the profile allows
is proven to fit; anything left open stays on the custom kernel.  A chosen node is *marked* by
:func:`mark_builtin` (``rope-onnx atc --kernel auto``, :mod:`.marking`, on a copy written as a new file):
its op type becomes ``RoPEBuiltin`` (rotary_dim written as 0), which the plugin maps onto
``RotaryPositionEmbedding``.  :func:`check_kernels` gives the ATC pre-flight one row per node saying
which kernel it gets in the file given to ATC, and fails a marked node that is not eligible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

from rope_onnx.atc.profile import Variant
from rope_onnx.atc.shapes import DimValue
from rope_onnx.graph.index import Dim, GraphIndex
from rope_onnx.op.contract import OP_TYPE

if TYPE_CHECKING:
    from rope_onnx.atc.preflight import Check

BUILTIN_OP_TYPE = "RoPEBuiltin"  # the ONNX op type of a node marked for the built-in op
BUILTIN_GE_TYPE = "RotaryPositionEmbedding"  # the GE op type the plugin maps it to
CUSTOM_KERNEL = "ro_pe_customer"
BUILTIN_FAMILIES = frozenset({"ascend910b", "ascend910_93", "ascend910_95"})
MAX_HEAD_DIM = 896  # exclusive
MAX_BATCH_HEADS = 1000  # exclusive: B and N (half mode), B*N (interleaved mode)
_DTYPES = {onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT, onnx.TensorProto.BFLOAT16}
# cos/sin leading axes against x's (B, N, S)-like axes: K keeps x's size, o is 1 (docs :312-321).
# Each pattern names the layout reading that gives its B and N axes (indices into x's leading axes).
_HALF_PATTERNS = {
    "ooK": (0, 1), "KoK": (0, 1), "KKK": (0, 1),  # BNSD: 11SD, B1SD, BNSD
    "oKo": (0, 2), "KKo": (0, 2),                 # BSND: 1S1D, BS1D
    "Koo": (1, 2),                                # SBND: S11D
}  # fmt: skip
_INTERLEAVED_PATTERNS = {"ooK": (0, 1), "oKo": (0, 2), "Koo": (1, 2)}


@dataclass(frozen=True)
class Bounds:
    """The least and greatest value a dimension takes under the profile (hi None: unbounded)."""

    lo: int
    hi: int | None


def _bounds(value: DimValue) -> Bounds:
    if value.fixed is not None:
        return Bounds(value.fixed, value.fixed)
    if value.gears:
        return Bounds(min(value.gears), max(value.gears))
    if value.low is not None and value.high is not None:
        return Bounds(value.low, value.high)
    return Bounds(1, None)


def symbol_bounds(model: onnx.ModelProto, variant: Variant) -> dict[str, Bounds]:
    """Each graph-input ``dim_param`` the profile variant sets, with the values it allows."""
    graph_inputs = {i.name: i for i in model.graph.input}
    found: dict[str, Bounds] = {}
    for spec in variant.inputs:
        vi = graph_inputs.get(spec.name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != len(spec.dims):
            continue
        for dim, value in zip(dims, spec.dims, strict=True):
            key = f"param:{dim.dim_param}"
            if dim.dim_param and key not in found:
                found[key] = _bounds(value)
    return found


@dataclass(frozen=True)
class Choice:
    node: str
    builtin: bool  # the node meets every condition of the built-in op
    mode: int  # the built-in op's mode (interleaved)
    reason: str  # why not, or which layout reading


def _resolve(dim: Dim, symbols: dict[str, Bounds]) -> Bounds | None:
    if isinstance(dim, int):
        return Bounds(dim, dim)
    return symbols.get(dim)


def _pattern(x: list[Dim], table: list[Dim], symbols: dict[str, Bounds]) -> str | None:
    """K/o per leading axis, None where the relation cannot be shown; an axis of x that is 1 matches both."""
    out = []
    for xd, td in zip(x[:3], table[:3], strict=True):
        xb = _resolve(xd, symbols)
        if xb is not None and xb.hi == 1:
            out.append("*")
        elif td == 1:
            out.append("o")
        elif td == xd:
            out.append("K")
        else:
            return None
    return "".join(out)


def _matches(pattern: str, allowed: dict[str, tuple[int, int]]) -> list[tuple[int, int]]:
    return [
        axes
        for name, axes in allowed.items()
        if all(p == "*" or p == n for p, n in zip(pattern, name, strict=True))
    ]


def _hi(b: Bounds | None) -> float:
    return math.inf if b is None or b.hi is None else b.hi


def choose(node: onnx.NodeProto, index: GraphIndex, family: str, symbols: dict[str, Bounds]) -> Choice:
    """Whether Huawei's built-in op serves this node on this chip family for every profile shape."""
    values = {a.name: a.i for a in node.attribute}
    mode = int(values.get("interleaved", 1))

    def no(reason: str) -> Choice:
        return Choice(node.name, False, mode, reason)

    if family not in BUILTIN_FAMILIES:
        return no(f"Huawei's {BUILTIN_GE_TYPE} has no {family} build in CANN 8.1")
    x, cos, sin = (index.dims(name) for name in node.input[:3])
    if x is None or cos is None or sin is None or len(x) != 4 or len(cos) != 4:
        return no(f"the built-in op takes 4-D x, cos and sin; shapes here are {x}, {cos}")
    if cos != sin:
        return no("cos and sin are not shown to have one shape")
    head = x[3]
    if not isinstance(head, int) or head % 2 or head >= MAX_HEAD_DIM:
        return no(f"head dim {head} is not a static even size below {MAX_HEAD_DIM}")
    if values.get("rotary_dim", 0) not in (0, head) or cos[3] != head:
        return no("partial rotary (rotary_dim < head dim): the built-in op rotates the whole head")
    if index.elem_type(node.input[0]) not in _DTYPES:
        return no("x's element type is not shown to be float16, float32 or bfloat16")
    pattern = _pattern(x, cos, symbols)
    if pattern is None:
        return no(
            f"cannot show how cos {cos} broadcasts against x {x} (symbolic dims the profile does not set)"
        )
    readings = _matches(pattern, _INTERLEAVED_PATTERNS if mode else _HALF_PATTERNS)
    if not readings:
        kind = ("half", "interleaved")[mode]
        return no(f"cos/sin broadcast pattern {pattern} is not one the built-in op's {kind} mode lists")
    lead = [_resolve(d, symbols) for d in x[:3]]
    for b_axis, n_axis in readings:
        b, n = _hi(lead[b_axis]), _hi(lead[n_axis])
        fits = b * n < MAX_BATCH_HEADS if mode else (b < MAX_BATCH_HEADS and n < MAX_BATCH_HEADS)
        if fits and (mode or not _bnsd_refused(pattern, lead, head, index.elem_type(node.input[0]))):
            layout = {(0, 1): "BNSD", (0, 2): "BSND", (1, 2): "SBND"}[(b_axis, n_axis)]
            return Choice(node.name, True, mode, f"{layout} reading, cos/sin pattern {pattern}")
    return no(
        "batch/head sizes are not shown to stay within the built-in op's limits for every profile shape"
    )


def check_kernels(
    model: onnx.ModelProto, family: str, variant: Variant, index: GraphIndex | None = None
) -> list[Check]:
    """One pre-flight row per fused node: the kernel it gets in this file (marked nodes must be eligible)."""
    from rope_onnx.atc.preflight import FAIL, PASS, Check  # preflight imports this module

    rows = []
    for node, choice in zip(ropes(model), choices(model, family, variant, index), strict=True):
        name = f"kernel[{node.name}]"
        if node.op_type == BUILTIN_OP_TYPE:
            if choice.builtin:
                rows.append(
                    Check(
                        name,
                        PASS,
                        f"Huawei's built-in {BUILTIN_GE_TYPE} (mode {choice.mode}): {choice.reason}",
                    )
                )
            else:
                rows.append(
                    Check(
                        name,
                        FAIL,
                        f"marked {BUILTIN_OP_TYPE} for Huawei's {BUILTIN_GE_TYPE}, but "
                        f"{choice.reason}; keep it as {OP_TYPE} (custom kernel)",
                    )
                )
        elif choice.builtin:
            rows.append(
                Check(
                    name,
                    PASS,
                    f"custom kernel {CUSTOM_KERNEL}; Huawei's {BUILTIN_GE_TYPE} would "
                    f"also serve it ({choice.reason}): --kernel auto hands it over",
                )
            )
        else:
            rows.append(Check(name, PASS, f"custom kernel {CUSTOM_KERNEL} ({choice.reason})"))
    return rows


def _bnsd_refused(pattern: str, lead: list[Bounds | None], head: int, elem_type: int) -> bool:
    """The half-mode tiling's run-time refusal of 'BNSD' inputs (rope_rotate_half_tiling.cpp:411-429).

    That tiling mode is chosen for cos (1, 1, S, D) against x (B, N, S, D) with B != 1 and N != 1
    (ChooseTilingMode, :306); an x axis the profile pins to 1 ('*') never gets there."""
    if pattern != "ooK":
        return False
    s_low = lead[2].lo if lead[2] is not None else 1
    aligned = (head // 2 * (4 if elem_type == onnx.TensorProto.FLOAT else 2)) % 32 == 0
    if aligned:
        return _hi(lead[0]) * _hi(lead[1]) > 8 * s_low
    return head < 80  # the unaligned rule depends on the core count: refuse the whole small-D case


def ropes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in (OP_TYPE, BUILTIN_OP_TYPE)]


def choices(
    model: onnx.ModelProto, family: str, variant: Variant, index: GraphIndex | None = None
) -> list[Choice]:
    """The choice for each node of :func:`ropes`, in that order."""
    index = index or GraphIndex(model)
    symbols = symbol_bounds(model, variant)
    return [choose(node, index, family, symbols) for node in ropes(model)]


def mark_node(node: onnx.NodeProto) -> None:
    """Mark one node for the built-in op: op type RoPEBuiltin, rotary_dim 0 (the one value the plugin's
    ParseRoPEBuiltin accepts; a node is eligible only with rotary_dim == D), interleaved kept (-> mode)."""
    node.op_type = BUILTIN_OP_TYPE
    kept = [a for a in node.attribute if a.name != "rotary_dim"]
    del node.attribute[:]
    node.attribute.extend([*kept, onnx.helper.make_attribute("rotary_dim", 0)])


def mark_builtin(
    model: onnx.ModelProto, family: str, variant: Variant, index: GraphIndex | None = None
) -> list[str]:
    """Mark (in place) every RoPECustomer node the built-in op serves; the names of those marked.

    ``rope-onnx atc --kernel auto`` calls it on a copy (:mod:`rope_onnx.atc.marking`)."""
    marked = []
    for node, choice in zip(ropes(model), choices(model, family, variant, index), strict=True):
        if node.op_type == OP_TYPE and choice.builtin:
            mark_node(node)
            marked.append(node.name)
    return marked
