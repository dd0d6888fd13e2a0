"""Small models for the bad-input tests of several folders (tests/cli, tests/io): one place, importable
from anywhere under tests/ (pytest's pythonpath has tests/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build

#: Words that only a crash prints.
CRASH_MARKERS = ("Traceback", "internal error")


def _good_model() -> onnx.ModelProto:
    return build(SiteSpec(head_dim=8, rotary_dim=8))


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _with_external_weight(folder: Path, location: str, write_data: bool = True) -> Path:
    """The RoPE site plus ``z = x * w`` where ``w``'s 8 floats live in the file ``location``."""
    model = _good_model()
    weight = numpy_helper.from_array(np.arange(8, dtype=np.float32), "w")
    if write_data:
        (folder / location).write_bytes(weight.raw_data)
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "32")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    model.graph.initializer.append(weight)
    model.graph.node.append(helper.make_node("Mul", ["x", "w"], ["z"], name="uses_w"))
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    return _save(model, folder / "model.onnx")
