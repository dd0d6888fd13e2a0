"""Hand-built RoPE sites, varied the way exporters vary them, plus mutants that are not RoPE.

Real exporter output (models/fixtures) is the ground truth for what must fuse; these graphs are
for unit and property tests: each :class:`SiteSpec` field is one way the same computation is
written (or, for ``mutation``, a way it stops being a rotation).  :func:`build` returns a model
with inputs ``x``, ``cos``, ``sin`` and output ``y`` and :func:`feeds` matching random inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = 2**63 - 1
NP = {"float32": np.float32, "float16": np.float16}
ONNX_TYPE = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}

#: Mutations that break the rotation, per formulation: none of them may fuse.
MUTATIONS = {
    "half": ("concat_swapped", "neg_missing", "halves_off", "sub_sign", "expanding_table"),
    "interleaved": ("concat_swapped", "neg_missing", "sub_sign", "expanding_table", "mixed_pairs"),
    "seed": ("sub_sign", "expanding_table", "mixed_pairs"),
}
#: Look-alikes that still are exactly RoPE (of a scaled x; with cos as the sin table): must fuse exactly.
STILL_ROPE = ("scaled_x", "cos_on_rot")


@dataclass(frozen=True)
class SiteSpec:
    head_dim: int = 16
    rotary_dim: int = 16
    interleaved: bool = False
    layout: str = "BHLD"  # or "BLHD"
    dtype: str = "float32"
    heads: int = 3
    split: str = "slice"  # half: slice | split ; interleaved: step2 | gather | split | slice
    neg: str = "neg"  # neg | mul
    bounds: str = "const"  # const | shape (x.shape[-1] // 2 in-graph) ; partial: const | cos_shape
    seed_form: bool = False  # interleaved with half-width tables: y1 = x1c - x2s, y2 = x1s + x2c
    swap_mul: bool = False  # cos * x instead of x * cos
    swap_add: bool = False  # rot*sin + x*cos
    table: str = "11LR"  # LR | 11LR | B1LR (BHLD) ; LR | BL1R | L1R (BLHD)
    table_cast: bool = False  # tables arrive as float32 and are Cast to dtype in-graph
    empty_passthrough: bool = False  # rotary_dim == head_dim written as cat(rot, x[..., D:])
    extra_consumer: bool = False  # an intermediate (x*cos) is also a graph output
    mutation: str = ""

    @property
    def table_width(self) -> int:
        return self.rotary_dim // 2 if self.seed_form else self.rotary_dim


class _G:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str | list[str]:
        self.n += 1
        outs = [f"{op_type.lower()}{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self.n}", **attrs))
        return outs[0] if n_out == 1 else outs

    def ints(self, *v: int) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(v, dtype=np.int64), name))
        return name

    def scalar(self, value: float, dtype: str) -> str:
        self.n += 1
        name = f"s{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=NP[dtype]), name))
        return name

    def last_slice(self, data: str, start: int | str, end: int | str, step: int = 1) -> str:
        s = start if isinstance(start, str) else self.ints(start)
        e = end if isinstance(end, str) else self.ints(end)
        return self.op("Slice", [data, s, e, self.ints(-1), self.ints(step)])

    def half_of_last(self, data: str) -> str:
        """``data.shape[-1] // 2`` computed in-graph, as TorchScript exports it."""
        dim = self.op("Gather", [self.op("Shape", [data]), _scalar_index(self, -1)], axis=0)
        return self.op("Unsqueeze", [self.op("Div", [dim, _scalar_index(self, 2)]), self.ints(0)])


def _shapes(spec: SiteSpec) -> tuple[list, list]:
    x = (
        ["B", spec.heads, "L", spec.head_dim]
        if spec.layout == "BHLD"
        else ["B", "L", spec.heads, spec.head_dim]
    )
    lead = {"LR": ["L"], "11LR": [1, 1, "L"], "B1LR": ["B", 1, "L"], "BL1R": ["B", "L", 1], "L1R": ["L", 1]}
    table = lead[spec.table] + [spec.table_width]
    if spec.mutation == "expanding_table":
        x = [*x[:-3], 1, *x[-2:]] if spec.layout == "BHLD" else [*x[:-2], 1, x[-1]]
        table = (["B", spec.heads, "L"] if spec.layout == "BHLD" else ["B", "L", spec.heads]) + [
            spec.table_width
        ]
    return x, table


def _rotate_half(g: _G, spec: SiteSpec, xr: str) -> str:
    half = spec.rotary_dim // 2
    cut = half - 1 if spec.mutation == "halves_off" else half
    if spec.split == "split":
        x1, x2 = g.op("Split", [xr, g.ints(cut, spec.rotary_dim - cut)], 2, axis=-1)
    else:
        mid = g.half_of_last(xr) if spec.bounds == "shape" and spec.mutation != "halves_off" else cut
        x1, x2 = g.last_slice(xr, 0, mid), g.last_slice(xr, mid, INT64_MAX)
    if spec.mutation == "neg_missing":
        n2 = x2
    else:
        n2 = g.op("Mul", [x2, g.scalar(-1.0, spec.dtype)]) if spec.neg == "mul" else g.op("Neg", [x2])
    parts = [x1, n2] if spec.mutation == "concat_swapped" else [n2, x1]
    return g.op("Concat", parts, axis=-1)


def _pairs(g: _G, spec: SiteSpec, xr: str) -> tuple[str, str]:
    """Even and odd channels of xr, each [..., R/2]."""
    if spec.split == "step2":
        if spec.mutation == "mixed_pairs":  # first half against odd channels: same shapes, no pairs
            return g.last_slice(xr, 0, spec.rotary_dim // 2), g.last_slice(xr, 1, INT64_MAX, 2)
        return g.last_slice(xr, 0, INT64_MAX, 2), g.last_slice(xr, 1, INT64_MAX, 2)
    lead = g.op("Slice", [g.op("Shape", [xr]), g.ints(0), g.ints(-1), g.ints(0)])
    pairs = g.op("Reshape", [xr, g.op("Concat", [lead, g.ints(-1, 2)], axis=0)])
    if spec.split == "gather":
        even = g.op("Gather", [pairs, _scalar_index(g, 0)], axis=-1)
        odd = g.op("Gather", [pairs, _scalar_index(g, 1)], axis=-1)
        return even, odd
    if spec.split == "split":
        even, odd = g.op("Split", [pairs, g.ints(1, 1)], 2, axis=-1)
    else:
        even, odd = g.last_slice(pairs, 0, 1), g.last_slice(pairs, 1, 2)
    return g.op("Squeeze", [even, g.ints(-1)]), g.op("Squeeze", [odd, g.ints(-1)])


def _scalar_index(g: _G, value: int) -> str:
    g.n += 1
    name = f"i{g.n}"
    g.inits.append(numpy_helper.from_array(np.array(value, dtype=np.int64), name))
    return name


def _interleave(g: _G, first: str, second: str) -> str:
    """stack([first, second], -1).flatten(-2), the target shape computed in-graph like torch does."""
    stacked = g.op("Concat", [g.op("Unsqueeze", [t, g.ints(-1)]) for t in (first, second)], axis=-1)
    lead = g.op("Slice", [g.op("Shape", [stacked]), g.ints(0), g.ints(-2), g.ints(0)])
    return g.op("Reshape", [stacked, g.op("Concat", [lead, g.ints(-1)], axis=0)])


def _mul(g: _G, spec: SiteSpec, data: str, table: str) -> str:
    return g.op("Mul", [table, data] if spec.swap_mul else [data, table])


def build(spec: SiteSpec, opset: int = 17) -> onnx.ModelProto:
    g = _G()
    x_shape, t_shape = _shapes(spec)
    dtype = ONNX_TYPE[spec.dtype]
    table_type = TensorProto.FLOAT if spec.table_cast else dtype
    cos, sin = "cos", "sin"
    if spec.table_cast:
        cos, sin = (g.op("Cast", [t], to=dtype) for t in (cos, sin))
    outputs = []
    partial = spec.rotary_dim < spec.head_dim or spec.empty_passthrough
    if partial:
        r = (
            g.op("Slice", [g.op("Shape", [cos]), g.ints(-1), g.ints(INT64_MAX), g.ints(0)])
            if spec.bounds == "cos_shape" and not spec.seed_form
            else g.ints(spec.rotary_dim)
        )
        xr = g.last_slice("x", 0, r)
        xp = g.last_slice("x", r, INT64_MAX)
    else:
        xr = "x"
    if spec.mutation == "scaled_x":
        xr = g.op("Mul", [xr, g.scalar(2.0, spec.dtype)])
    if spec.seed_form:
        even, odd = _pairs(g, spec, xr)
        y1 = g.op("Sub", [_mul(g, spec, even, cos), _mul(g, spec, odd, sin)])
        second = [_mul(g, spec, even, sin), _mul(g, spec, odd, cos)]
        op2 = "Sub" if spec.mutation == "sub_sign" else "Add"
        y2 = g.op(op2, second[::-1] if spec.swap_add else second)
        yr = _interleave(g, y1, y2)
    else:
        if spec.interleaved:
            even, odd = _pairs(g, spec, xr)
            n_odd = (
                g.op("Mul", [odd, g.scalar(-1.0, spec.dtype)]) if spec.neg == "mul" else g.op("Neg", [odd])
            )
            rot = _interleave(g, *((even, n_odd) if spec.mutation == "concat_swapped" else (n_odd, even)))
            if spec.mutation == "neg_missing":
                rot = _interleave(g, odd, even)
        else:
            rot = _rotate_half(g, spec, xr)
        direct = _mul(g, spec, xr, cos)
        rotated = _mul(g, spec, rot, cos if spec.mutation == "cos_on_rot" else sin)
        if spec.extra_consumer:
            outputs.append(direct)
        op = "Sub" if spec.mutation == "sub_sign" else "Add"
        yr = g.op(op, [rotated, direct] if spec.swap_add else [direct, rotated])
    y = g.op("Concat", [yr, xp], axis=-1) if partial else yr
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    graph = helper.make_graph(
        g.nodes,
        "rope_site",
        [
            helper.make_tensor_value_info("x", dtype, x_shape),
            helper.make_tensor_value_info("cos", table_type, t_shape),
            helper.make_tensor_value_info("sin", table_type, t_shape),
        ],
        [helper.make_tensor_value_info(o, dtype, [None] * len(x_shape)) for o in ["y", *outputs]],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def feeds(spec: SiteSpec, batch: int = 2, length: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x_shape, t_shape = _shapes(spec)
    sizes = {"B": batch, "L": length}
    conc = [[sizes.get(d, d) for d in s] for s in (x_shape, t_shape)]
    table_dtype = np.float32 if spec.table_cast else NP[spec.dtype]
    return {
        "x": rng.standard_normal(conc[0]).astype(NP[spec.dtype]),
        "cos": rng.standard_normal(conc[1]).astype(table_dtype),
        "sin": rng.standard_normal(conc[1]).astype(table_dtype),
    }
