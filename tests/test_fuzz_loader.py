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
from strategies import exercise_loader, mutated_models

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


@SHORT
@given(mutated_models())
def test_mutated_models_end_in_a_clean_error_or_a_fusion(tmp_path, data: bytes) -> None:
    exercise_loader(data, tmp_path / "model.onnx")
