"""The ONNX reference functions: ONNX Runtime really runs every variant, equal to the NumPy reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_model
from onnx import TensorProto, helper

from rope_onnx.op.contract import REFERENCE_DOMAIN
from rope_onnx.op.decomposition import embed_reference, runnable_copy
from rope_onnx.op.reference import rope

CASES = [(1, 0), (0, 0), (1, 8), (0, 8), (0, 16), (1, 4)]  # (interleaved, rotary_dim), head 16


def _model(opset: int, elem: int) -> onnx.ModelProto:
    nodes, inputs, outputs = [], [], []
    for k, (il, rd) in enumerate(CASES):
        width = rd or 16
        nodes.append(
            helper.make_node(
                "RoPECustomer",
                [f"x{k}", f"c{k}", f"s{k}"],
                [f"y{k}"],
                name=f"r{k}",
                interleaved=il,
                rotary_dim=rd,
            )
        )
        inputs += [
            helper.make_tensor_value_info(f"x{k}", elem, [2, 3, 5, 16]),
            helper.make_tensor_value_info(f"c{k}", elem, [5, width]),
            helper.make_tensor_value_info(f"s{k}", elem, [2, 1, 5, width]),
        ]
        outputs.append(helper.make_tensor_value_info(f"y{k}", elem, [2, 3, 5, 16]))
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", opset)]
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize("opset", [11, 14, 17, 21, 28])
@pytest.mark.parametrize(
    ("elem", "dtype"), [(TensorProto.FLOAT, np.float32), (TensorProto.FLOAT16, np.float16)]
)
def test_every_attribute_pair_runs_in_onnxruntime(opset: int, elem: int, dtype: type) -> None:
    model = _model(opset, elem)
    runnable = runnable_copy(model)
    onnx.checker.check_model(runnable, full_check=True)
    rng = np.random.default_rng(opset)
    feeds = {
        i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(dtype)
        for i in model.graph.input
    }
    got = run_model(model, feeds)
    for k, (il, rd) in enumerate(CASES):
        want = rope(feeds[f"x{k}"], feeds[f"c{k}"], feeds[f"s{k}"], il, rd)
        np.testing.assert_array_equal(got[f"y{k}"], want)


def test_the_original_is_not_touched_and_embedding_twice_is_harmless() -> None:
    model = _model(17, TensorProto.FLOAT)
    before = model.SerializeToString()
    copy = runnable_copy(model)
    assert model.SerializeToString() == before
    functions = len(copy.functions)
    assert functions == len(CASES)
    embed_reference(copy, REFERENCE_DOMAIN)
    assert len(copy.functions) == functions
    assert {n.domain for n in copy.graph.node} == {REFERENCE_DOMAIN}
