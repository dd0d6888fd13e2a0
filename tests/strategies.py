"""Hypothesis strategies: RoPE sites as exporters vary them, their mutants, and random look-alikes.

Two generators feed the fusion oracle (:mod:`property_oracle`):

* :func:`rope_cases` draws a :class:`~rope_graphs.SiteSpec` — formulation, layout, rank, head_dim,
  rotary_dim, dtype, bounds, Split vs Slice, Neg vs Mul(-1), operand orders, Cast placement, table
  broadcast form, intermediates that are graph outputs, two sites sharing tables — and, for some
  draws, a mutation.  Each case says how many sites are true (must fuse) and how many are mutants
  (may fuse only if the fused model is still exact).
* :func:`lookalike_graphs` builds random *valid* graphs from the ops a RoPE site is made of
  (Slice/Split/Gather/Concat/Neg/Mul/Add/Sub, pair reshapes) over x and the tables, biased towards
  ``A·T1 ± B·T2`` where A and B are random channel shuffles of x: where a wrong fusion would hide.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import helper
from rope_graphs import (
    _G,
    INT64_MAX,
    MORE_MUTATIONS,
    MORE_STILL_ROPE,
    MUTATIONS,
    ONNX_TYPE,
    REFUSED_TABLE_FORMS,
    STILL_ROPE,
    TABLE_FORMS,
    SiteSpec,
    _interleave,
)

SPLITS = {"half": ("slice", "split"), "interleaved": ("step2", "gather", "split", "slice")}


@dataclass(frozen=True)
class RopeCase:
    spec: SiteSpec
    true_sites: int  # sites that must fuse
    mutant_sites: int  # sites that may fuse only if the result stays exact


def _mutations(form: str, partial: bool, sites: int) -> list[str]:
    found = list(MUTATIONS[form])
    for name, (forms, needs) in MORE_MUTATIONS.items():
        if form in forms and (needs != "partial" or partial) and (needs != "two_sites" or sites == 2):
            found.append(name)
    return found


@st.composite
def rope_cases(draw: st.DrawFn) -> RopeCase:
    form = draw(st.sampled_from(("half", "interleaved", "seed")))
    head_dim = draw(st.integers(1, 16)) * 2
    rotary_dim = draw(st.integers(1, head_dim // 2)) * 2
    partial = rotary_dim < head_dim
    layout = draw(st.sampled_from(("BHLD", "BLHD", "NLD")))
    sites = draw(st.sampled_from((1, 1, 2)))
    heads = draw(st.integers(1, 4))
    static_heads_table = {"1HLR", "BHLR", "BLHR"}
    table = draw(st.sampled_from(TABLE_FORMS[layout]))
    kv_heads = 0
    if sites == 2 and table not in static_heads_table and layout != "NLD":
        kv_heads = draw(st.sampled_from((0, 1)))
    split = (
        draw(st.sampled_from(SPLITS["interleaved"] if form != "half" else SPLITS["half"]))
        if form != "seed"
        else draw(st.sampled_from(("step2", "gather", "split", "slice")))
    )
    bounds_options = ("const", "cos_shape") if partial and form != "seed" else ("const", "shape")
    kind = draw(st.sampled_from(("true", "true", "true", "mutant", "mutant", "still_rope", "bad_table")))
    mutation = ""
    if kind == "mutant":
        mutation = draw(st.sampled_from(_mutations(form, partial, sites)))
        if mutation == "expanding_table":  # x has a 1 where the table has heads: full rotary only
            sites, rotary_dim, partial = 1, head_dim, False
        if mutation == "mixed_pairs":
            split = "step2"
    elif kind == "still_rope":
        options = [*STILL_ROPE, "reversed_cos"] + (["tables_swapped"] if form != "seed" else [])
        mutation = draw(st.sampled_from(options))
    elif kind == "bad_table":
        table = REFUSED_TABLE_FORMS[layout][0]
    spec = SiteSpec(
        head_dim=head_dim,
        rotary_dim=rotary_dim,
        interleaved=form != "half",
        layout=layout,
        dtype=draw(st.sampled_from(("float32", "float16"))),
        heads=heads,
        split=split,
        neg=draw(st.sampled_from(("neg", "mul"))),
        bounds=draw(st.sampled_from(bounds_options)),
        seed_form=form == "seed",
        swap_mul=draw(st.booleans()),
        swap_add=draw(st.booleans()),
        table=table,
        table_cast=draw(st.booleans()),
        empty_passthrough=not partial and mutation != "expanding_table" and draw(st.booleans()),
        extra_output=draw(
            st.sampled_from(("", "", "direct", "rot", "rotated", "consumer") + (("xr",) if partial else ()))
        )
        if form != "seed"
        else draw(st.sampled_from(("", "xr") if partial else ("",))),
        cast=draw(st.sampled_from(("", "", "upcast", "noop"))),
        sites=sites,
        kv_heads=kv_heads,
        mutation=mutation,
    )
    assert mutation in (*MORE_STILL_ROPE, *STILL_ROPE, *_mutations(form, partial, sites), "")
    if kind == "bad_table":
        return RopeCase(spec, 0, sites)
    if kind == "mutant":
        return RopeCase(spec, sites - 1, 1)
    if mutation == "scaled_x" and partial and spec.bounds == "cos_shape":
        # RoPE of x·2 whose width shape inference cannot fold (bound read from cos's shape): the
        # pass cannot know the scaled tensor's width, so it may skip (a miss, never wrong).
        return RopeCase(spec, sites - 1, 1)
    return RopeCase(spec, sites, 0)


# --------------------------------------------------------------------------- random look-alikes
@dataclass(frozen=True)
class Lookalike:
    model: onnx.ModelProto
    shapes: dict[str, list[int]]  # concrete input shapes for feeds
    dtype: str


class _Builder:
    """Random channel computations over x [B,H,L,D] and tables [L,D] (and half-width tables)."""

    def __init__(self, draw: st.DrawFn, dims: int, dtype: str) -> None:
        self.draw, self.d, self.dtype, self.g = draw, dims, dtype, _G()

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def x_part(self, width: int, depth: int) -> str:
        """A width-channel tensor that is a shuffle (with signs) of x's channels."""
        kind = self.choice(
            ("slice", "gather", "concat", "neg", "pairs", "x") if depth else ("slice", "gather")
        )
        g = self.g
        if kind == "x" and width == self.d:
            return "x"
        if kind == "concat" and width >= 2:
            cut = self.draw(st.integers(1, width - 1))
            return g.op("Concat", [self.x_part(cut, depth - 1), self.x_part(width - cut, depth - 1)], axis=-1)
        if kind == "neg":
            inner = self.x_part(width, depth - 1)
            return (
                g.op("Neg", [inner])
                if self.draw(st.booleans())
                else g.op("Mul", [inner, g.scalar(-1.0, self.dtype)])
            )
        if kind == "pairs" and width % 2 == 0:
            return _interleave(g, self.x_part(width // 2, depth - 1), self.x_part(width // 2, depth - 1))
        if kind == "slice":
            for step in self.draw(st.permutations([1, 2, -1])):
                starts = [s for s in range(self.d) if len(range(self.d)[s::step][:width]) == width]
                if starts:
                    start = self.choice(starts)
                    stop = start + step * width
                    end = stop if stop >= 0 else -INT64_MAX
                    return g.last_slice("x", start, end, step)
        indices = self.draw(st.lists(st.integers(0, self.d - 1), min_size=width, max_size=width))
        return g.op("Gather", ["x", g.ints(*indices)], axis=-1)

    def table(self, width: int) -> str:
        name = self.choice(("cos", "sin", "cos_half", "sin_half"))
        size = self.d // 2 if name.endswith("half") else self.d
        if width == size and self.draw(st.booleans()):
            return name
        indices = self.draw(st.lists(st.integers(0, size - 1), min_size=width, max_size=width))
        return self.g.op("Gather", [name, self.g.ints(*indices)], axis=-1)

    def product(self, width: int, depth: int) -> str:
        a, t = self.x_part(width, depth), self.table(width)
        return self.g.op("Mul", [a, t] if self.draw(st.booleans()) else [t, a])

    def near_rotation(self, width: int) -> tuple[str, str]:
        """(a width-channel window of x, a rotation of it), sometimes perturbed by a swap or sign flip."""
        g, half = self.g, width // 2
        offset = self.draw(st.integers(0, self.d - width))  # a window of x, as NeoX slices q out of qkv
        xr = "x" if width == self.d else g.last_slice("x", offset, offset + width)
        if self.draw(st.booleans()):
            first, second = g.last_slice(xr, 0, half), g.last_slice(xr, half, INT64_MAX)
            rot = g.op("Concat", [g.op("Neg", [second]), first], axis=-1)
        else:
            even, odd = g.last_slice(xr, 0, INT64_MAX, 2), g.last_slice(xr, 1, INT64_MAX, 2)
            rot = _interleave(g, g.op("Neg", [odd]), even)
        perturb = self.choice(("none", "none", "swap", "sign"))
        if perturb == "swap" and width > 2:
            i, j = self.draw(st.permutations(range(width)))[:2]
            order = list(range(width))
            order[i], order[j] = j, i
            rot = g.op("Gather", [rot, g.ints(*order)], axis=-1)
        elif perturb == "sign":
            cut = self.draw(st.integers(1, width))
            flipped = g.op("Neg", [g.last_slice(rot, 0, cut)])
            rot = (
                flipped
                if cut == width
                else g.op("Concat", [flipped, g.last_slice(rot, cut, INT64_MAX)], axis=-1)
            )
        return xr, rot

    def rope_like(self, width: int, depth: int) -> str:
        if self.draw(st.booleans()):
            xr, rot = self.near_rotation(width)
            terms = [self.g.op("Mul", [xr, self.table(width)]), self.g.op("Mul", [rot, self.table(width)])]
            return self.g.op("Add", terms if self.draw(st.booleans()) else terms[::-1])
        op = self.choice(("Add", "Add", "Sub"))
        return self.g.op(op, [self.product(width, depth), self.product(width, depth)])


@st.composite
def lookalike_graphs(draw: st.DrawFn) -> Lookalike:
    dims = draw(st.integers(1, 6)) * 2
    dtype = draw(st.sampled_from(("float32", "float32", "float16")))
    b = _Builder(draw, dims, dtype)
    width = draw(st.integers(1, dims // 2)) * 2
    depth = draw(st.integers(1, 3))
    y = b.rope_like(width, depth) if draw(st.integers(0, 4)) else b.product(width, depth)
    if width < dims or draw(st.booleans()):
        rest = b.x_part(dims - width, depth) if width < dims else None
        y = b.g.op("Concat", [y, rest], axis=-1) if rest else y
    g = b.g
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    dtype_id = ONNX_TYPE[dtype]
    inputs = [
        helper.make_tensor_value_info("x", dtype_id, ["B", 3, "L", dims]),
        *(helper.make_tensor_value_info(n, dtype_id, ["L", dims]) for n in ("cos", "sin")),
        *(helper.make_tensor_value_info(n, dtype_id, ["L", dims // 2]) for n in ("cos_half", "sin_half")),
    ]
    graph = helper.make_graph(
        g.nodes, "lookalike", inputs, [helper.make_tensor_value_info("y", dtype_id, None)], g.inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    shapes = {"x": [2, 3, 5, dims], "cos": [5, dims], "sin": [5, dims]}
    shapes |= {"cos_half": [5, dims // 2], "sin_half": [5, dims // 2]}
    return Lookalike(model, shapes, dtype)


def lookalike_feeds(case: Lookalike, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    np_type = np.float16 if case.dtype == "float16" else np.float32
    return {name: rng.standard_normal(shape).astype(np_type) for name, shape in case.shapes.items()}


# --------------------------------------------------------------------------- loader fuzzing
@functools.cache
def seed_models() -> tuple[bytes, ...]:
    """Small valid models to mutate: a half site, an interleaved two-site graph, a seed-form site."""
    from rope_graphs import build

    specs = [
        SiteSpec(head_dim=8, rotary_dim=8),
        SiteSpec(head_dim=8, rotary_dim=4, interleaved=True, split="gather", sites=2, dtype="float16"),
        SiteSpec(head_dim=8, rotary_dim=8, interleaved=True, seed_form=True, bounds="shape"),
    ]
    return tuple(build(spec).SerializeToString() for spec in specs)


@st.composite
def mutated_models(draw: st.DrawFn) -> bytes:
    """A valid model's bytes with a few flips, overwrites, insertions, deletions or a truncation."""
    data = bytearray(draw(st.sampled_from(seed_models())))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        at = draw(st.integers(0, len(data) - 1))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set":
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
        if not data:
            break
    return bytes(data)


def exercise_loader(data: bytes, path) -> None:
    """What ``rope-onnx fuse`` does with a file: load (graph only, validated), then fuse in memory.

    Only :class:`~rope_onnx.errors.RopeOnnxError` may escape; anything else is a crash.
    """
    from rope_onnx.errors import RopeOnnxError
    from rope_onnx.fusion import fuse_model
    from rope_onnx.io.load import load_model

    path.write_bytes(data)
    with contextlib.suppress(RopeOnnxError):
        fuse_model(load_model(path).model)


# ------------------------------------------------------------------ hostile facts (issue 11)
@dataclass(frozen=True)
class TrustCase:
    """One hand-built site whose bound, table shape or neighbours are written the hostile way.

    ``expect``: "fuse" (the site is exactly RoPE and provably so), "refuse" (a fact the proof
    needs is unknown or false), or "either" (may fuse, but only exactly).  ``user_node``: the
    domain of a RoPECustomer the model already holds (None: none), which must survive untouched.
    """

    model: onnx.ModelProto
    feed_sets: tuple
    expect: str
    domain: str
    user_node: str | None
    describe: str


_INT_TYPES = {"int8": (8, 3), "uint8": (8, 2), "int16": (16, 5), "uint16": (16, 4), "int32": (32, 6)}


@st.composite
def trust_cases(draw: st.DrawFn) -> TrustCase:
    """Wrapping integer bounds, int64 overflow, broadcasting tables with other symbols, overridable
    tables and pre-existing RoPECustomer nodes/functions, each with the outcome ONNX implies."""
    from trust_graphs import INT64_MAX, D, Graph, symbol_feeds

    g = Graph()
    kind = draw(st.sampled_from(("wrap_mid", "wrap_table", "overflow", "tables", "tables", "plain")))
    expect, describe = "fuse", kind
    mid = None
    cos = "cos"
    if kind == "wrap_mid":  # Cast(8 + k * 2**bits, to=T) is 8: must fuse
        name = draw(st.sampled_from(sorted(_INT_TYPES)))
        bits, onnx_type = _INT_TYPES[name]
        k = draw(st.integers(-3, 3))
        value = 8 + k * 2**bits
        describe = f"mid = Cast({value}, {name})"
        mid = g.op("Cast", [g.op("Cast", [g.const([value])], to=onnx_type)], to=7)
    elif kind == "wrap_table":  # cos[..., :Cast(w + k * 2**bits)]: the table is w wide in ONNX
        name = draw(st.sampled_from(sorted(_INT_TYPES)))
        bits, onnx_type = _INT_TYPES[name]
        width = draw(st.sampled_from((1, 2, 8, D)))
        value = width + draw(st.integers(1, 3)) * 2**bits
        describe = f"cos end = Cast({value}, {name}) = {width}"
        end = g.op("Cast", [g.op("Cast", [g.const([value])], to=onnx_type)], to=7)
        cos = g.last_slice("cos", g.const([0]), end)
        expect = "fuse" if width == D else "either"
    elif kind == "overflow":
        op = draw(st.sampled_from(("Add", "Mul", "Sub")))
        a, b = {"Add": (INT64_MAX, INT64_MAX), "Mul": (2**32, 2**32), "Sub": (-(2**63), INT64_MAX)}[op]
        fix = draw(st.sampled_from((8, 16, 1)))
        wrapped = ((a + b if op == "Add" else a * b if op == "Mul" else a - b) + 2**63) % 2**64 - 2**63
        target = g.op("Add", [g.op(op, [g.const([a]), g.const([b])]), g.const([fix - wrapped])])
        describe = f"{op} overflow wrapping to {fix}"
        if draw(st.booleans()):
            mid = target
        else:
            cos = g.last_slice("cos", g.const([0]), target)
        expect = "refuse"
    x_dims: list = ["B", draw(st.sampled_from((3, 1, "H"))), "L", D]
    table: list = [1, 1, "L", D]
    if kind == "tables":
        table = [
            draw(st.sampled_from((1, "B", "C"))),
            draw(st.sampled_from((1, x_dims[1], "G"))),
            draw(st.sampled_from((1, "L", "P"))),
            D,
        ]
        if draw(st.booleans()):
            table = table[draw(st.integers(1, 2)) :]
        offset = len(x_dims) - len(table)
        ok = all(
            t == 1 or t == d or (isinstance(d, int) and d >= 2 and isinstance(t, str))
            for t, d in zip(table[:-1], x_dims[offset:-1], strict=False)
        )
        expect = "fuse" if ok else "refuse"
        describe = f"x {x_dims} table {table}"
    y = g.rope("x", cos, "sin", mid=mid)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    model = g.model([("x", x_dims), ("cos", table), ("sin", table)], ["y"])
    domain = draw(st.sampled_from(("", "", "user.rope", "rope_onnx.reference")))
    user_node = draw(st.sampled_from((None, None, "", "user.rope", "rope_onnx.reference")))
    if user_node is not None:
        node = helper.make_node(
            "RoPECustomer", ["x", "cos", "sin"], ["z"], name="users_own", domain=user_node
        )
        node.overload = draw(st.sampled_from(("", "i0_r16_float32", "i0_r16_float32_2")))
        model.graph.node.append(node)
        model.graph.output.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None))
        if user_node:
            model.opset_import.append(helper.make_opsetid(user_node, 1))
            function = helper.make_function(
                user_node,
                "RoPECustomer",
                ["x", "cos", "sin"],
                ["y"],
                [helper.make_node("Sub", ["x", "cos"], ["y"])],
                [helper.make_opsetid("", 17)],
            )
            function.overload = node.overload
            model.functions.append(function)
        model.ir_version = 10
    sizes = {"B": (1, 2), "H": (1, 3), "L": (1, 4), "C": (1, 2), "G": (1, 3), "P": (1, 4)}
    inputs = [("x", x_dims), ("cos", table), ("sin", table)]
    feed_sets = symbol_feeds(draw(st.integers(0, 2**16)), sizes, inputs)
    return TrustCase(model, feed_sets, expect, domain, user_node, describe)
