"""Unit graphs for issue 12: Cast-wrapped fp16 sites, sign tensors, the shape rule, no silent miss.

Each must-fuse graph is the shape a real tool writes (ORT's InsertedPrecisionFreeCast, a [1,1,1,1] -1
tensor, onnxsim's symbolic value_info); each look-alike differs in the one fact the proof must check
(a rounding inside the math, a -2, a rank-widening constant) and must be skipped, with its reason.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_model
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from rope_onnx.cli.app import main
from rope_onnx.fusion import fuse_model
from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.shapes import InferredSymbol, merge_types

X_SHAPE = ["B", 2, "L", 16]
T_SHAPE = [1, 1, "L", 16]


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _model(
    nodes: list, dtype: int = TP.FLOAT, out_dtype: int | None = None, value_info=()
) -> onnx.ModelProto:
    consts = [
        _const("zero", np.array([0], np.int64)),
        _const("eight", np.array([8], np.int64)),
        _const("big", np.array([2**62], np.int64)),
        _const("last", np.array([-1], np.int64)),
    ]
    graph = helper.make_graph(
        consts + nodes,
        "g",
        [
            helper.make_tensor_value_info(n, dtype, s)
            for n, s in (("x", X_SHAPE), ("cos", T_SHAPE), ("sin", T_SHAPE))
        ],
        [helper.make_tensor_value_info("y", out_dtype or dtype, X_SHAPE)],
        value_info=list(value_info),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _halves(x: str) -> list:
    return [
        helper.make_node("Slice", [x, "zero", "eight", "last"], ["lo"]),
        helper.make_node("Slice", [x, "eight", "big", "last"], ["hi"]),
    ]


def _cast(src: str, dst: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [src], [dst], to=to)


def _ort_fp16_site(*, inner_round: bool = False, widen_products: bool = False) -> onnx.ModelProto:
    """ORT's CPU optimizer on an fp16 site: Cast16(Add(Mul(Cast32(x), Cast32(cos)), …)).
    inner_round: the first product is rounded to fp16 and widened again inside the math.
    widen_products: the products are computed in fp16 and only then widened (two roundings)."""
    if widen_products:
        nodes = [
            *_halves("x"),
            helper.make_node("Neg", ["hi"], ["nhi"]),
            helper.make_node("Concat", ["nhi", "lo"], ["rot"], axis=-1),
            helper.make_node("Mul", ["x", "cos"], ["a16"]),
            helper.make_node("Mul", ["rot", "sin"], ["b16"]),
            _cast("a16", "a", TP.FLOAT),
            _cast("b16", "b", TP.FLOAT),
            helper.make_node("Add", ["a", "b"], ["y32"]),
            _cast("y32", "y", TP.FLOAT16),
        ]
        return _model(nodes, TP.FLOAT16)
    nodes = [
        *_halves("x"),
        _cast("x", "x32", TP.FLOAT),
        _cast("cos", "cos32", TP.FLOAT),
        _cast("sin", "sin32", TP.FLOAT),
        _cast("lo", "lo32", TP.FLOAT),
        _cast("hi", "hi32", TP.FLOAT),
        helper.make_node("Neg", ["hi32"], ["nhi"]),
        helper.make_node("Concat", ["nhi", "lo32"], ["rot"], axis=-1),
        helper.make_node("Mul", ["x32", "cos32"], ["a0"]),
        helper.make_node("Mul", ["rot", "sin32"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y32"]),
        _cast("y32", "y", TP.FLOAT16),
    ]
    if inner_round:
        nodes += [_cast("a0", "a16", TP.FLOAT16), _cast("a16", "a", TP.FLOAT)]
    else:
        nodes.append(helper.make_node("Identity", ["a0"], ["a"]))
    return _model(nodes, TP.FLOAT16)


def _feeds(dtype=np.float32, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 6, (1, 1, 5, 8))
    table = np.concatenate([angle, angle], -1)
    return {
        "x": rng.standard_normal((2, 2, 5, 16)).astype(dtype),
        "cos": np.cos(table).astype(dtype),
        "sin": np.sin(table).astype(dtype),
    }


def test_an_ort_cast_wrapped_fp16_site_fuses_to_one_fp16_node_and_is_exact() -> None:
    model = _ort_fp16_site()
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model)
    assert result.fused == 1 and not result.skipped
    assert result.sites[0].dtype == "float16" and result.sites[0].input == "x"
    assert [n.op_type for n in model.graph.node if n.op_type not in ("Constant",)] == ["RoPECustomer"]
    feeds = _feeds(np.float16)
    np.testing.assert_array_equal(run_model(model, feeds)["y"], run_model(original, feeds)["y"])


@pytest.mark.parametrize("variant", ["inner_round", "widen_products"])
def test_a_rounding_inside_the_math_is_not_fused_and_is_reported(variant: str) -> None:
    model = _ort_fp16_site(**{variant: True})
    result = fuse_model(model)
    assert result.fused == 0
    assert result.skipped, "a RoPE look-alike must never be a silent miss"


def _sign_site(sign: np.ndarray) -> onnx.ModelProto:
    nodes = [
        *_halves("x"),
        _const("sign", sign),
        helper.make_node("Mul", ["hi", "sign"], ["nhi"]),
        helper.make_node("Concat", ["nhi", "lo"], ["rot"], axis=-1),
        helper.make_node("Mul", ["x", "cos"], ["a"]),
        helper.make_node("Mul", ["rot", "sin"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    return _model(nodes)


def test_mul_by_a_rank_preserving_all_minus_one_tensor_fuses_exactly() -> None:
    model = _sign_site(-np.ones((1, 1, 1, 1), np.float32))
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model)
    assert result.fused == 1 and not result.skipped
    feeds = _feeds()
    np.testing.assert_allclose(run_model(model, feeds)["y"], run_model(original, feeds)["y"], atol=1e-6)


@pytest.mark.parametrize(
    "sign",
    [
        np.full((1, 1, 1, 1), -2.0, np.float32),  # not a sign: a scale
        -np.ones((1, 1, 1, 1, 1), np.float32),  # widens x's rank: the output is not x's shape
        np.array([[[[-1.0] * 7 + [1.0]]]], np.float32),  # not all -1
    ],
    ids=["minus_two", "rank_widening", "mixed_signs"],
)
def test_sign_look_alikes_do_not_fuse_and_are_reported(sign: np.ndarray) -> None:
    result = fuse_model(_sign_site(sign))
    assert result.fused == 0
    assert result.skipped


def _plain_site(x: str = "x") -> list:
    return [
        *_halves(x),
        helper.make_node("Neg", ["hi"], ["nhi"]),
        helper.make_node("Concat", ["nhi", "lo"], ["rot"], axis=-1),
        helper.make_node("Mul", [x, "cos"], ["a"]),
        helper.make_node("Mul", ["rot", "sin"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]


def test_symbolic_value_info_where_the_graph_says_16_does_not_hide_the_site() -> None:
    """onnxsim declares every dim of the site's tensors symbolic (unk__N)."""
    stale = [
        helper.make_tensor_value_info(n, TP.FLOAT, ["unk__1", "unk__2", "unk__3", "unk__4"])
        for n in ("a", "b")
    ]
    stale += [
        helper.make_tensor_value_info(n, TP.FLOAT, ["unk__5", "unk__6", "unk__7", "unk__8"])
        for n in ("lo", "hi")
    ]
    result = fuse_model(_model(_plain_site(), value_info=stale))
    assert result.fused == 1 and not result.skipped


def test_a_declared_width_that_contradicts_inference_is_unknown_not_trusted() -> None:
    declared = (TP.FLOAT, ("B", 2, "L", 8))
    inferred = (TP.FLOAT, (InferredSymbol("unk__1"), 2, None, 16))
    merged = merge_types(declared, inferred)[1]
    assert merged is not None
    assert merged[0] == "B"  # a made-up symbol says less than the declaration
    assert merged[2] == "L"  # inference left it unknown: the declaration fills it
    assert merged[3] is None  # 8 vs 16: unknown


def test_the_index_infers_without_the_models_value_info() -> None:
    model = _model(
        _plain_site(), value_info=[helper.make_tensor_value_info("lo", TP.FLOAT, ["B", 2, "L", 4])]
    )
    assert GraphIndex(model).dims("lo")[-1] == "dim:lo:3"  # declared 4, inferred 8: neither


def test_a_rope_whose_width_is_unknown_is_reported_not_dropped() -> None:
    """x comes out of an op no shape inference knows: the channel width cannot be proven."""
    nodes = [helper.make_node("Opaque", ["x"], ["xo"], domain="custom.domain"), *_plain_site("xo")]
    model = _model(nodes)
    model.opset_import.append(helper.make_opsetid("custom.domain", 1))
    result = fuse_model(model)
    assert result.fused == 0
    assert len(result.skipped) == 1 and "looks like RoPE" in result.skipped[0].reason
    assert "not statically known" in result.skipped[0].reason


def test_a_residual_sum_with_an_embedding_is_not_a_look_alike() -> None:
    """Gemma's embedding * sqrt(hidden) + …: a Gather from a constant, but scaled, not a product of two
    tensors with a table on both sides (x·cos ± rot·sin)."""
    emb = numpy_helper.from_array(np.ones((32, 16), np.float32), "emb")
    scale = numpy_helper.from_array(np.array([5.6], np.float32), "s")
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("Mul", ["e", "s"], ["a"]),
        helper.make_node("Mul", ["h", "s"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("ids", TP.INT64, ["B", "L"]),
            helper.make_tensor_value_info("h", TP.FLOAT, ["B", "L", 16]),
        ],
        [helper.make_tensor_value_info("y", TP.FLOAT, ["B", "L", 16])],
        [emb, scale],
    )
    result = fuse_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert result.fused == 0 and result.skipped == []


def test_fuse_explain_prints_the_trace_of_one_candidate(tmp_path, capsys) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(_plain_site()), path)
    assert main(["fuse", str(path), "--explain", "y"]) == 0
    out = capsys.readouterr().out
    assert "candidate 'y': Add node" in out and "proven: x='x'" in out and "site check: accepted" in out
    assert not (tmp_path / "out.onnx").exists()
    assert main(["fuse", str(path), "--explain", "no_such_tensor"]) == 2
    assert main(["fuse", str(path)]) == 2  # neither -o nor --explain


def _deinterleaved_site(second_sign: str = "Add", swap: bool = False) -> onnx.ModelProto:
    """DeepSeek-V3 rope_interleave: cat(x[0::2]·c − x[1::2]·s, x[1::2]·c + x[0::2]·s), half tables."""
    step = _const("two", np.array([2], np.int64))
    one = _const("one", np.array([1], np.int64))
    even, odd = ("xo", "xe") if swap else ("xe", "xo")
    nodes = [
        step,
        one,
        helper.make_node("Slice", ["x", "zero", "big", "last", "two"], ["xe"]),
        helper.make_node("Slice", ["x", "one", "big", "last", "two"], ["xo"]),
        helper.make_node("Slice", ["cos", "zero", "eight", "last"], ["c"]),
        helper.make_node("Slice", ["sin", "zero", "eight", "last"], ["s"]),
        helper.make_node("Mul", [even, "c"], ["m1"]),
        helper.make_node("Mul", [odd, "s"], ["m2"]),
        helper.make_node("Sub", ["m1", "m2"], ["first"]),
        helper.make_node("Mul", [odd, "c"], ["m3"]),
        helper.make_node("Mul", [even, "s"], ["m4"]),
        helper.make_node(second_sign, ["m3", "m4"], ["second"]),
        helper.make_node("Concat", ["first", "second"], ["y"], axis=-1),
    ]
    return _model(nodes)


def test_a_deinterleaved_rotation_fuses_with_one_gather_of_x_and_is_exact() -> None:
    model = _deinterleaved_site()
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model)
    assert result.fused == 1 and not result.skipped
    assert result.sites[0].interleaved == 0  # rotate_half on x read evens-first
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] == "x"]
    assert len(gathers) == 1
    feeds = _feeds()
    np.testing.assert_allclose(run_model(model, feeds)["y"], run_model(original, feeds)["y"], atol=1e-6)


@pytest.mark.parametrize(
    "variant", [{"second_sign": "Sub"}, {"swap": True}], ids=["wrong_sign", "odds_first"]
)
def test_deinterleaved_look_alikes_do_not_fuse(variant: dict) -> None:
    model = _deinterleaved_site(**variant)
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model)
    if result.fused:  # odds-first is still a rotation (of -angle pairs): then it must be exact
        feeds = _feeds()
        np.testing.assert_allclose(run_model(model, feeds)["y"], run_model(original, feeds)["y"], atol=1e-6)
    else:
        assert result.skipped
