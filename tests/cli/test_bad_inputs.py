"""Every bad input to ``rope-onnx fuse`` ends as docs/conventions.md says.

Exit 2, one or two lines on stderr saying what is wrong (no traceback unless ``--debug``), the
input byte-identical afterwards and no output, report or temporary file left behind.  Each case
builds its bad input in a fresh folder; the checks are the same for all of them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from bad_models import CRASH_MARKERS, _good_model, _save, _with_external_weight
from conftest import cli
from onnx import TensorProto, helper

from rope_onnx.cli import app as cli_module
from rope_onnx.io import atomic


def _versioned(ir_version: int | None = None, opset: int | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        model = _good_model()
        if ir_version is not None:
            model.ir_version = ir_version
        if opset is not None:
            model.opset_import[0].version = opset
        return _save(model, folder / "model.onnx")

    return make


def _truncated(folder: Path) -> Path:
    data = _good_model().SerializeToString()
    (folder / "model.onnx").write_bytes(data[: len(data) * 2 // 3])
    return folder / "model.onnx"


def _corrupt_initializer(folder: Path) -> Path:
    """Declares 42 int64s, holds 1: found by the loader fuzz (crashed the pass before the fix)."""
    model = _good_model()
    tensor = next(t for t in model.graph.initializer if t.data_type == TensorProto.INT64)
    tensor.dims[:] = [42]
    return _save(model, folder / "model.onnx")


def _unknown_elem_type(folder: Path) -> Path:
    model = _good_model()
    model.graph.initializer[0].data_type = 81
    return _save(model, folder / "model.onnx")


def _missing_required_attribute(folder: Path) -> Path:
    """A Concat without ``axis``: invalid ONNX, crashed the pass before the loader checked schemas."""
    model = _good_model()
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    del concat.attribute[:]
    return _save(model, folder / "model.onnx")


def _non_utf8_name(folder: Path) -> Path:
    """A tensor name that is not UTF-8: protobuf parses it, rewriting it crashed before the fix."""
    data = _good_model().SerializeToString()
    name = b"slice"  # the site's Slice outputs are named sliceN_0; the fused node keeps one of them
    index = data.index(name)
    bad = data[:index] + b"\xff" + data[index + 1 :]
    (folder / "model.onnx").write_bytes(bad)
    return folder / "model.onnx"


def _cycle(folder: Path) -> Path:
    """The site's first Slice reads the site's output: a cycle (found by atheris; the pass recursed)."""
    model = _good_model()
    first = next(n for n in model.graph.node if n.op_type == "Slice")
    first.input[0] = "y"
    return _save(model, folder / "model.onnx")


def _defined_twice(folder: Path) -> Path:
    model = _good_model()
    model.graph.node[1].output[0] = model.graph.node[0].output[0]
    return _save(model, folder / "model.onnx")


def _attribute_of_wrong_type(folder: Path) -> Path:
    """Concat's ``axis`` stored as a GRAPHS attribute (found by atheris; crashed the pass)."""
    model = _good_model()
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    concat.attribute[0].type = onnx.AttributeProto.GRAPHS
    return _save(model, folder / "model.onnx")


BAD_MODELS: dict[str, Callable[[Path], Path]] = {
    "cycle": _cycle,
    "defined_twice": _defined_twice,
    "attribute_of_wrong_type": _attribute_of_wrong_type,
    "missing": lambda folder: folder / "absent.onnx",
    "directory": lambda folder: folder,
    "empty": lambda folder: _save(onnx.ModelProto(), folder / "model.onnx"),
    "random_bytes": lambda folder: _write(folder, np.random.default_rng(7).bytes(4096)),
    "truncated": _truncated,
    "text_file": lambda folder: _write(folder, b"# not a model\nThis is a README saved as model.onnx\n"),
    "ir_version_too_new": _versioned(ir_version=onnx.IR_VERSION + 1),
    "opset_too_old": _versioned(opset=10),
    "opset_too_new": _versioned(opset=99),
    "external_data_missing": lambda folder: _with_external_weight(folder, "w.bin", write_data=False),
    "external_data_parent": lambda folder: _with_external_weight(folder, "../w.bin", write_data=False),
    "external_data_absolute": lambda folder: _with_external_weight(
        folder, str(folder.resolve() / "w.bin"), write_data=True
    ),
    "corrupt_initializer": _corrupt_initializer,
    "unknown_element_type": _unknown_elem_type,
    "missing_required_attribute": _missing_required_attribute,
    "non_utf8_name": _non_utf8_name,
}
#: What stderr must mention for each case (the "what is wrong" part of the message).
SAYS = {
    "cycle": "before it is defined",
    "defined_twice": "defined twice",
    "attribute_of_wrong_type": "axis",
    "missing": "no such file",
    "directory": "is a directory",
    "empty": "empty",
    "random_bytes": "not a readable ONNX model",
    "truncated": "not a readable ONNX model",
    "text_file": "not a readable ONNX model",
    "ir_version_too_new": "IR version",
    "opset_too_old": "opset 10",
    "opset_too_new": "opset 99",
    "external_data_missing": "missing",
    "external_data_parent": "path traversal",
    "external_data_absolute": "path traversal",
    "corrupt_initializer": "corrupt",
    "unknown_element_type": "unknown element type",
    "missing_required_attribute": "axis",
    "non_utf8_name": "UTF-8",
}


def _write(folder: Path, data: bytes) -> Path:
    (folder / "model.onnx").write_bytes(data)
    return folder / "model.onnx"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_clean_error(result, says: str) -> None:
    """Exit 2, a short message naming the problem, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert 1 <= len(lines) <= 2, result.stderr
    assert not any(marker in result.stderr for marker in CRASH_MARKERS), result.stderr
    assert says.lower() in result.stderr.lower(), result.stderr


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_fuse_refuses_bad_model_cleanly(case: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = BAD_MODELS[case](folder)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _snapshot(tmp_path)
    result = cli("fuse", str(source), "-o", str(out_dir / "fused.onnx"), "--report", str(out_dir / "r.json"))
    assert_clean_error(result, SAYS[case])
    assert _snapshot(tmp_path) == before, "the input changed or an output was left behind"


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    source = _write(tmp_path, b"garbage")
    result = cli("--debug", "fuse", str(source), "-o", str(tmp_path / "out.onnx"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "not a readable ONNX model" in result.stderr


def test_external_data_inside_the_folder_is_fine(tmp_path: Path) -> None:
    """The control for the external-data cases: the same model with its data file present fuses."""
    source = _with_external_weight(tmp_path, "w.bin")
    result = cli("fuse", str(source), "-o", str(tmp_path / "fused.onnx"))
    assert result.returncode == 0, result.stderr
    fused = onnx.load(str(tmp_path / "fused.onnx"), load_external_data=False)
    weight = next(t for t in fused.graph.initializer if t.name == "w")
    assert weight.data_location == TensorProto.EXTERNAL and not weight.raw_data


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (mode bits do not bind root: use sysfs then)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    (folder / "probe").unlink()
    sysfs = Path("/sys")
    try:
        (sysfs / "rope_onnx_probe.onnx").touch()
    except OSError:
        return sysfs
    pytest.skip("no folder here refuses writes to this user")


@pytest.mark.parametrize("where", ["no_such_folder", "not_writable", "a_directory", "same_as_input"])
def test_fuse_refuses_bad_output_path(where: str, tmp_path: Path) -> None:
    source = _save(_good_model(), tmp_path / "model.onnx")
    out = {
        "no_such_folder": lambda: tmp_path / "nowhere" / "fused.onnx",
        "not_writable": lambda: _unwritable_folder(tmp_path) / "fused.onnx",
        "a_directory": lambda: tmp_path,
        "same_as_input": lambda: tmp_path / "." / "model.onnx",
    }[where]()
    says = {
        "no_such_folder": "does not exist",
        "not_writable": "not writable",
        "a_directory": "is a directory",
        "same_as_input": "equals the input",
    }[where]
    before = _snapshot(tmp_path)
    result = cli("fuse", str(source), "-o", str(out))
    assert_clean_error(result, says)
    assert _snapshot(tmp_path) == before


def test_output_equal_to_input_through_a_symlink_is_refused(tmp_path: Path) -> None:
    source = _save(_good_model(), tmp_path / "model.onnx")
    (tmp_path / "link.onnx").symlink_to(source)
    before = source.read_bytes()
    result = cli("fuse", str(source), "-o", str(tmp_path / "link.onnx"))
    assert_clean_error(result, "equals the input")
    assert source.read_bytes() == before


def test_report_equal_to_the_input_is_refused(tmp_path: Path) -> None:
    source = _save(_good_model(), tmp_path / "model.onnx")
    before = _snapshot(tmp_path)
    result = cli("fuse", str(source), "-o", str(tmp_path / "f.onnx"), "--report", str(source))
    assert_clean_error(result, "equals the input")
    assert _snapshot(tmp_path) == before


def test_report_in_a_missing_folder_is_refused_before_any_output(tmp_path: Path) -> None:
    source = _save(_good_model(), tmp_path / "model.onnx")
    before = _snapshot(tmp_path)
    result = cli("fuse", str(source), "-o", str(tmp_path / "f.onnx"), "--report", str(tmp_path / "no/r.json"))
    assert_clean_error(result, "does not exist")
    assert _snapshot(tmp_path) == before


# --------------------------------------------------------------------------- interrupted writes
def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("failure", ["disk_full", "interrupt"])
def test_interrupted_write_leaves_the_old_output_whole(
    failure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rename is the commit point: a failure before it leaves no temp file and the old output."""
    source = _save(_good_model(), tmp_path / "model.onnx")
    out = tmp_path / "fused.onnx"
    out.write_bytes(b"previous result")

    def fail(*_: object) -> None:
        if failure == "disk_full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", fail)
    code = cli_module.main(["fuse", str(source), "-o", str(out)])
    stderr = capsys.readouterr().err
    assert code == (2 if failure == "disk_full" else 130)
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert ("No space left" in stderr) if failure == "disk_full" else ("no output was written" in stderr)
    assert out.read_bytes() == b"previous result"
    assert _temp_files(tmp_path) == []


def test_failed_write_midway_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that dies after some bytes (the file handle raising) still leaves nothing."""
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, data: bytes) -> None:
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    out = tmp_path / "fused.onnx"
    with pytest.raises(atomic.InputError, match="nothing was written"):
        atomic.write_bytes_atomically(b"x" * 1000, out)
    assert not out.exists() and _temp_files(tmp_path) == []


# --------------------------------------------------------------------------- valid input, no RoPE
def _no_rope_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "plain", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, path)


def test_model_without_rope_exits_0_and_says_so(tmp_path: Path) -> None:
    source = _no_rope_model(tmp_path / "plain.onnx")
    result = cli("fuse", str(source), "-o", str(tmp_path / "fused.onnx"))
    assert result.returncode == 0, result.stderr
    assert "no RoPE site was found" in result.stdout
    assert (tmp_path / "fused.onnx").read_bytes() == source.read_bytes()


def test_model_without_rope_and_expect_exits_1_without_output(tmp_path: Path) -> None:
    source = _no_rope_model(tmp_path / "plain.onnx")
    result = cli("fuse", str(source), "-o", str(tmp_path / "fused.onnx"), "--expect", "2")
    assert result.returncode == 1
    assert "expected 2" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "fused.onnx").exists()
