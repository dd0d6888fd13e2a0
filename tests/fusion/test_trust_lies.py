"""Lying ``value_info``: a declaration is a claim, a proof from the graph beats it.

The lying-value_info sweep (``scripts/property_sweep.py --kinds lies``) found this: tables computed
in-graph from *another* input's row count (``Range(0, pos.shape[1])``, then Cos/Sin/Unsqueeze) meet
an x with one position.  Inference names the table's row dim ``unk__0``; a ``value_info`` that says
the table is ``[1, 1, 1, D]`` filled that gap, the per-axis proof took its 1 over the rows it had
traced to ``pos`` (``P``), and the site fused — with ``P = 5`` the original broadcasts x to five
rows, RoPECustomer returns one.  Now a dim only a declaration sizes (``GraphIndex.claimed_axes``)
yields to the traced source; where nothing is traced the declaration still fills the gap.
The second group: a ``value_info`` that re-declares a graph input does not replace its contract.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from trust_graphs import D, Graph, copy_of, fuse_and_check, random_feeds, reasons

from rope_onnx.fusion import fuse_model
from rope_onnx.graph.index import GraphIndex


def _computed_tables_site(x: list, rows_of: str, lie: list | None) -> tuple:
    """x * cos + rotate_half(x) * sin with tables of ``rows_of``'s rows (x's own, or input pos's)."""
    g = Graph()
    source, axis = ("x", 2) if rows_of == "x" else ("pos", 1)
    rows = g.op("Gather", [g.op("Shape", [source]), g.const(axis)], axis=0)
    positions = g.op("Cast", [g.op("Range", [g.const(0), rows, g.const(1)])], to=TensorProto.FLOAT)
    inverse = (1.0 / 10000 ** (np.arange(0, D, 2) / D)).astype(np.float32)
    freqs = g.op("Mul", [g.op("Unsqueeze", [positions, g.const([1])]), g.const(inverse, np.float32)])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    tables = [g.op("Unsqueeze", [g.op(op, [emb]), g.const([0, 1])]) for op in ("Cos", "Sin")]
    g.nodes.append(helper.make_node("Identity", [g.rope("x", *tables)], ["y"], name="out"))
    model = g.model([("x", x)] + ([("pos", [1, rows_of])] if source == "pos" else []), ["y"])
    for table in tables if lie else ():
        model.graph.value_info.append(helper.make_tensor_value_info(table, TensorProto.FLOAT, lie))
    return model, tables


def _feeds(x: list, rows: int) -> dict:
    feeds = random_feeds({"x": x})
    feeds["pos"] = np.zeros([1, rows], np.float32)
    return feeds


@pytest.mark.parametrize(
    ("x", "rows_of", "lie", "x_feed"),
    [
        (["B", 3, 1, D], "P", [1, 1, 1, D], [2, 3, 1, D]),  # "1 row" where the rows are pos's P
        (["B", 3, "L", D], "P", [1, 1, "L", D], [2, 3, 1, D]),  # x's symbol L where the rows are P
        (["B", 3, 1, D], "L", [1, 1, 1, D], [2, 3, 1, D]),  # pos declares L, x has 1 row: not L
    ],
)
def test_a_declared_table_dim_never_beats_the_rows_the_graph_computes(x, rows_of, lie, x_feed) -> None:
    model, tables = _computed_tables_site(x, rows_of, lie)
    assert GraphIndex(model).claimed_axes(tables[0]) == {2}  # only the declaration sizes the rows
    result, _ = fuse_and_check(model, [_feeds(x_feed, 5)])  # the original broadcasts x to 5 rows
    assert result.fused == 0, result.sites
    assert f"dim 2 ({rows_of})" in reasons(result) and "RoPECustomer cannot" in reasons(result)


@pytest.mark.parametrize("lie", [None, [1, 1, "L", D], [1, 1, "seq", D]])
def test_tables_of_x_own_rows_still_fuse_whatever_the_declaration(lie) -> None:
    """The proof traces the rows to x's own Shape read: a declaration adds nothing and costs nothing."""
    model, _ = _computed_tables_site(["B", 3, "L", D], "x", lie)
    result, _ = fuse_and_check(model, [random_feeds({"x": [2, 3, 4, D]}), random_feeds({"x": [1, 3, 1, D]})])
    assert result.fused == 1, reasons(result)


def test_a_declaration_still_fills_what_nothing_else_knows() -> None:
    """No proof, no inference (a phantom name): the declared dims are what the index has, as claims."""
    model, _ = _computed_tables_site(["B", 3, "L", D], "x", None)
    model.graph.value_info.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1, "L", 4]))
    index = GraphIndex(model)
    assert index.dims("ghost") == [1, "param:L", 4] and index.claimed_axes("ghost") == {0, 1, 2}


@pytest.mark.parametrize("elem", [TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT64])
def test_a_value_info_that_re_declares_a_graph_input_does_not_replace_its_contract(elem: int) -> None:
    g = Graph()
    g.nodes.append(helper.make_node("Identity", [g.rope("x", "cos", "sin")], ["y"], name="out"))
    table = [1, 1, "L", D]
    model = g.model([("x", ["B", 3, "L", D]), ("cos", table), ("sin", table)], ["y"])
    model.graph.value_info.append(helper.make_tensor_value_info("x", elem, [1, 3, 1, 2 * D]))
    index = GraphIndex(model)
    assert index.elem_type("x") == TensorProto.FLOAT and index.dims("x") == ["param:B", 3, "param:L", D]
    assert not index.claimed_axes("x")
    feeds = random_feeds({"x": [2, 3, 4, D], "cos": [1, 1, 4, D], "sin": [1, 1, 4, D]})
    result, _ = fuse_and_check(model, [feeds])
    assert result.fused == 1, reasons(result)
    assert fuse_model(copy_of(model)).fused == 1
