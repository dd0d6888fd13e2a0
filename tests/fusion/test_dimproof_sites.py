"""Whole sites whose table dims only the per-axis proof's source names show equal to x's, and their
look-alikes.  Each positive fuses and equals the original on ONNX Runtime for x's length 1 and 5.
Each look-alike must be skipped with a table reason; its id names an input the original accepts on
which RoPECustomer (it returns x's shape) would differ.  That refusal is what is asserted: the
reference decomposition ONNX Runtime runs for a fused node broadcasts like the original, so running
it would not show the difference.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from trust_graphs import D, Graph, fuse_and_check, reasons

CACHE = 128


def _dim(g: Graph, tensor: str, axis: int) -> str:
    return g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", [tensor]), g.const(axis)]), g.const([0])])


def _sliced_cache_site(start: int = 0, end: str = "x2", step: int = 1) -> object:
    """``cos_cached[:, :, start:end:step]`` with x ``[B, 3, L, 16]``; ``end`` names the bound:
    ``x2`` x's length, ``x1`` x's heads, ``p`` another input's length, ``max4`` ``Max(L, 4)``."""
    g = Graph()
    rng = np.random.default_rng(0)
    bound = {
        "x2": lambda: _dim(g, "x", 2),
        "x1": lambda: _dim(g, "x", 1),
        "p": lambda: _dim(g, "p", 0),
        "max4": lambda: g.op("Max", [_dim(g, "x", 2), g.const([4])]),
    }[end]()
    tables = [
        g.op(
            "Slice",
            [
                g.const(rng.standard_normal([1, 1, CACHE, D]), np.float32),
                g.const([start]),
                bound,
                g.const([2]),
                g.const([step]),
            ],
        )
        for _ in range(2)
    ]
    y = g.rope("x", *tables)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    return g.model([("x", ["B", 3, "L", D]), ("p", ["P"])], ["y"])


def _feeds(length: int, p: int = 5) -> dict:
    rng = np.random.default_rng(length)
    return {"x": rng.standard_normal([2, 3, length, D]).astype(np.float32), "p": np.ones([p], np.float32)}


def test_a_cache_sliced_to_x_length_at_run_time_fuses_exactly() -> None:
    result, _ = fuse_and_check(_sliced_cache_site(), [_feeds(1), _feeds(5)])
    assert result.fused == 1, reasons(result)
    assert result.sites[0].assumes == ()


@pytest.mark.parametrize(
    "start, end, step",
    [(1, "x2", 1), (0, "p", 1), (0, "x1", 1), (0, "max4", 1), (0, "x2", 2)],
    ids=[
        "start 1: 0 rows where x has 1",
        "another input's length: 5 rows where x has 1",
        "x's heads: 3 rows where x's length is 1",
        "Max(L, 4): 4 rows where x has 1",
        "step 2: not modelled",
    ],
)
def test_look_alike_sliced_caches_are_skipped(start: int, end: str, step: int) -> None:
    result, _ = fuse_and_check(_sliced_cache_site(start, end, step), [_feeds(1)])
    assert result.fused == 0, result.sites
    assert "table" in reasons(result)


def _contrib_site(op: str = "SkipSimplifiedLayerNormalization", domain: str = "com.microsoft") -> object:
    """x from ``Reshape(MatMul(norm(h), W), [Shape(norm)[0], Shape(norm)[1], -1, 16])`` behind ONNX
    Runtime's fused norm (inference types nothing after it); tables from ``Range(0, Shape(h)[1])``."""
    g = Graph()
    rng = np.random.default_rng(1)
    gamma = g.const(np.ones(32), np.float32)
    norm = g.op(op, ["h", "h", gamma], domain=domain, epsilon=1e-6)
    proj = g.op("MatMul", [norm, g.const(rng.standard_normal([32, 48]) * 0.1, np.float32)])
    target = g.op("Concat", [_dim(g, norm, 0), _dim(g, norm, 1), g.const([-1]), g.const([D])], axis=0)
    x = g.op("Transpose", [g.op("Reshape", [proj, target])], perm=[0, 2, 1, 3])
    n = g.op("Gather", [g.op("Shape", ["h"]), g.const(1)])
    pos = g.op("Cast", [g.op("Range", [g.const(0), n, g.const(1)])], to=TensorProto.FLOAT)
    inv_freq = g.const(1.0 / 10000 ** (np.arange(0, D, 2) / D), np.float32)
    freqs = g.op("Mul", [g.op("Unsqueeze", [pos, g.const([1])]), inv_freq])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    tables = [g.op("Unsqueeze", [g.op(f, [emb]), g.const([0, 1])]) for f in ("Cos", "Sin")]
    y = g.rope(x, *tables)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    model = g.model([("h", ["B", "L", 32])], ["y"])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def _h(length: int) -> dict:
    return {"h": np.random.default_rng(length).standard_normal([2, length, 32]).astype(np.float32)}


def test_a_site_after_a_documented_com_microsoft_norm_fuses_exactly() -> None:
    result, _ = fuse_and_check(_contrib_site(), [_h(1), _h(5)])
    assert result.fused == 1, reasons(result)


@pytest.mark.parametrize(
    "op, domain", [("Gelu", "com.microsoft"), ("SkipSimplifiedLayerNormalization", "ai.other")]
)
def test_a_site_after_an_undocumented_or_foreign_op_is_skipped(op: str, domain: str) -> None:
    """Nothing documents these outputs' shapes here: x's length is not shown to be the tables'."""
    model = _contrib_site(op, domain)
    norm = model.graph.node[0]
    if op == "Gelu":
        del norm.input[1:]
        del norm.attribute[:]
    result, _ = fuse_and_check(model, [])  # nothing runs: a fused site would already be the failure
    assert result.fused == 0, result.sites
    assert "table" in reasons(result)


def test_a_table_dim_declared_1_where_the_graph_computes_5_is_refused() -> None:
    """The tables pass com.microsoft's QuickGelu (inference types nothing after it) and the model
    declares them ``[1, 1, 1, 16]``; the graph computes ``[1, 1, 5, 16]``: with x's length 1 the
    original has 5 rows, a RoPECustomer would have 1.  The computed dim wins, and contradicts."""
    g = Graph()
    tables = [g.op("QuickGelu", [name], domain="com.microsoft") for name in ("c", "s")]
    y = g.rope("x", *tables)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    model = g.model([("x", ["B", 3, "L", D]), ("c", [1, 1, 5, D]), ("s", [1, 1, 5, D])], ["y"])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    for table in tables:
        model.graph.value_info.append(helper.make_tensor_value_info(table, TensorProto.FLOAT, [1, 1, 1, D]))
    result, _ = fuse_and_check(model, [])
    assert result.fused == 0, result.sites
    assert "contradict" in reasons(result)
