"""Lying ``value_info``: true and look-alike RoPE sites whose shape declarations say something else.

The shape rule (``rope_onnx/graph/shapes.py``) infers shapes on a copy without the model's
``value_info``; a declaration only fills what inference leaves unknown, and one that contradicts
inference makes the dim unknown; a dim only a declaration sizes yields to what the graph proves.
:func:`lying_cases` tests that rule the hostile way: it draws a site — a :func:`strategies.rope_cases`
draw (true sites, mutants, look-alikes), a plain site whose tables meet x through other symbols and
value-preserving ops (:func:`_table_site`), or one whose tables are computed from x's or another
input's rows (:func:`_computed_site`) — and plants ONE kind of lie (:data:`LIES`) into one to three
of its tensors.  The judge is :func:`property_oracle.check_lies`: whatever the lie, a fused model
must compute what the graph computes (ONNX Runtime on random feeds, each RoPECustomer returning
x's shape), and the pass must not crash.  Where ORT refuses a lying model (its own inference or
buffer planning trusts the declaration) it runs again with the planted entries removed
(:func:`strip`); the sweep counts how often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper

#: The kinds of lie, each planted into value_info (or the graph's outputs) of a site:
LIES = (
    "width",  # a static last dim that is not the tensor's (16 where 8)
    "one_for_symbol",  # 1 where the dim is a symbol or >= 2 (a table that seems to broadcast)
    "symbol_for_dim",  # a symbol (seq, L, unk__0, ...) where the dim is a static size
    "symbol_swap",  # another symbol where the dim is one (batch where heads, x's L on a table's P)
    "rank",  # one dim too many or too few
    "elem_type",  # float16 where float, int64 where float, ...
    "table_broadcast",  # a table that is [B,H,L,D] declared [1,1,L,D]
    "output",  # a graph output whose declared type disagrees with what the graph computes
    "phantom",  # value_info for tensors that do not exist (node names, near misses)
    "duplicate",  # the same tensor declared twice, the true type and a lie, in either order
    "input_shadow",  # value_info re-declaring a graph input or an initializer as something else
)
#: Symbols a lie may use: the sites' own, common exporter names, and inference's fresh names.
SYMBOLS = ("B", "L", "H", "P", "C", "G", "N", "seq", "batch", "unk__0", "unk__1", "unk__2")
_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT64)

Dims = list[int | str | None]


@dataclass(frozen=True)
class LyingCase:
    """``clean``: the site as the graph computes it; ``model``: the same graph with ``lie`` planted
    into the entries named ``planted`` (value_info names and graph outputs)."""

    clean: onnx.ModelProto
    model: onnx.ModelProto
    lie: str
    planted: tuple[str, ...]
    feed_sets: tuple
    expect: str  # the clean site: "fuse", "refuse" or "either"
    describe: str


def _dims(info: onnx.TypeProto) -> Dims | None:
    if not info.HasField("tensor_type") or not info.tensor_type.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
        for d in info.tensor_type.shape.dim
    ]


def true_types(model: onnx.ModelProto) -> dict[str, tuple[int, Dims | None]]:
    """Every tensor's (element type, dims) as inference sees the clean graph."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    graph = inferred.graph
    return {
        v.name: (v.type.tensor_type.elem_type, _dims(v.type))
        for v in (*graph.input, *graph.value_info, *graph.output)
    }


def _info(name: str, elem: int, dims: Dims | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


class _Liar:
    """Makes one lie of a kind about a tensor's true (element type, dims)."""

    def __init__(self, draw: st.DrawFn, symbols: tuple[str, ...]) -> None:
        self.draw, self.symbols = draw, symbols

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def other_symbol(self, not_this: object) -> str:
        return self.pick([s for s in self.symbols if s != not_this])

    def shape_lie(self, lie: str, elem: int, dims: Dims) -> tuple[int, Dims] | None:
        """The lying type, or None where this lie cannot be told about this tensor."""
        out = list(dims)
        axes = range(len(out))
        if lie == "width" and out:
            last = out[-1]
            out[-1] = (
                self.pick([v for v in (last * 2, last // 2, last + 2) if v > 0 and v != last])
                if isinstance(last, int) and last
                else self.pick((8, 16, 32))
            )
        elif lie == "one_for_symbol":
            where = [a for a in axes if out[a] != 1]
            if not where:
                return None
            out[self.pick(where)] = 1
        elif lie == "symbol_for_dim":
            where = [a for a in axes if isinstance(out[a], int)]
            if not where:
                return None
            out[self.pick(where)] = self.pick(self.symbols)
        elif lie == "symbol_swap":
            where = [a for a in axes if a != len(out) - 1 or not isinstance(out[a], int)]
            if not where:
                return None
            axis = self.pick(where)
            out[axis] = self.other_symbol(out[axis])
        elif lie == "rank":
            edit = self.pick(("drop", "lead_one", "lead_symbol", "trail"))
            if edit == "drop" and out:
                out = out[1:]
            elif edit == "trail":
                out = [*out, 1]
            else:
                out = [1 if edit == "lead_one" else self.pick(self.symbols), *out]
        elif lie == "elem_type":
            return self.pick([t for t in _FLOATS if t != elem]), out
        elif lie == "table_broadcast":
            if len(out) < 3 or all(d == 1 for d in out[:-2]):
                return None
            out[:-2] = [1] * (len(out) - 2)
        else:
            return None
        return (elem, out) if out != dims else None

    def any_lie(self, elem: int, dims: Dims) -> tuple[int, Dims] | None:
        kinds = ("width", "one_for_symbol", "symbol_for_dim", "symbol_swap", "rank", "elem_type")
        return self.shape_lie(self.pick(kinds), elem, dims)


def plant(
    draw: st.DrawFn, clean: onnx.ModelProto, lie: str
) -> tuple[onnx.ModelProto, tuple[str, ...]] | None:
    """``clean`` with ``lie`` told about one to three of its tensors, or None where it cannot be told."""
    graph = clean.graph
    types = true_types(clean)
    symbols = tuple(
        sorted(
            {d.dim_param for i in graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
            | set(SYMBOLS)
        )
    )
    liar = _Liar(draw, symbols)
    outputs = {o.name for o in graph.output}
    inner = [o for n in graph.node for o in n.output if o and o not in outputs and types.get(o, (0, None))[1]]
    inner = [name for name in inner if types[name][1] is not None]
    table_side = [name for name in inner if _reads_only(graph, name, {"cos", "sin", "pos"})]
    if draw(st.booleans()):  # half the time the operands of the site's products: where a lie bites
        operands = {i for n in graph.node if n.op_type == "Mul" for i in n.input}
        inner = [name for name in inner if name in operands] or inner
    entries: list[onnx.ValueInfoProto] = []
    model = onnx.ModelProto()
    model.CopyFrom(clean)
    count = draw(st.integers(1, 3))
    if lie == "output":
        planted = []
        for out in draw(st.permutations(list(model.graph.output)))[:count]:
            elem, dims = types.get(out.name, (out.type.tensor_type.elem_type, None))
            told = liar.any_lie(elem, dims if dims is not None else [None] * 4)
            if told is not None:
                out.type.CopyFrom(helper.make_tensor_type_proto(told[0], told[1]))
                planted.append(out.name)
        return (model, tuple(planted)) if planted else None
    if lie == "phantom":
        names = [n.name for n in graph.node if n.name] + [f"{t}_" for t in inner] + ["x_rot", "cos_cached"]
        known = set(types) | {t.name for t in graph.initializer}
        for name in draw(st.permutations([n for n in names if n not in known]))[:count]:
            rank = draw(st.integers(0, 4))
            dims = [liar.pick((1, 2, 8, 16, *symbols)) for _ in range(rank)]
            entries.append(_info(name, liar.pick(_FLOATS), dims))
    elif lie == "input_shadow":
        shadows = [i.name for i in graph.input] + [t.name for t in graph.initializer]
        for name in draw(st.permutations(shadows))[:count]:
            init = next((t for t in graph.initializer if t.name == name), None)
            elem, dims = (init.data_type, list(init.dims)) if init is not None else types[name]
            told = liar.any_lie(elem, dims if dims is not None else [])
            if told is not None:
                entries.append(_info(name, *told))
    else:
        pool = table_side if lie == "table_broadcast" else inner
        for name in draw(st.permutations(pool))[:count] if pool else []:
            elem, dims = types[name]
            told = liar.any_lie(elem, dims) if lie == "duplicate" else liar.shape_lie(lie, elem, dims)
            if told is None:
                continue
            lying = _info(name, *told)
            if lie == "duplicate":
                truth = _info(name, elem, dims)
                entries.extend([truth, lying] if draw(st.booleans()) else [lying, truth])
            else:
                entries.append(lying)
    if not entries:
        return None
    model.graph.value_info.extend(entries)
    return model, tuple(sorted({e.name for e in entries}))


def _reads_only(graph: onnx.GraphProto, name: str, sources: set[str]) -> bool:
    """Whether every graph input ``name`` depends on is one of ``sources``."""
    producer = {o: n for n in graph.node for o in n.output}
    inputs = {i.name for i in graph.input}
    seen, todo, found = set(), [name], set()
    while todo:
        tensor = todo.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        if tensor in inputs:
            found.add(tensor)
        elif tensor in producer:
            todo.extend(i for i in producer[tensor].input if i)
    return bool(found) and found <= sources


def strip(model: onnx.ModelProto, clean: onnx.ModelProto, planted: tuple[str, ...]) -> onnx.ModelProto:
    """``model`` without the planted entries: their value_info dropped, the outputs typed as in ``clean``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [v for v in out.graph.value_info if v.name not in planted]
    del out.graph.value_info[:]
    out.graph.value_info.extend(kept)
    truth = {o.name: o.type for o in clean.graph.output}
    for output in out.graph.output:
        if output.name in planted and output.name in truth:
            output.type.CopyFrom(truth[output.name])
    return out


# ------------------------------------------------------------------------- the sites lied about
def _table_site(draw: st.DrawFn, broadcast: bool = False) -> tuple[onnx.ModelProto, tuple, str, str]:
    """A rotate_half site whose tables meet x through other symbols and value-preserving ops.

    ``broadcast``: the tables have a leading dim that is not 1 and reach the site through an op,
    so that a declaration can claim they broadcast."""
    from trust_graphs import D, Graph, symbol_feeds

    g = Graph()
    x_dims: list = [draw(st.sampled_from(("B", 2, 1))), draw(st.sampled_from((3, 1, "H"))), 0, D]
    x_dims[2] = draw(st.sampled_from(("L", "L", 1, 5)))
    table: list = [
        draw(st.sampled_from((1, 1, "B", "C"))),
        draw(st.sampled_from((1, 1, x_dims[1], "G", "H"))),
        draw(st.sampled_from(("L", "L", "P", 1, x_dims[2]))),
        D,
    ]
    if broadcast:
        table[draw(st.integers(0, 1))] = draw(st.sampled_from(("B", "C", "G", "H", x_dims[1])))
    elif draw(st.booleans()):
        table = table[draw(st.integers(1, 2)) :]
    offset = len(x_dims) - len(table)
    ok = all(
        t == 1 or t == d or (isinstance(d, int) and d >= 2 and isinstance(t, str))
        for t, d in zip(table[:-1], x_dims[offset:-1], strict=False)
    )
    x = "x"
    x_chain = draw(st.sampled_from(("", "", "Identity", "Cast")))
    if x_chain:
        x = g.op(x_chain, [x], **({"to": TensorProto.FLOAT} if x_chain == "Cast" else {}))
    chain = draw(
        st.sampled_from(
            ("Identity", "Cast", "Mul1") if broadcast else ("", "Identity", "Cast", "Mul1", "Unsqueeze")
        )
    )
    declared = table
    if chain == "Unsqueeze":  # a rank-2 table made rank 4 in-graph: [P, D] -> [1, 1, P, D]
        declared, table = table[-2:], [1, 1, *table[-2:]]
        ok = all(t == 1 or t == d or (isinstance(d, int) and d >= 2 and isinstance(t, str))
                 for t, d in zip(table[:-1], x_dims[:-1], strict=True))  # fmt: skip
    tables = []
    for name in ("cos", "sin"):
        if chain == "Identity":
            name = g.op("Identity", [name])
        elif chain == "Cast":
            name = g.op("Cast", [name], to=TensorProto.FLOAT)
        elif chain == "Mul1":
            name = g.op("Mul", [name, g.const(1.0, np.float32)])
        elif chain == "Unsqueeze":
            name = g.op("Unsqueeze", [name, g.const([0, 1])])
        tables.append(name)
    mid = None
    if draw(st.booleans()):  # x.shape[-1] // 2 in-graph: a width declaration could move the cut
        last = g.op("Gather", [g.op("Shape", [x]), g.const(-1)], axis=0)
        mid = g.op("Unsqueeze", [g.op("Div", [last, g.const(2)]), g.const([0])])
    y = g.rope(x, *tables, mid=mid)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    model = g.model([("x", x_dims), ("cos", declared), ("sin", declared)], ["y"])
    sizes = {"B": (1, 2), "H": (1, 3), "L": (1, 4), "C": (2, 1), "G": (3, 1), "P": (4, 1)}
    inputs = [("x", x_dims), ("cos", declared), ("sin", declared)]
    feed_sets = symbol_feeds(draw(st.integers(0, 2**16)), sizes, inputs)
    describe = f"x {x_dims} table {declared} via {chain or 'input'} x via {x_chain or 'input'}"
    expect = "refuse" if not ok else "either" if chain or x_chain else "fuse"
    return model, feed_sets, expect, describe


def _computed_site(draw: st.DrawFn) -> tuple[onnx.ModelProto, tuple, str, str]:
    """A site whose tables are computed in-graph, as exporters write them: positions
    ``Range(0, rows)`` times the inverse frequencies, ``Cos``/``Sin``, ``Unsqueeze`` to rank 4.
    ``rows`` is x's own position dim (a true site) or another input's (``pos``: [1, P] or
    [1, L]), which x's position dim may or may not equal."""
    from trust_graphs import D, Graph

    g = Graph()
    x_dims: list = ["B", draw(st.sampled_from((3, 1, "H"))), draw(st.sampled_from(("L", "L", 1, 5))), D]
    rows_of = draw(st.sampled_from(("x", "P", "L")))
    source, axis = ("x", 2) if rows_of == "x" else ("pos", 1)
    cos, sin = g.computed_tables(source, axis)
    y = g.rope("x", cos, sin)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    inputs = [("x", x_dims)] + ([("pos", [1, rows_of])] if source == "pos" else [])
    model = g.model(inputs, ["y"])
    lx = x_dims[2]
    ok = rows_of == "x" or lx == rows_of or (isinstance(lx, int) and lx >= 2)
    sizes = {"B": (1, 2), "H": (3, 1), "L": (1, 4), "P": (4, 1)}
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    feed_sets = []
    for pick in range(3):
        values = {k: v[pick % 2] for k, v in sizes.items()} | ({"P": 4, "L": 4} if pick == 2 else {})
        feeds = {"x": rng.standard_normal([values.get(d, d) for d in x_dims]).astype(np.float32)}
        if source == "pos":
            feeds["pos"] = np.zeros([1, values[rows_of]], np.float32)
        feed_sets.append(feeds)
    return model, tuple(feed_sets), "either" if ok else "refuse", f"x {x_dims} tables of {rows_of} rows"


@st.composite
def lying_cases(draw: st.DrawFn, lie: str | None = None) -> LyingCase:
    """A site (true, mutant or look-alike) with one kind of lie (``lie``, or drawn) planted into its
    declarations."""
    from rope_graphs import build, feeds
    from strategies import rope_cases

    lie = lie or draw(st.sampled_from(LIES))
    for _ in range(8):  # a lie that cannot be told about this site: draw another site
        site = (
            "tables"
            if lie == "table_broadcast"
            else draw(st.sampled_from(("spec", "spec", "tables", "computed")))
        )
        if site == "computed":
            clean, feed_sets, expect, describe = _computed_site(draw)
        elif site == "spec":
            case = draw(rope_cases())
            clean = build(case.spec)
            feed_sets = (feeds(case.spec, length=1, seed=1), feeds(case.spec, batch=2, length=4, seed=2))
            expect = "fuse" if not case.mutant_sites else "either"
            describe = repr(case.spec)
        else:
            clean, feed_sets, expect, describe = _table_site(draw, lie == "table_broadcast")
        planted = plant(draw, clean, lie)
        if planted is not None:
            model, names = planted
            return LyingCase(clean, model, lie, names, feed_sets, expect, f"{lie} on {names}: {describe}")
    raise AssertionError(f"no site could be told the lie {lie!r}")  # never with these sites
