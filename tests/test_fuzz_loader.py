"""Fuzzing the loader and the pass with hostile bytes: only rope-onnx's own clean errors may escape.

Random bytes, and valid small models with bit flips, overwrites, insertions, deletions and
truncations, go through what ``rope-onnx fuse`` does with a file (:func:`strategies.exercise_loader`).
CI runs a short derandomized sample; ``scripts/fuzz_loader.py`` runs long (atheris when installed).
Crashes this found are pinned as named cases in ``test_bad_inputs.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from rope_graphs import _G, _interleave
from strategies import exercise_loader, mutated_models

from rope_onnx.fuse import fuse_model

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
