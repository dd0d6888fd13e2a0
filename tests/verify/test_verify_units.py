"""The parts of verify that need no model run: dims, generated feeds, the comparator, the bf16 upcast."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_verify_graphs import HEAD_DIM, HEADS, VOCAB, tiny_llm

from rope_onnx.errors import InputError
from rope_onnx.verify.compare import Tolerance, compare, default_tolerance
from rope_onnx.verify.dims import DimValues, parse_dim_options
from rope_onnx.verify.feeds import generate, input_specs, to_bfloat16_grid, vocabulary_size
from rope_onnx.verify.runner import has_bfloat16, upcast_bfloat16


def test_generated_feeds_are_consistent_and_meaningful():
    model = tiny_llm()
    dims = DimValues({"batch_size": 3})
    feeds = generate(model, input_specs(model), dims, seed=0)
    ids, mask, pos, past = (
        feeds.arrays[n] for n in ("input_ids", "attention_mask", "position_ids", "past_key")
    )
    batch, seq = ids.shape
    assert batch == 3 and seq > 1
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < VOCAB and len(np.unique(ids)) > 1
    assert past.shape[:2] == (3, HEADS) and past.shape[3] == HEAD_DIM and past.dtype == np.float32
    past_len = past.shape[2]
    assert past_len > 0
    assert mask.shape == (3, past_len + seq) and (mask == 1).all()
    assert (pos == np.arange(past_len, past_len + seq)).all() and pos.shape == (3, seq)
    assert feeds.dims["past_sequence_length + sequence_length"] == past_len + seq


def test_same_seed_same_feeds_other_seed_other_feeds():
    model = tiny_llm()
    a, b, c = (generate(model, input_specs(model), DimValues(), seed=s).arrays for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["past_key"], c["past_key"])


def test_vocabulary_is_read_from_the_embedding_shape_through_a_cast():
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["emb", "ids32"], ["h"]),
    ]
    emb = helper.make_tensor("emb", TensorProto.FLOAT, [1234, 4], np.zeros(1234 * 4).tolist())
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [emb],
    )
    model = helper.make_model(graph)
    assert vocabulary_size(model, "ids") == 1234
    assert vocabulary_size(model, "other") is None


def test_dims_parse_override_and_sums():
    assert parse_dim_options(["batch=1", "a.b=16"]) == {"batch": 1, "a.b": 16}
    for bad in (["batch"], ["batch=x"], ["=3"], ["batch=0"]):
        with pytest.raises(InputError):
            parse_dim_options(bad)
    dims = DimValues({"s0": 4})
    assert dims.resolve("s0 + s1 + 2") == 4 + dims.values["s1"] + 2
    assert dims.resolve("s0") == 4
    assert dims.resolve("batch_size") == 2 and dims.resolve("past_len") == 5


@pytest.mark.parametrize("elem", [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16])
def test_default_tolerances_are_tighter_for_float32(elem):
    f32 = default_tolerance("output", TensorProto.FLOAT)
    tol = default_tolerance("output", elem)
    assert tol.atol >= f32.atol and tol.rtol >= f32.rtol
    assert default_tolerance("site", elem).atol <= tol.atol
    assert default_tolerance("output", TensorProto.INT64) == Tolerance(0.0, 0.0)


def test_comparator_follows_the_elementwise_abs_or_rel_rule():
    expected = np.array([1000.0, 0.0, 1.0], np.float32)
    actual = np.array([1000.5, 1e-6, 1.0], np.float32)
    row = compare("t", "output", expected, actual, Tolerance(atol=1e-5, rtol=1e-3))
    assert row.passed  # 0.5 on 1000 is within rtol; 1e-6 on 0 is within atol
    assert row.max_abs == pytest.approx(0.5) and row.mean_abs == pytest.approx((0.5 + 1e-6) / 3, rel=1e-4)
    assert row.min_passing_atol == pytest.approx(1e-6, rel=1e-3)  # the one element rtol does not cover
    strict = compare("t", "output", expected, actual, Tolerance(atol=1e-7, rtol=1e-4))
    assert not strict.passed and strict.min_passing_atol == pytest.approx(0.5)
    assert compare("t", "output", expected, actual, Tolerance(strict.min_passing_atol, 1e-4)).passed


def test_comparator_fails_on_shape_mismatch_and_one_sided_nan():
    a = np.zeros((2, 3), np.float32)
    assert not compare("t", "site", a, np.zeros((3, 2), np.float32), Tolerance(1, 1)).passed
    b = a.copy()
    b[0, 0] = np.nan
    assert not compare("t", "site", a, b, Tolerance(1, 1)).passed
    assert compare("t", "site", b, b, Tolerance(0, 0)).passed
    row = compare("t", "site", a, b, Tolerance(1, 1)).to_json()
    assert row["max_abs"] == "inf"  # JSON has no infinity


def test_bfloat16_upcast_leaves_no_bfloat16_and_keeps_values():
    model = tiny_llm(TensorProto.BFLOAT16, fused=True)
    assert has_bfloat16(model)
    upcast_bfloat16(model, None)
    assert not has_bfloat16(model)
    values = np.array([1.0, 1.00390625, 3.14159, -2.5e-3], np.float32)
    grid = to_bfloat16_grid(values)
    assert grid[0] == 1.0 and grid[1] == 1.0  # ties round to even
    assert np.all(grid.view(np.uint32) & 0xFFFF == 0) and np.allclose(grid, values, rtol=2**-8)


def test_site_shapes_make_differently_named_sizes_agree():
    """TorchScript names the table's sequence axis 'unk__0' while x has 'seq': they must match."""
    from rope_onnx.verify.feeds import InputSpec
    from rope_onnx.verify.sites import Site, site_shapes

    site = Site("n", "y", "x", "cos", "sin", interleaved=0, rotary_dim=0)
    specs = {
        "x": InputSpec("x", TensorProto.FLOAT, ("batch", "unk__9", "seq", 16)),
        "cos": InputSpec("cos", TensorProto.FLOAT, (1, 1, "unk__0", 16)),
        "sin": InputSpec("sin", TensorProto.FLOAT, (1, 1, "unk__0", None)),
    }
    dims = DimValues({"batch": 2, "seq": 6})
    shapes = site_shapes(site, specs, dims, {})
    assert shapes == {"x": (2, 3, 6, 16), "cos": (1, 1, 6, 16), "sin": (1, 1, 6, 16)}
    assert dims.values["unk__0"] == 6
    fixed = {**specs, "cos": InputSpec("cos", TensorProto.FLOAT, (1, 1, 5, 16))}
    with pytest.raises(InputError, match="axis -2 is 5"):
        site_shapes(site, fixed, DimValues({"batch": 2, "seq": 6}), {})


def test_cut_turns_outside_shape_reads_into_constants_and_stops_at_the_tables():
    from rope_onnx.verify.cut import cut

    nodes = [
        helper.make_node("Shape", ["hidden"], ["hs"], start=-1),
        helper.make_node("Reshape", ["x", "hs"], ["xf"]),
        helper.make_node("Mul", ["xf", "cos"], ["a"]),
        helper.make_node("Add", ["a", "sin"], ["y"]),
        helper.make_node("Relu", ["y"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("hidden", "x", "cos", "sin")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph)
    piece, extra = cut(model, "y", ("x", "cos", "sin"), "n", lambda name: (2, 7, 16), {"hidden", "x"})
    assert extra == []
    assert [n.op_type for n in piece.graph.node] == ["Constant", "Reshape", "Mul", "Add"]
    value = helper.get_attribute_value(piece.graph.node[0].attribute[0])
    assert numpy_helper.to_array(value).tolist() == [16]
    _, extra = cut(model, "y", ("x", "cos", "sin"), "n", lambda name: None, {"hidden", "x"})
    assert extra == ["hidden"]  # unknown shape: the model input is fed like in a full run
