"""Small stand-in models for the ``atc`` tests, built with onnx.helper.

Each has the input names, ranks and fixed sizes of a real export of its model class (what a
profile is written against) and a RoPECustomer node in the default domain, fed by an embedding
lookup and cos/sin tables as in a fused LLaMA graph.  Variations break exactly one thing each, so
every pre-flight check has a model built to fail it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.op.contract import OP_TYPE

ELEM = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}


def make_model(
    inputs: list[tuple[str, int, list]],
    *,
    head_dim: int = 16,
    dtype: str = "float32",
    fused: bool = True,
    rope_domain: str = "",
    extra_opsets: tuple[tuple[str, int], ...] = (),
    opset: int = 17,
    with_function: bool = False,
) -> onnx.ModelProto:
    """``inputs``: (name, elem_type, dims) with dims ints or symbolic names; the first must be the
    token ids [batch, seq]."""
    elem = ELEM[dtype]
    np_dtype = np.float32 if dtype == "bfloat16" else onnx.helper.tensor_dtype_to_np_dtype(elem)
    vocab = 64

    def table(name: str) -> TensorProto:
        tensor = numpy_helper.from_array(np.zeros((vocab, head_dim), dtype=np_dtype), name)
        if dtype == "bfloat16":
            tensor = helper.make_tensor(name, elem, [vocab, head_dim], np.zeros(vocab * head_dim).tolist())
        return tensor

    ids = inputs[0][0]
    nodes = [
        helper.make_node("Gather", ["embed", ids], ["x"], name="embed_lookup"),
        helper.make_node("Gather", ["cos_table", ids], ["cos"], name="cos_lookup"),
        helper.make_node("Gather", ["sin_table", ids], ["sin"], name="sin_lookup"),
    ]
    if fused:
        nodes.append(
            helper.make_node(
                OP_TYPE,
                ["x", "cos", "sin"],
                ["y"],
                name="rope_0",
                domain=rope_domain,
                interleaved=0,
                rotary_dim=0,
            )
        )
    else:
        nodes += [
            helper.make_node("Mul", ["x", "cos"], ["xc"]),
            helper.make_node("Mul", ["x", "sin"], ["xs"]),
            helper.make_node("Add", ["xc", "xs"], ["y"]),
        ]
    rope_shape = [*inputs[0][2], head_dim]
    outputs = [helper.make_tensor_value_info("y", elem, rope_shape)]
    for name, elem_type, dims in inputs[1:]:
        nodes.append(helper.make_node("Identity", [name], [f"{name}_out"]))
        outputs.append(helper.make_tensor_value_info(f"{name}_out", elem_type, dims))
    graph = helper.make_graph(
        nodes,
        "standin",
        [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs],
        outputs,
        initializer=[table("embed"), table("cos_table"), table("sin_table")],
        value_info=[helper.make_tensor_value_info("x", elem, rope_shape)],
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="rope-onnx-tests")
    model.ir_version = 8
    if with_function:
        model.functions.append(
            helper.make_function(
                "rope_onnx.reference",
                OP_TYPE,
                ["x", "cos", "sin"],
                ["y"],
                [helper.make_node("Mul", ["x", "cos"], ["y"])],
                [helper.make_opsetid("", opset)],
            )
        )
    return model


def llm_inputs(
    layers: int,
    kv_heads: int,
    head_dim: int,
    *,
    decode: bool,
    position_ids: bool = True,
    past_name: str = "past_key_values.{i}.{kv}",
    dtype: str = "float32",
) -> list[tuple[str, int, list]]:
    """Inputs as a TorchScript / optimum export of a Hugging Face causal LM names them."""
    i64 = TensorProto.INT64
    seq = 1 if decode else "seq"
    mask = "total_seq" if decode else "seq"
    inputs = [("input_ids", i64, ["batch", seq]), ("attention_mask", i64, ["batch", mask])]
    if position_ids:
        inputs.append(("position_ids", i64, ["batch", seq]))
    if decode:
        for i in range(layers):
            for kv in ("key", "value"):
                inputs.append(
                    (past_name.format(i=i, kv=kv), ELEM[dtype], ["batch", kv_heads, "past_seq", head_dim])
                )
    return inputs


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def test_standin_is_well_formed_when_roped_op_is_private(tmp_path):
    """The stand-in is a valid ONNX graph once RoPECustomer is given a function (checker sanity)."""
    model = make_model(
        llm_inputs(2, 1, 16, decode=True),
        rope_domain="rope_onnx.reference",
        extra_opsets=(("rope_onnx.reference", 1),),
        with_function=True,
    )
    onnx.checker.check_model(model)
    names = [i.name for i in model.graph.input]
    assert names[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert names[3:5] == ["past_key_values.0.key", "past_key_values.0.value"]
