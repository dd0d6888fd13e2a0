"""Shapes, one rule per axis: the fused node must compute the original's output for every input the
original accepts.

On an axis where a table dim and x's dim are not the same static size, the site fuses only when
the table dim is 1, or the two are proven equal — the same declared graph-input ``dim_param`` (ONNX
gives equal names equal values) or the same ``Shape`` read — or the fused graph broadcasts
exactly as the original.  A table dim that is merely *another symbol* is a refusal: with x's dim 1
and the table's 5 the original's output has 5 rows, a RoPECustomer's has x's one.  An initializer
that is also a graph input is an overridable input: its shape is what a caller may feed.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from trust_graphs import D, Graph, fuse_and_check, plain_site, random_feeds, reasons


def _feeds(x: list[int], table: list[int], seed: int = 0) -> dict:
    return random_feeds({"x": x, "cos": table, "sin": table}, seed=seed)


OTHER_SYMBOL_TABLES = {
    # (declared table shape, a feed the original accepts on which a fused node would differ)
    "positions P vs L": ([1, 1, "P", D], ([2, 3, 1, D], [1, 1, 5, D])),
    "batch C vs B": (["C", 1, "L", D], ([1, 3, 5, D], [2, 1, 5, D])),
    "heads G vs 1": ([1, "G", "L", D], ([2, 1, 5, D], [1, 3, 5, D])),
    "rank 2 positions P vs L": (["P", D], ([2, 3, 1, D], [4, D])),
    "batch and positions": (["C", 1, "P", D], ([1, 3, 1, D], [2, 1, 4, D])),
}


@pytest.mark.parametrize("case", sorted(OTHER_SYMBOL_TABLES))
def test_a_table_dim_that_is_merely_another_symbol_is_refused(case: str) -> None:
    table, (x_feed, table_feed) = OTHER_SYMBOL_TABLES[case]
    x = ["B", 1, "L", D] if case.startswith("heads") else None
    model = plain_site(table=table, x=x)
    result, _ = fuse_and_check(model, [_feeds(x_feed, table_feed)])
    assert result.fused == 0, result.sites
    assert result.skipped and "table" in reasons(result)


@pytest.mark.parametrize(
    "table",
    [
        [1, 1, "L", D],
        ["B", 1, "L", D],
        [1, 3, "L", D],
        ["L", D],
        [1, 1, 1, D],
        ["B", 3, "L", D],
        [1, "G", "L", D],
    ],
)
def test_a_table_dim_of_1_or_the_same_symbol_fuses_with_nothing_assumed(table: list) -> None:
    sizes = {"B": 2, "L": 5, "G": 3}  # x's heads are a static 3: a table's G can only be 1 or 3
    feeds = _feeds([2, 3, 5, D], [sizes.get(d, d) for d in table])
    result, _ = fuse_and_check(plain_site(table=table), [feeds])
    assert result.fused == 1, reasons(result)
    assert result.sites[0].assumes == ()


def _positions_site(source: str, declared: list) -> object:
    """Tables computed in-graph from positions ``Range(0, n)`` as TorchScript exports them.

    ``source``: ``"x"`` — n is ``x.shape[2]`` (the same Shape read as x's position dim), ``"other"``
    — n is the length of another input ``p`` (declared ``declared``), ``"input"`` — positions are a
    graph input ``pos`` declared ``declared``.
    """
    g = Graph()
    if source == "input":
        pos = g.op("Cast", ["pos"], to=TensorProto.FLOAT)
    else:
        n = g.op(
            "Gather", [g.op("Shape", ["x" if source == "x" else "p"]), g.const(2 if source == "x" else 0)]
        )
        pos = g.op("Cast", [g.op("Range", [g.const(0), n, g.const(1)])], to=TensorProto.FLOAT)
    inv_freq = g.const(1.0 / 10000 ** (np.arange(0, D, 2) / D), np.float32)
    freqs = g.op("Mul", [g.op("Unsqueeze", [pos, g.const([1])]), inv_freq])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    tables = [g.op("Unsqueeze", [g.op(op, [emb]), g.const([0, 1])]) for op in ("Cos", "Sin")]
    y = g.rope("x", *tables)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    inputs = [("x", ["B", 3, "L", D])]
    if source == "other":
        inputs.append(("p", declared))
    if source == "input":
        model = g.model(inputs, ["y"])
        model.graph.input.append(helper.make_tensor_value_info("pos", TensorProto.INT64, declared))
        return model
    return g.model(inputs, ["y"])


def test_tables_from_the_same_shape_read_as_x_fuse_by_proof() -> None:
    model = _positions_site("x", [])
    feeds = [{"x": np.random.default_rng(0).standard_normal([2, 3, n, D]).astype(np.float32)} for n in (1, 5)]
    result, _ = fuse_and_check(model, feeds)
    assert result.fused == 1, reasons(result)
    assert result.sites[0].assumes == ()


def test_tables_from_a_graph_input_with_the_same_dim_param_fuse_by_proof() -> None:
    model = _positions_site("input", ["L"])
    feeds = [{"x": np.ones([2, 3, 5, D], np.float32), "pos": np.arange(5, dtype=np.int64)}]
    result, _ = fuse_and_check(model, feeds)
    assert result.fused == 1, reasons(result)
    assert result.sites[0].assumes == ()


@pytest.mark.parametrize("source, declared", [("other", ["P"]), ("input", ["P"]), ("input", [None])])
def test_tables_from_another_length_are_refused(source: str, declared: list) -> None:
    model = _positions_site(source, declared)
    x = np.ones([2, 3, 1, D], np.float32)
    feed = {"x": x, "p": np.ones([5], np.float32)} if source == "other" else {"x": x, "pos": np.arange(5)}
    result, _ = fuse_and_check(model, [feed])
    assert result.fused == 0, result.sites
    assert result.skipped


def _overridable_table(declared: list | None) -> object:
    """cos is an initializer [1, 1, 5, 16] that is also a graph input declared ``declared``."""
    model = plain_site(table=[1, 1, 5, D], x=[1, 3, 5, D])
    model.graph.initializer.append(numpy_helper.from_array(np.ones([1, 1, 5, D], np.float32), "cos"))
    cos = next(i for i in model.graph.input if i.name == "cos")
    cos.CopyFrom(helper.make_tensor_value_info("cos", TensorProto.FLOAT, declared))
    return model


@pytest.mark.parametrize("declared", [["A", 1, 5, D], ["A", 1, "P", D], None])
def test_an_initializer_that_is_also_an_input_has_the_shape_a_caller_may_feed(declared) -> None:
    model = _overridable_table(declared)
    feeds = {"x": np.ones([1, 3, 5, D], np.float32), "sin": np.ones([1, 1, 5, D], np.float32)}
    override = dict(
        feeds, cos=np.full([2, 1, 5, D] if declared and declared[0] == "A" else [1, 1, 5, D], 2.0, np.float32)
    )
    result, _ = fuse_and_check(model, [feeds, override])
    assert result.fused == 0, result.sites


@pytest.mark.parametrize("declared", [[1, 1, 5, D], [1, 1, "P", D], [1, "H", 5, D]])
def test_an_overridable_initializer_declared_to_fit_x_still_fuses(declared: list) -> None:
    """x is [1, 3, 5, 16]: a table's P can only be 1 or 5, its H only 1 or 3 — the original
    broadcasts exactly as RoPECustomer does."""
    model = _overridable_table(declared)
    feeds = {"x": np.ones([1, 3, 5, D], np.float32), "sin": np.ones([1, 1, 5, D], np.float32)}
    result, _ = fuse_and_check(model, [feeds, dict(feeds, cos=np.full([1, 1, 5, D], 2.0, np.float32))])
    assert result.fused == 1, reasons(result)


def test_an_overridable_split_point_is_not_a_constant() -> None:
    """``mid`` is an initializer [8] that a caller may override: the split is not known."""
    g = Graph()
    y = g.rope("x", "cos", "sin", mid="mid")
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    model = g.model([("x", ["B", 3, "L", D]), ("cos", [1, 1, "L", D]), ("sin", [1, 1, "L", D])], ["y"])
    model.graph.initializer.append(numpy_helper.from_array(np.array([8], np.int64), "mid"))
    model.graph.input.append(helper.make_tensor_value_info("mid", TensorProto.INT64, [1]))
    feeds = _feeds([2, 3, 5, D], [1, 1, 5, D])
    result, _ = fuse_and_check(model, [feeds, dict(feeds, mid=np.array([4], np.int64))])
    assert result.fused == 0, result.sites


def test_every_fixture_fuses_completely_with_nothing_assumed() -> None:
    """TorchScript's tables (position dim ``unk__0`` against x's ``seq``) fuse by proof now."""
    import json

    import onnx
    from conftest import FIXTURES

    from rope_onnx.fusion import fuse_model

    entries = [e for e in json.loads((FIXTURES / "manifest.json").read_text()) if e.get("file")]
    torchscript = 0
    for entry in entries:
        model = onnx.load(FIXTURES / entry["file"], load_external_data=False)
        result = fuse_model(model)
        assert result.fused == entry["expected_sites"], (entry["file"], [s.reason for s in result.skipped])
        assert all(site.assumes == () for site in result.sites), entry["file"]
        torchscript += entry["exporter"] == "torchscript"
    assert torchscript >= 10
