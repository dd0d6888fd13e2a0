"""``verify`` first checks that FUSED derives from ORIGINAL (rope_onnx/verify/derive.py): an unrelated model
with the same signature is exit 2 with one line naming the difference, not a FAILED table (exit 1).

Pairs are real exports (models/fixtures) fused by the pass; the negative cases are the same pair with
one thing changed by hand, each naming what the message must say.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES
from onnx import numpy_helper

from rope_onnx import InputError, fuse_model, verify_models
from rope_onnx.cli.app import main
from rope_onnx.verify.derive import check_derivation

LLAMA = FIXTURES / "llama_base_ts_fp32.onnx"


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path), load_external_data=False)


def fused_copy(path: Path, domain: str = "") -> onnx.ModelProto:
    model = load(path)
    assert fuse_model(model, domain).fused == 4
    return model


@pytest.mark.parametrize(
    "other",
    ["llama_base_dynamo_fp32.onnx", "mistral_base_ts_fp32.onnx", "qwen2_base_ts_fp32.onnx"],
)
def test_an_unrelated_fused_model_with_the_same_signature_is_exit_2(
    tmp_path: Path, capsys, other: str
) -> None:
    source = load(FIXTURES / other)
    assert [i.name for i in source.graph.input] == [i.name for i in load(LLAMA).graph.input]
    assert [o.name for o in source.graph.output] == [o.name for o in load(LLAMA).graph.output]
    fused = tmp_path / "other_fused.onnx"
    onnx.save(fused_copy(FIXTURES / other), fused)
    for extra in ([], ["--sites"]):
        assert main(["verify", str(LLAMA), str(fused), *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1
        assert err.startswith("rope-onnx verify: error: the models do not correspond: ")


def test_the_pass_output_derives_in_every_form() -> None:
    original = load(LLAMA)
    for domain in ("", "com.example"):  # the ATC form and the runnable form (functions, opset import)
        check_derivation(original, fused_copy(LLAMA, domain))
    check_derivation(original, load(LLAMA))  # nothing fused: a model derives from itself
    widened = load(FIXTURES / "seed_halftables_ts_fp32.onnx")  # the rewrite adds widening Gathers
    fused = load(FIXTURES / "seed_halftables_ts_fp32.onnx")
    assert fuse_model(fused).fused > 0
    assert any(n.op_type == "Gather" and n.name.startswith("rope_onnx/") for n in fused.graph.node)
    check_derivation(widened, fused)


def _kept_node(model: onnx.ModelProto, op_type: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op_type and not n.name.startswith("rope_onnx/"))


def _change_op(model: onnx.ModelProto) -> str:
    node = _kept_node(model, "Softmax")
    node.op_type = "Relu"
    del node.attribute[:]
    return "is Softmax in ORIGINAL but Relu in FUSED"


def _change_attribute(model: onnx.ModelProto) -> str:
    node = _kept_node(model, "Softmax")
    node.attribute[0].i = 1 - node.attribute[0].i
    return "another value of attribute 'axis'"


def _change_weight(model: onnx.ModelProto) -> str:
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    array = numpy_helper.to_array(tensor).copy()
    array.flat[0] += 1
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    return f"initializer '{tensor.name}' has other values"


def _drop_a_kept_node(model: onnx.ModelProto) -> str:
    node = _kept_node(model, "Softmax")
    (consumer,) = [n for n in model.graph.node if node.output[0] in n.input]
    consumer.input[:] = [node.input[0] if i == node.output[0] else i for i in consumer.input]
    model.graph.node.remove(node)
    return "reads"


def _rename_an_output(model: onnx.ModelProto) -> str:
    producer = next(n for n in model.graph.node if "logits" in n.output)
    producer.output[:] = ["scores" if o == "logits" else o for o in producer.output]
    model.graph.output[0].name = "scores"
    return "outputs differ (logits, scores)"


def _retype_an_input(model: onnx.ModelProto) -> str:
    model.graph.input[1].type.tensor_type.elem_type = onnx.TensorProto.INT32
    return "inputs differ in element type (attention_mask)"


CHANGES: dict[str, Callable[[onnx.ModelProto], str]] = {
    "op": _change_op,
    "attribute": _change_attribute,
    "weight": _change_weight,
    "dropped node": _drop_a_kept_node,
    "output name": _rename_an_output,
    "input type": _retype_an_input,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_one_change_outside_the_sites_is_named(change: str) -> None:
    fused = fused_copy(LLAMA)
    says = CHANGES[change](fused)
    with pytest.raises(InputError, match="the models do not correspond") as caught:
        check_derivation(load(LLAMA), fused)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_swapped_arguments_are_hinted_and_a_correct_pair_still_verifies() -> None:
    fused = fused_copy(LLAMA)
    with pytest.raises(InputError, match=r"swapped\?"):
        check_derivation(fused, load(LLAMA))
    assert verify_models(LLAMA, fused).passed  # the check sits in front of a full run that passes
