"""Hand-built RoPE sites, varied the way exporters vary them, plus mutants that are not RoPE.

Real exporter output (models/fixtures) is the ground truth for what must fuse; these graphs are
for unit and property tests: each :class:`SiteSpec` field is one way the same computation is
written (or, for ``mutation``, a way it stops being a rotation).  :func:`build` returns a model
with inputs ``x``, ``cos``, ``sin`` and output ``y`` and :func:`feeds` matching random inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
#: More ways to stop being a rotation, for the property tests: (formulations, needs) per mutation;
#: needs "partial" (rotary_dim < head_dim) or "two_sites".
MORE_MUTATIONS = {
    "double_neg": (("interleaved",), ""),
    "scaled_rot": (("half", "interleaved"), ""),
    "cross": (("half", "interleaved"), "two_sites"),
    "passthrough_neg": (("half", "interleaved", "seed"), "partial"),
    "overlap_passthrough": (("half", "interleaved", "seed"), "partial"),
}
#: Look-alikes that still are exactly RoPE (of a scaled x; with cos as the sin table): must fuse exactly.
STILL_ROPE = ("scaled_x", "cos_on_rot")
#: More exact look-alikes: a reversed cos table, the tables' roles swapped.
MORE_STILL_ROPE = ("reversed_cos", "tables_swapped")
#: Table forms per layout that broadcast into x without expanding it (the rest must be refused).
TABLE_FORMS = {
    "BHLD": ("LR", "11LR", "B1LR", "1HLR", "BHLR"),
    "BLHD": ("BL1R", "L1R", "1L1R", "BLHR"),
    "NLD": ("LR", "1LR", "NLR"),
}
#: Table forms that broadcast x to a larger shape: never a RoPECustomer (its output has x's shape).
REFUSED_TABLE_FORMS = {"BHLD": ("1BHLR",), "BLHD": ("1BLHR",), "NLD": ("1NLR",)}


@dataclass(frozen=True)
class SiteSpec:
    head_dim: int = 16
    rotary_dim: int = 16
    interleaved: bool = False
    layout: str = "BHLD"  # or "BLHD", or "NLD" (rank-3 x: heads folded into the batch)
    dtype: str = "float32"
    heads: int = 3
    split: str = "slice"  # half: slice | split ; interleaved: step2 | gather | split | slice
    neg: str = "neg"  # neg | mul
    bounds: str = "const"  # const | shape (x.shape[-1] // 2 in-graph) ; partial: const | cos_shape
    seed_form: bool = False  # interleaved with half-width tables: y1 = x1c - x2s, y2 = x1s + x2c
    swap_mul: bool = False  # cos * x instead of x * cos
    swap_add: bool = False  # rot*sin + x*cos
    #: BHLD: LR | 11LR | B1LR | 1HLR | BHLR, and 1BHLR (rank 5: must be refused);
    #: BLHD: BL1R | L1R | 1L1R | BLHR; NLD: LR | 1LR | NLR
    table: str = "11LR"
    table_cast: bool = False  # tables arrive as float32 and are Cast to dtype in-graph
    empty_passthrough: bool = False  # rotary_dim == head_dim written as cat(rot, x[..., D:])
    extra_consumer: bool = False  # an intermediate (x*cos) is also a graph output
    cast: str = ""  # "" | upcast (x, tables Cast to float32 around the site, y cast back) | noop
    #: an intermediate that is also a graph output (direct | rot | rotated | xr), or read by
    #: another node (consumer: Abs(rot) is a graph output)
    extra_output: str = ""
    sites: int = 1  # 2: a second site on input k (kv_heads heads) sharing the cos/sin tables
    kv_heads: int = 0  # heads of k (0: same as x)
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
    h = spec.heads
    x = {"BHLD": ["B", h, "L"], "BLHD": ["B", "L", h], "NLD": ["N", "L"]}[spec.layout] + [spec.head_dim]
    lead = {
        "LR": ["L"],
        "11LR": [1, 1, "L"],
        "B1LR": ["B", 1, "L"],
        "1HLR": [1, h, "L"],
        "BHLR": ["B", h, "L"],
        "1BHLR": [1, "B", h, "L"],
        "BL1R": ["B", "L", 1],
        "L1R": ["L", 1],
        "1L1R": [1, "L", 1],
        "BLHR": ["B", "L", h],
        "1BLHR": [1, "B", "L", h],
        "1LR": [1, "L"],
        "NLR": ["N", "L"],
        "1NLR": [1, "N", "L"],
    }
    table = lead[spec.table] + [spec.table_width]
    if spec.mutation == "expanding_table":
        x = [*x[:-3], 1, *x[-2:]] if spec.layout == "BHLD" else [*x[:-2], 1, x[-1]]
        table = {"BHLD": ["B", h, "L"], "BLHD": ["B", "L", h], "NLD": ["N", "L"]}[spec.layout] + [
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


def _site(g: _G, spec: SiteSpec, x: str, cos: str, sin: str, other: str) -> tuple[str, list[str]]:
    """One RoPE site over ``x`` reading the tables ``cos``/``sin``; returns (output, extra outputs).

    ``other`` is a second input of the same shape family (k for q), used by the ``cross`` mutation.
    """
    outputs: list[str] = []
    if spec.cast == "upcast":  # x upcast to float32 around the site (tables cast by the caller)
        x = g.op("Cast", [x], to=TensorProto.FLOAT)
        other = g.op("Cast", [other], to=TensorProto.FLOAT) if spec.mutation == "cross" else other
    site_dtype = "float32" if spec.cast == "upcast" else spec.dtype
    partial = spec.rotary_dim < spec.head_dim or spec.empty_passthrough
    if partial:
        r = (
            g.op("Slice", [g.op("Shape", [cos]), g.ints(-1), g.ints(INT64_MAX), g.ints(0)])
            if spec.bounds == "cos_shape" and not spec.seed_form
            else g.ints(spec.rotary_dim)
        )
        xr = g.last_slice(x, 0, r)
        cut = g.ints(spec.rotary_dim - 2) if spec.mutation == "overlap_passthrough" else r
        xp = g.last_slice(x, cut, INT64_MAX)
        if spec.mutation == "passthrough_neg":
            xp = g.op("Neg", [xp])
    else:
        xr = x
    if spec.cast == "noop":  # a Cast to the type it already has, inside the site
        xr = g.op("Cast", [xr], to=ONNX_TYPE[site_dtype])
    if spec.mutation == "scaled_x":
        xr = g.op("Mul", [xr, g.scalar(2.0, site_dtype)])
    if spec.mutation == "reversed_cos":  # a permuted table is still exactly RoPE (with that table)
        cos = g.last_slice(cos, -1, -INT64_MAX, -1)
    if spec.seed_form:
        even, odd = _pairs(g, spec, xr)
        y1 = g.op("Sub", [_mul(g, spec, even, cos), _mul(g, spec, odd, sin)])
        second = [_mul(g, spec, even, sin), _mul(g, spec, odd, cos)]
        op2 = "Sub" if spec.mutation == "sub_sign" else "Add"
        y2 = g.op(op2, second[::-1] if spec.swap_add else second)
        yr = _interleave(g, y1, y2)
    else:
        source = xr
        if spec.mutation == "cross":  # rotate the other input's channels: not a rotation of x
            source = g.last_slice(other, 0, spec.rotary_dim) if partial else other
        if spec.interleaved:
            even, odd = _pairs(g, spec, source)
            n_odd = (
                g.op("Mul", [odd, g.scalar(-1.0, site_dtype)]) if spec.neg == "mul" else g.op("Neg", [odd])
            )
            if spec.mutation == "double_neg":
                even = g.op("Neg", [even])
            rot = _interleave(g, *((even, n_odd) if spec.mutation == "concat_swapped" else (n_odd, even)))
            if spec.mutation == "neg_missing":
                rot = _interleave(g, odd, even)
        else:
            rot = _rotate_half(g, replace(spec, dtype=site_dtype), source)
        if spec.mutation == "scaled_rot":
            rot = g.op("Mul", [rot, g.scalar(2.0, site_dtype)])
        table_a, table_b = (sin, cos) if spec.mutation == "tables_swapped" else (cos, sin)
        direct = _mul(g, spec, xr, table_a)
        rotated = _mul(g, spec, rot, table_a if spec.mutation == "cos_on_rot" else table_b)
        if spec.extra_consumer or spec.extra_output == "direct":
            outputs.append(direct)
        if spec.extra_output == "rot":
            outputs.append(rot)
        if spec.extra_output == "rotated":
            outputs.append(rotated)
        if spec.extra_output == "consumer":  # another node reads an intermediate of the site
            outputs.append(g.op("Abs", [rot]))
        op = "Sub" if spec.mutation == "sub_sign" else "Add"
        yr = g.op(op, [rotated, direct] if spec.swap_add else [direct, rotated])
    if spec.extra_output == "xr" and partial:
        outputs.append(xr)
    y = g.op("Concat", [yr, xp], axis=-1) if partial else yr
    if spec.cast == "upcast":
        y = g.op("Cast", [y], to=ONNX_TYPE[spec.dtype])
    return y, outputs


def build(spec: SiteSpec, opset: int = 17) -> onnx.ModelProto:
    g = _G()
    x_shape, t_shape = _shapes(spec)
    dtype = ONNX_TYPE[spec.dtype]
    table_type = TensorProto.FLOAT if spec.table_cast else dtype
    site_type = TensorProto.FLOAT if spec.cast == "upcast" else dtype
    cos, sin = "cos", "sin"
    if spec.table_cast or table_type != site_type:
        cos, sin = (g.op("Cast", [t], to=site_type) for t in (cos, sin))
    inputs = ["x", "k"] if spec.sites == 2 else ["x"]
    outputs: list[tuple[str, int, bool]] = []  # (name, element type, is a site output)
    for number, name in enumerate(inputs):
        # Mutations change the first site only; the k site stays a true site sharing the tables.
        site_spec = spec if number == 0 else replace(spec, mutation="", extra_consumer=False, extra_output="")
        y, extra = _site(g, site_spec, name, cos, sin, other=inputs[-1])
        out = "y" if number == 0 else f"y_{name}"
        g.nodes.append(helper.make_node("Identity", [y], [out], name=f"out_{name}"))
        outputs.append((out, dtype, True))
        outputs += [(o, site_type, False) for o in extra]  # intermediates have the site's type
    graph_inputs = [helper.make_tensor_value_info("x", dtype, x_shape)]
    if spec.sites == 2:
        graph_inputs.append(helper.make_tensor_value_info("k", dtype, _k_shape(spec)))
    rank = [None] * max(len(x_shape), len(t_shape))
    graph = helper.make_graph(
        g.nodes,
        "rope_site",
        [
            *graph_inputs,
            helper.make_tensor_value_info("cos", table_type, t_shape),
            helper.make_tensor_value_info("sin", table_type, t_shape),
        ],
        [helper.make_tensor_value_info(o, t, rank if site else None) for o, t, site in outputs],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    # Intermediates that are outputs declare the shape exporters write: the inferred one.
    inferred = {v.name: v.type for v in onnx.shape_inference.infer_shapes(model).graph.output}
    for output in model.graph.output:
        if not output.type.tensor_type.HasField("shape"):
            known = inferred.get(output.name)
            if known is not None and known.tensor_type.HasField("shape"):
                output.type.CopyFrom(known)
            else:
                output.type.CopyFrom(helper.make_tensor_type_proto(output.type.tensor_type.elem_type, rank))
    return model


def stacked(spec: SiteSpec, layers: int, opset: int = 17) -> onnx.ModelProto:
    """``layers`` sites one after another, as a model's layers are: each rotates the Relu of the one
    before (a leaf for the tracer, as a layer's MatMuls are) and all read the same ``cos``/``sin``
    (one table, ``layers`` readers).  Inputs ``x``, ``cos``, ``sin``; output ``y``."""
    g = _G()
    x_shape, t_shape = _shapes(spec)
    dtype = ONNX_TYPE[spec.dtype]
    h = "x"
    for _ in range(layers):
        y, _extra = _site(g, spec, h, "cos", "sin", other=h)
        h = g.op("Relu", [y])
    g.nodes.append(helper.make_node("Identity", [h], ["y"], name="out"))
    shapes = {"x": x_shape, "cos": t_shape, "sin": t_shape}
    inputs = [helper.make_tensor_value_info(name, dtype, shape) for name, shape in shapes.items()]
    output = helper.make_tensor_value_info("y", dtype, x_shape)
    graph = helper.make_graph(g.nodes, "rope_layers", inputs, [output], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _k_shape(spec: SiteSpec) -> list:
    """k of a two-site graph: x's shape without the expanding-table mutation, ``kv_heads`` heads."""
    x, _ = _shapes(replace(spec, mutation="", heads=spec.kv_heads or spec.heads))
    return x


def feeds(spec: SiteSpec, batch: int = 2, length: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x_shape, t_shape = _shapes(spec)
    sizes = {"B": batch, "L": length, "N": batch * spec.heads}
    shapes = {"x": x_shape, "cos": t_shape, "sin": t_shape}
    if spec.sites == 2:
        shapes["k"] = _k_shape(spec)
    table_dtype = np.float32 if spec.table_cast else NP[spec.dtype]
    return {
        name: rng.standard_normal([sizes.get(d, d) for d in shape]).astype(
            table_dtype if name in ("cos", "sin") else NP[spec.dtype]
        )
        for name, shape in shapes.items()
    }
