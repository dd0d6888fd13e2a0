"""The paths a fuse protects are the model and each data file once, however many tensors share a file.

A 70B export has hundreds of external tensors in one data file; holding the report path against
each reference (two ``resolve()`` calls each) cost 0.07 s of a 1 s fuse (issue 17).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import pipeline
from rope_onnx.io.load import load_model


def _model_with_shared_data(folder: Path) -> Path:
    """A RoPE site plus five external weights: three in ``a.bin``, two in ``sub/b.bin``."""
    model = build(SiteSpec(head_dim=32, rotary_dim=32))
    previous = "x"
    for i in range(5):
        weight = numpy_helper.from_array(np.full((32, 32), i, dtype=np.float32), f"w{i}")
        location = "a.bin" if i % 2 == 0 else "sub/b.bin"
        onnx.external_data_helper.set_external_data(weight, location, offset=i * 4096, length=4096)
        weight.data_location = TensorProto.EXTERNAL
        weight.ClearField("raw_data")
        model.graph.initializer.append(weight)
        model.graph.node.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"z{i}"], name=f"proj{i}"))
        previous = f"z{i}"
    model.graph.output.append(helper.make_tensor_value_info(previous, TensorProto.FLOAT, None))
    (folder / "sub").mkdir()
    (folder / "a.bin").write_bytes(bytes(5 * 4096))
    (folder / "sub" / "b.bin").write_bytes(bytes(5 * 4096))
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_files_and_locations_name_each_data_file_once(tmp_path: Path) -> None:
    loaded = load_model(_model_with_shared_data(tmp_path))
    assert len(loaded.external) == 5
    assert loaded.locations == ["a.bin", "sub/b.bin"]  # first-reference order, as written
    reference = [loaded.path, *sorted({loaded.folder / ref.location for ref in loaded.external})]
    assert loaded.files == reference == [loaded.path, tmp_path / "a.bin", tmp_path / "sub" / "b.bin"]


def test_the_report_path_is_held_against_each_file_once(tmp_path: Path, monkeypatch) -> None:
    source = _model_with_shared_data(tmp_path)
    held: list[tuple[Path, ...]] = []
    check = pipeline.check_output_path

    def counting(output, source, *inputs):
        held.append((source, *inputs))
        return check(output, source, *inputs)

    monkeypatch.setattr(pipeline, "check_output_path", counting)
    out = tmp_path / "fused.onnx"
    pipeline.fuse_file(source, out, report=tmp_path / "report.json")
    data = [tmp_path / "a.bin", tmp_path / "sub" / "b.bin"]
    assert held == [(source, source, *data), (source, source, *data, out, *data)]
    assert (tmp_path / "report.json").exists() and out.exists()
