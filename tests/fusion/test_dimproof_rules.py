"""The per-op ``dims`` rules the per-axis table proof drives, one hand-built graph per rule.

Each test builds the few nodes one rule reads and asks :class:`DimProver` for the output's dims:
what the rule shows (a source name: a graph-input ``dim_param``, a ``Shape`` read, ``Min(C, s)``)
and, for each look-alike, that it shows nothing it cannot (the dim stays the tensor's own name,
``dim:<tensor>:<axis>``, equal to nothing else).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion.dimproof import DimProver, table_axis_problem
from rope_onnx.fusion.ops.dimnames import at_least_one_when_positive, min_dim, show_dim
from rope_onnx.fusion.ops.registry import fold_ints
from rope_onnx.graph.folding import NotStatic
from rope_onnx.graph.index import GraphIndex

INT64_MAX = 2**63 - 1


class G:
    """Nodes, int64 constants and float graph inputs; ``prove(name)`` answers for the graph built."""

    def __init__(self, **inputs: list) -> None:
        self.inputs = inputs
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.value_info: list[onnx.ValueInfoProto] = []

    def op(self, op_type: str, *inputs: str, domain: str = "", outputs: int = 1, **attrs: object) -> str:
        outs = [f"t{len(self.nodes)}_{k}" for k in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, f"n{len(self.nodes)}", domain=domain, **attrs)
        )
        return outs[0]

    def const(self, value: object, dtype: object = np.int64) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def hide(self, tensor: str) -> str:
        """``tensor`` through com.microsoft's QuickGelu: ONNX shape inference knows nothing after it,
        so whatever is shown about the tensors computed from it is shown by the op rules."""
        return self.op("QuickGelu", tensor, domain="com.microsoft")

    def dim(self, tensor: str, axis: int) -> str:
        """``Unsqueeze(Gather(Shape(tensor), axis))``: one entry of a shape vector, as exporters read it."""
        return self.op(
            "Unsqueeze", self.op("Gather", self.op("Shape", tensor), self.const(axis)), self.const([0])
        )

    def prove(self, name: str) -> list:
        dims = self.prove_or_none(name)
        assert dims is not None
        return dims

    def prove_or_none(self, name: str) -> list | None:
        """None: not even the rank is shown."""
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in self.inputs.items()],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)],
            initializer=self.inits,
            value_info=self.value_info,
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets)
        return DimProver(GraphIndex(model)).dims(name)


def own(name: str, axis: int) -> str:
    """The name a dim gets when nothing shows more: the Shape read of itself."""
    return f"dim:{name}:{axis}"


# ------------------------------------------------------------------ Shape reads and Reshape targets
def test_a_reshape_target_built_from_shape_reads_keeps_the_input_dims() -> None:
    """``Reshape(h, [Shape(h)[0], Shape(h)[1], -1, 16])`` behind an op inference cannot type."""
    g = G(h=["B", "L", 32])
    norm = g.op(
        "SkipSimplifiedLayerNormalization", "h", "h", g.const(np.ones(32), np.float32), domain="com.microsoft"
    )
    target = g.op("Concat", g.dim(norm, 0), g.dim(norm, 1), g.const([-1]), g.const([16]), axis=0)
    x = g.op("Transpose", g.op("Reshape", norm, target), perm=[0, 2, 1, 3])
    assert g.prove(x)[0] == "param:B" and g.prove(x)[2] == "param:L"


def test_declared_symbols_that_say_less_give_way_to_the_source() -> None:
    """onnxsim declares ``unk__39`` on a Reshape whose target is read from the Tile before it."""
    g = G(p=[1, "L", 8])
    tiled = g.op("Tile", g.op("Unsqueeze", g.hide("p"), g.const([3])), g.const([1, 1, 1, 2]))
    target = g.op(
        "Concat", g.op("Slice", g.op("Shape", tiled), g.const([0]), g.const([2])), g.const([-1]), axis=0
    )
    out = g.op("Reshape", tiled, target)
    g.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, "unk__39", 16]))
    assert g.prove(out) == [1, "param:L", 16]


def test_a_target_symbol_at_another_position_is_the_dim_with_allowzero() -> None:
    g = G(a=["L", 4], b=["M"])
    out = g.op("Reshape", g.hide("a"), g.op("Concat", g.const([4]), g.dim("b", 0), axis=0), allowzero=1)
    assert g.prove(out) == [4, "param:M"]


def test_a_reshape_counts_minus_one_from_static_dims() -> None:
    g = G(a=[2, 3, 8])
    assert g.prove(g.op("Reshape", g.hide("a"), g.const([2, -1, 4]))) == [2, 6, 4]


def test_an_opaque_target_entry_names_nothing() -> None:
    """``Shape(b)[0] - 1`` could be -1 (infer) or 0 (copy) at run time."""
    g = G(a=["L", 4], b=["L"])
    entry = g.op("Sub", g.dim("b", 0), g.const([1]))
    out = g.op("Reshape", "a", g.op("Concat", entry, g.const([4]), axis=0))
    assert g.prove(out)[0] not in ("param:L", 4)  # inference's own fresh symbol at most


# ------------------------------------------------------------------ run-time sliced caches
def _cache_slice(start: object, end_of: str, step: int = 1, axis_of_end: int = 1) -> tuple[G, str]:
    g = G(h=["B", "L", 32], p=["P"])
    cache = g.const(np.ones([1, 1, 128, 16]), np.float32)
    end = g.dim(end_of, axis_of_end if end_of == "h" else 0)
    out = g.op("Slice", cache, g.const([start]), end, g.const([2]), g.const([step]))
    return g, out


def test_a_cache_sliced_to_a_shape_read_is_min_of_its_length_and_the_read() -> None:
    g, out = _cache_slice(0, "h")
    assert g.prove(out) == [1, 1, min_dim(128, "param:L"), 16]
    assert show_dim(min_dim(128, "param:L")) == "Min(128, L)"


@pytest.mark.parametrize(
    "start, end_of, step, axis",
    [(1, "h", 1, 1), (0, "h", 2, 1), (0, "p", 1, 0), (0, "h", 1, 0)],
    ids=["start 1", "step 2", "another tensor's length", "another axis of h"],
)
def test_look_alike_cache_slices_are_not_min_of_x_length(
    start: int, end_of: str, step: int, axis: int
) -> None:
    g, out = _cache_slice(start, end_of, step, axis)
    assert g.prove(out)[2] != min_dim(128, "param:L")


def test_a_slice_end_of_arithmetic_or_max_names_nothing() -> None:
    g = G(h=["B", "L", 32])
    cache = g.const(np.ones([1, 1, 128, 16]), np.float32)
    plus = g.op("Add", g.dim("h", 1), g.const([1]))
    bigger = g.op("Max", g.dim("h", 1), g.const([4]))
    for end in (plus, bigger):
        out = g.op("Slice", cache, g.const([0]), end, g.const([2]))
        assert g.prove(out)[2] not in (min_dim(128, "param:L"), "param:L")


def test_a_slice_to_int64_max_keeps_the_axis_and_static_bounds_count() -> None:
    g = G(a=["B", "L", 16])
    a = g.hide("a")
    whole = g.op("Slice", a, g.const([0]), g.const([INT64_MAX]), g.const([1]))
    half = g.op("Slice", a, g.const([0]), g.const([8]), g.const([-1]))
    assert g.prove(whole) == ["param:B", "param:L", 16]
    assert g.prove(half) == ["param:B", "param:L", 8]


# ------------------------------------------------------------------ the order fact
@pytest.mark.parametrize(
    "table, x, holds",
    [
        (min_dim(128, "param:L"), "param:L", True),
        (min_dim(64, min_dim(128, "param:L")), "param:L", True),
        (min_dim(0, "param:L"), "param:L", False),  # 0 rows where x has 1
        (min_dim(128, "param:P"), "param:L", False),
        ("param:L", min_dim(128, "param:L"), False),  # the other way round: t may exceed d
        ("param:P", "param:L", False),
    ],
)
def test_the_order_fact_min_1_d_at_most_t_at_most_d(table: str, x: str, holds: bool) -> None:
    assert at_least_one_when_positive(table, x) is holds
    problem = table_axis_problem("cos", [1, table, 16], [2, x, 16], [1, table, 16], [2, x, 16])
    assert (problem == "") is holds


def test_a_table_rank_above_x_and_a_static_mismatch_are_refused() -> None:
    assert "rank" in table_axis_problem("cos", [1, 1, 5, 16], [5, 16], None, None)
    assert table_axis_problem("cos", [3, 16], [5, 16], [3, 16], [5, 16])


# ------------------------------------------------------------------ ops of other domains
@pytest.mark.parametrize(
    "op, domain, extra",
    [
        ("SkipSimplifiedLayerNormalization", "com.microsoft", 1),
        ("SkipLayerNormalization", "com.microsoft", 2),
        ("SimplifiedLayerNormalization", "", 0),
        ("SimplifiedLayerNormalization", "com.microsoft", 0),
        ("QuickGelu", "com.microsoft", -1),
        ("FastGelu", "com.microsoft", -1),
    ],
)
def test_documented_contrib_ops_keep_input_0s_shape(op: str, domain: str, extra: int) -> None:
    g = G(h=["B", "L", 32])
    gamma = g.const(np.ones(32), np.float32)
    inputs = {-1: ["h"], 0: ["h", gamma], 1: ["h", "h", gamma], 2: ["h", "h", gamma, gamma]}[extra]
    assert g.prove(g.op(op, *inputs, domain=domain)) == ["param:B", "param:L", 32]


@pytest.mark.parametrize(
    "op, domain",
    [
        ("SkipSimplifiedLayerNormalization", "other.domain"),
        ("Gelu", "com.microsoft"),
        ("Attention", "com.microsoft"),
    ],
)
def test_undocumented_or_foreign_domain_ops_are_not_followed(op: str, domain: str) -> None:
    g = G(h=["B", "L", 32])
    assert g.prove_or_none(g.op(op, "h", "h", domain=domain)) is None


def test_fused_matmul_follows_trans_a_b_but_not_trans_batch() -> None:
    g = G(q=["B", 2, "L", 16], k=["B", 2, "M", 16])
    scores = g.op("FusedMatMul", g.hide("q"), "k", domain="com.microsoft", transB=1)
    batch = g.op("FusedMatMul", "q", "k", domain="com.microsoft", transB=1, transBatchB=1)
    assert g.prove(scores) == ["param:B", 2, "param:L", "param:M"]
    assert g.prove_or_none(batch) is None


def test_matmul_broadcasts_leading_dims_and_takes_rows_and_columns() -> None:
    g = G(a=["B", 1, "L", 32], w=[32, 16], v=[1, 4, 32, 8])
    a = g.hide("a")
    assert g.prove(g.op("MatMul", a, "w")) == ["param:B", 1, "param:L", 16]
    assert g.prove(g.op("MatMul", a, g.hide("v"))) == ["param:B", 4, "param:L", 8]


# ------------------------------------------------------------------ the other rules
def test_range_over_a_shape_read_counts_positions_only_from_zero_by_one() -> None:
    g = G(h=["B", "L", 32])
    n = g.op("Gather", g.op("Shape", g.hide("h")), g.const(1))
    plain = g.op("Range", g.const(0), n, g.const(1))
    shifted = g.op("Range", g.const(1), n, g.const(1))
    assert g.prove(plain) == ["param:L"]
    assert g.prove_or_none(shifted) in (None, [own(shifted, 0)])


def test_tile_expand_squeeze_concat_transpose_gather() -> None:
    g = G(a=[1, "L", 8], idx=["B", "L"], e=["B", 1, "L"])
    a = g.hide("a")
    tiled = g.op("Tile", a, g.const([1, 1, 2]))
    tiled_by_symbol = g.op("Tile", a, g.op("Concat", g.const([1]), g.dim("e", 0), g.const([1]), axis=0))
    expanded = g.op("Expand", a, g.op("Shape", "e"))
    squeezed = g.op("Squeeze", a, g.const([0]))
    joined = g.op("Concat", a, a, axis=-1)
    moved = g.op("Transpose", a, perm=[1, 0, 2])
    gathered = g.op(
        "Gather",
        g.const(np.ones([128, 8]), np.float32),
        g.op("Cast", g.op("Identity", "idx"), to=TensorProto.INT64),
    )
    assert g.prove(tiled) == [1, "param:L", 16]
    assert g.prove(tiled_by_symbol)[0] == 1 and g.prove(tiled_by_symbol)[1] != "param:L"
    assert g.prove(expanded) == ["param:B", "param:L", 8]
    assert g.prove(squeezed) == ["param:L", 8]
    assert g.prove(joined) == [1, "param:L", 16]
    assert g.prove(moved) == ["param:L", 1, 8]
    assert g.prove(gathered) == ["param:B", "param:L", 8]


def test_comparisons_broadcast_and_a_mismatch_of_symbols_is_unknown() -> None:
    g = G(a=[1, "L", 1], b=["B", 1, "L"], c=["B", "M", 1])
    assert g.prove(g.op("LessOrEqual", g.hide("a"), "b")) == ["param:B", "param:L", "param:L"]
    out = g.op("Add", g.hide("b"), "c")
    assert g.prove(out) == ["param:B", "param:M", "param:L"]
    mismatch = g.op("Add", "a", "c")  # L against M on axis 1: either could be 1
    assert g.prove(mismatch)[1] not in ("param:L", "param:M")


def test_a_chain_deeper_than_the_recursion_limit_is_proven() -> None:
    """x of a model's last layer reaches back through every layer: the walk is iterative."""
    g = G(h=["B", "L", 32])
    name = g.hide("h")
    for _ in range(3000):
        name = g.op("Neg", name)
    assert g.prove(name) == ["param:B", "param:L", 32]


# ------------------------------------------------------------------ folding of shape values
def _index(g: G, out: str) -> GraphIndex:
    graph = helper.make_graph(
        g.nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in g.inputs.items()],
        [helper.make_tensor_value_info(out, TensorProto.INT64, None)],
        initializer=g.inits,
    )
    return GraphIndex(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_torchscript_expand_targets_fold_through_equal_where_and_reshape() -> None:
    """``Where(Equal(shape, -1), ones, shape)``: a size is never -1."""
    g = G(h=["B", "L", 32])
    shape = g.op("Reshape", g.op("Concat", g.dim("h", 0), g.const([2]), g.dim("h", 1), axis=0), g.const([-1]))
    out = g.op("Where", g.op("Equal", shape, g.const([-1, -1, -1])), g.const([1, 1, 1]), shape)
    assert fold_ints(_index(g, out), out).values == ("param:B", 2, "param:L")


def test_equal_on_an_opaque_value_and_where_on_it_do_not_fold() -> None:
    g = G(h=["B", "L", 32])
    opaque = g.op("Sub", g.dim("h", 1), g.const([3]))
    out = g.op("Where", g.op("Equal", opaque, g.const([-1])), g.const([1]), opaque)
    with pytest.raises(NotStatic):
        fold_ints(_index(g, out), out)


def test_a_split_shape_value_folds_per_output_and_a_non_flattening_reshape_does_not() -> None:
    g = G(h=["B", "L", 32])
    parts = g.op("Split", g.op("Shape", "h"), g.const([1, 1, 1]), outputs=3, axis=0)
    second = parts.replace("_0", "_1")
    squeezed = g.op("Squeeze", second, g.const([0]))
    grid = g.op("Reshape", g.op("Concat", g.op("Shape", "h"), g.const([1]), axis=0), g.const([2, 2]))
    index = _index(g, squeezed)
    assert fold_ints(index, squeezed).values == ("param:L",)
    assert fold_ints(index, parts).values == ("param:B",)
    with pytest.raises(NotStatic):
        fold_ints(index, grid)
