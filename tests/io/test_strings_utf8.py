"""The loader's UTF-8 check: the C parse (a UTF-8-verifying copy of ONNX's schema) and the Python walk
agree, for every kind of invalid sequence and wherever the string sits (issue 17 made the C parse the
fast path; the walk stays the check where that parse fails or cannot be built)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from rope_onnx.io import validate

MARK = b"QQQQ"  # a 4-byte placeholder, replaced in place (lengths stay valid)
#: Sequences Python's strict decoder refuses: a lone continuation byte, an overlong '/', a UTF-16
#: surrogate, a code point above U+10FFFF, a truncated 3-byte sequence, a byte never valid in UTF-8.
BAD = [b"\x80QQQ", b"\xc0\xafQQ", b"\xed\xa0\x80Q", b"\xf4\x90\x80\x80", b"\xe2\x82QQ", b"\xffQQQ"]


def _model(where: str) -> onnx.ModelProto:
    text = MARK.decode()
    body = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_in"], name=text if where == "subgraph" else "inner")],
        "body",
        [],
        [helper.make_tensor_value_info("y_in", TensorProto.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("Neg", ["x"], ["n"], name=text if where == "node" else "neg", doc_string="döc ✓"),
        helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body, name="if"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if where == "metadata":
        helper.set_model_props(model, {"key": text})
    return model


@pytest.mark.parametrize("where", ["node", "subgraph", "metadata"])
@pytest.mark.parametrize("bad", BAD)
def test_the_c_parse_and_the_walk_refuse_the_same_strings(where: str, bad: bytes) -> None:
    data = _model(where).SerializeToString()
    assert MARK in data
    model = onnx.ModelProto.FromString(data.replace(MARK, bad))
    assert not validate._strings_decode_walk(model)
    assert not validate._strings_decode(model)
    assert not validate._strings_decode(model, data.replace(MARK, bad))  # the file's own bytes
    verifying = validate._verifying_model()
    assert verifying is not None  # this protobuf builds it: the fast path is the one tested
    with pytest.raises(Exception, match="UTF-8"):
        verifying.FromString(data.replace(MARK, bad))


@pytest.mark.parametrize("where", ["node", "subgraph", "metadata"])
def test_valid_non_ascii_strings_pass_both(where: str) -> None:
    data = _model(where).SerializeToString().replace(MARK, "üü".encode())
    model = onnx.ModelProto.FromString(data)
    assert validate._strings_decode_walk(model)
    assert validate._strings_decode(model)
    assert validate._strings_decode(model, data)


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_string_the_file_overwrites_is_no_error(bad: bytes) -> None:
    """A singular field given twice keeps the last value: the first, not UTF-8, is not in the model."""
    field = b"\x12" + bytes([len(bad)])  # ModelProto.producer_name (field 2, length-delimited)
    data = _model("node").SerializeToString() + field + bad + b"\x12\x02ok"
    model = onnx.ModelProto.FromString(data)
    assert model.producer_name == "ok"
    verifying = validate._verifying_model()
    assert verifying is not None
    with pytest.raises(Exception, match="UTF-8"):  # the bytes fail the C parse: the walk decides
        verifying.FromString(data)
    assert validate._strings_decode(model, data)
