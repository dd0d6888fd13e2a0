"""The pass touches only what it creates: RoPECustomer nodes and functions already in a model stay.

A model may already hold a ``RoPECustomer`` node — fused before, or a user's own operator of that
name, in any domain — and model-local functions with the very domain, name and overload the pass
would emit.  Under every ``--domain`` those nodes and functions are kept byte for byte, the pass's
own function gets an identity nothing in the model has, and ``verify`` runs the ORIGINAL model's
nodes as they are (never moved into the reference domain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from trust_graphs import D, copy_of, plain_site, random_feeds

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.op.contract import REFERENCE_DOMAIN
from rope_onnx.op.decomposition import overload_key
from rope_onnx.verify import VerifyOptions, verify_models
from rope_onnx.verify.runner import runnable

USER = "user.rope"
PASS_OVERLOAD = overload_key(0, D, TensorProto.FLOAT)
FEEDS = random_feeds({"x": [2, 3, 5, D], "cos": [1, 1, 5, D], "sin": [1, 1, 5, D]}, seed=3)


def _user_function(domain: str, overload: str) -> onnx.FunctionProto:
    """A user's own 'RoPECustomer': z = -x (nothing like RoPE, so a mix-up shows in the numbers)."""
    function = helper.make_function(
        domain,
        "RoPECustomer",
        ["x"],
        ["y"],
        [helper.make_node("Neg", ["x"], ["y"])],
        opset_imports=[helper.make_opsetid("", 17)],
    )
    function.overload = overload
    return function


def with_user_node(domain: str, overload: str = "", function: bool = True) -> onnx.ModelProto:
    """The plain site plus ``z = RoPECustomer(x)`` in ``domain`` (served by a local function)."""
    model = plain_site()
    node = helper.make_node("RoPECustomer", ["x"], ["z"], name="users_own", domain=domain)
    node.overload = overload
    model.graph.node.append(node)
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    if domain not in ("", "ai.onnx"):
        model.opset_import.append(helper.make_opsetid(domain, 1))
        if function:
            model.functions.append(_user_function(domain, overload))
    model.ir_version = 10
    return model


def run_as_is(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    """ONNX Runtime on the model exactly as written (no RoPECustomer rewritten for the run)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def _node(model: onnx.ModelProto, output: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if output in n.output)


NODE_DOMAINS = ("", "ai.onnx", USER, REFERENCE_DOMAIN)
PASS_DOMAINS = ("", USER, REFERENCE_DOMAIN, "elsewhere")


@pytest.mark.parametrize("node_domain", NODE_DOMAINS)
@pytest.mark.parametrize("pass_domain", PASS_DOMAINS)
def test_a_pre_existing_rope_node_and_its_function_are_kept(node_domain: str, pass_domain: str) -> None:
    model = with_user_node(node_domain, overload=PASS_OVERLOAD if node_domain else "")
    fused = copy_of(model)
    result = fuse_model(fused, pass_domain)
    assert result.fused == 1
    assert _node(fused, "z").SerializeToString() == _node(model, "z").SerializeToString()
    kept = {f.SerializeToString() for f in fused.functions}
    assert all(f.SerializeToString() in kept for f in model.functions), "a user's function was changed"
    ours = _node(fused, result.sites[0].output)
    assert ours.op_type == "RoPECustomer" and ours.domain == pass_domain


@pytest.mark.parametrize("overload", [PASS_OVERLOAD, ""])
def test_the_pass_function_gets_an_identity_nothing_in_the_model_has(overload: str) -> None:
    model = with_user_node(USER, overload=overload)
    fused = copy_of(model)
    assert fuse_model(fused, USER).fused == 1
    before = {(f.domain, f.name, f.overload) for f in model.functions}
    added = [f for f in fused.functions if (f.domain, f.name, f.overload) not in before]
    assert len(added) == 1, [(f.domain, f.name, f.overload) for f in fused.functions]
    ours = next(n for n in fused.graph.node if n.op_type == "RoPECustomer" and n.name != "users_own")
    assert (ours.domain, ours.op_type, ours.overload) == (added[0].domain, added[0].name, added[0].overload)
    want, got = run_as_is(model, FEEDS), run_as_is(fused, FEEDS)
    np.testing.assert_array_equal(got["z"], -FEEDS["x"])  # the user's op still computes -x
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-5)


def test_a_function_in_the_pass_domain_without_a_node_is_not_reused() -> None:
    """Only the function is there (the node reading it was removed): still the user's, not ours."""
    model = plain_site()
    model.ir_version = 10
    model.opset_import.append(helper.make_opsetid(USER, 1))
    model.functions.append(_user_function(USER, PASS_OVERLOAD))
    fused = copy_of(model)
    assert fuse_model(fused, USER).fused == 1
    assert fused.functions[0].SerializeToString() == model.functions[0].SerializeToString()
    np.testing.assert_allclose(
        run_as_is(fused, FEEDS)["y"], run_as_is(model, FEEDS)["y"], rtol=1e-5, atol=1e-5
    )


def test_a_second_fusion_with_another_domain_leaves_the_first_ones_nodes() -> None:
    once = copy_of(plain_site())
    assert fuse_model(once, USER).fused == 1
    first = [n.SerializeToString() for n in once.graph.node if n.op_type == "RoPECustomer"]
    twice = copy_of(once)
    fuse_model(twice, "elsewhere")
    assert [n.SerializeToString() for n in twice.graph.node if n.op_type == "RoPECustomer"] == first
    assert [f.SerializeToString() for f in twice.functions] == [f.SerializeToString() for f in once.functions]


@pytest.mark.parametrize("pass_domain", ["", USER])
def test_verify_runs_the_original_nodes_as_they_are(tmp_path: Path, pass_domain: str) -> None:
    original = tmp_path / "model.onnx"
    onnx.save(with_user_node(USER), original)
    fused = tmp_path / "fused.onnx"
    fuse_file(original, fused, domain=pass_domain)
    result = verify_models(original, fused, VerifyOptions())
    assert result.passed, result.render()
    ran = runnable(onnx.load(original), None, False)
    user_node = _node(ran, "z")
    assert (user_node.domain, user_node.overload) == (USER, ""), "the original's node was moved"
    again = runnable(onnx.load(fused), None, False)
    assert (_node(again, "z").domain, _node(again, "z").overload) == (USER, "")
