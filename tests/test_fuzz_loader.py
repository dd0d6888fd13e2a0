"""Fuzzing the loader and the pass with hostile bytes: only rope-onnx's own clean errors may escape.

Random bytes, and valid small models with bit flips, overwrites, insertions, deletions and
truncations, go through what ``rope-onnx fuse`` does with a file (:func:`strategies.exercise_loader`).
CI runs a short derandomized sample; ``scripts/fuzz_loader.py`` runs long (atheris when installed).
Crashes this found are pinned as named cases in ``test_bad_inputs.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import _G, SiteSpec, _interleave, build
from strategies import exercise_loader, mutated_models

from rope_onnx.fusion import fuse_model

EXAMPLES = int(os.environ.get("ROPE_ONNX_FUZZ_EXAMPLES", "150"))
SHORT = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SHORT
@given(st.binary(max_size=2048))
def test_random_bytes_end_in_a_clean_error(tmp_path, data: bytes) -> None:
    exercise_loader(data, tmp_path / "model.onnx")


@settings(SHORT, max_examples=2 * EXAMPLES)
@given(mutated_models())
def test_mutated_models_end_in_a_clean_error_or_a_fusion(tmp_path, data: bytes) -> None:
    exercise_loader(data, tmp_path / "model.onnx")


def test_concat_of_mismatched_channel_grids_is_refused_not_crashed() -> None:
    """Regression (found by atheris, fixed on main): a Concat of channel grids that disagree (a
    shape-invalid graph that still loads) raised numpy's ValueError inside the pass."""
    g = _G()
    empty = g.last_slice("x", 8, 9)  # [B, 3, L, 0]
    pair = g.last_slice("x", 0, 2)  # [B, 3, L, 2]
    y = _interleave(g, empty, pair)  # Concat of [..., 0, 1] and [..., 2, 1] on the last axis
    g.nodes.append(helper.make_node("Identity", [y], ["y"]))
    graph = helper.make_graph(
        g.nodes,
        "mismatch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, "L", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    assert fuse_model(model).fused == 0


HUGE_WIDTH_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (2**30, 2**30))  # 1 GiB: the pass needs a few MB
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from rope_onnx.fusion import fuse_model
ints = lambda name, *v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
nodes = [
    helper.make_node("Reshape", ["x", "target"], ["wide"]),  # declared [B, 3, L, 2**40]: never runs
    helper.make_node("Slice", ["wide", "zero", "eight", "last"], ["part"]),
    helper.make_node("Mul", ["part", "cos"], ["a"]),
    helper.make_node("Mul", ["part", "sin"], ["b"]),
    helper.make_node("Add", ["a", "b"], ["y"]),
]
graph = helper.make_graph(
    nodes, "huge_width",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, "L", 8])]
    + [helper.make_tensor_value_info(t, TensorProto.FLOAT, ["L", 8]) for t in ("cos", "sin")],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    [ints("target", 0, 0, 0, 2**40), ints("zero", 0), ints("eight", 8), ints("last", -1)],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
print("fused", fuse_model(model).fused)
"""


def test_a_declared_huge_channel_width_does_not_exhaust_memory() -> None:
    """Regression (found by atheris, fixed on main): a shape-invalid Reshape declaring a 2**40-wide
    channel axis made the tracer build one polynomial per channel until memory ran out."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", HUGE_WIDTH_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0 and "fused 0" in run.stdout, run.stderr[-500:]


def test_a_slice_with_step_zero_is_refused_not_crashed() -> None:
    """Regression (found by atheris, fixed on main): a constant Slice step of 0 (invalid ONNX that
    still loads) raised ValueError in the pass's width rules."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    model.graph.initializer.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "step0"))
    first = next(n for n in model.graph.node if n.op_type == "Slice")
    first.input[4] = "step0"
    assert fuse_model(model).fused == 0


def test_a_slice_with_mismatched_list_lengths_is_refused_not_crashed() -> None:
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1, -1], dtype=np.int64), "two_axes"))
    first = next(n for n in model.graph.node if n.op_type == "Slice")
    first.input[3] = "two_axes"
    assert fuse_model(model).fused == 0
