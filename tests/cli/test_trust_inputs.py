"""Hostile and malformed inputs: a clean one-line error (exit 2), never a crash, never a leak.

- External-data references are validated wherever a tensor can live — initializers, sparse
  initializers, ``TENSOR``/``TENSORS`` attributes, constants inside model-local functions,
  subgraphs — for ``../``, absolute paths, NUL bytes, negative or non-numeric offsets/lengths.
- Names that reach a rendered ATC command are refused when they hold ``:`` ``,`` ``;``; terminal
  control characters in names are escaped in the printed table (the JSON stays exact).
- The malformed inputs of issue 11's list end in one line and exit 2 (or, for graphs that are
  valid but odd, a skipped site), never "internal error".
- Valid sparse initializers are read, and generated names never collide with them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import onnx
import pytest
from bad_models import CRASH_MARKERS, _good_model
from conftest import ROOT, run_model
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build, feeds
from trust_graphs import D, Graph, copy_of

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.pipeline import fuse_file

PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


def assert_clean(result: CompletedProcess[str], says: str = "", code: int = 2) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.stdout[-500:], result.stderr)
    assert not any(marker in result.stderr for marker in CRASH_MARKERS), result.stderr
    if code == 2:
        assert 1 <= len(lines) <= 2, result.stderr
        assert says.lower() in result.stderr.lower(), result.stderr


# ------------------------------------------------------------------- external data, everywhere
def _external(tensor: onnx.TensorProto, location: str, offset: str = "0", length: str | None = None):
    raw = tensor.raw_data or numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length or str(len(raw)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return raw


def _weight(name: str = "w") -> onnx.TensorProto:
    return numpy_helper.from_array(np.arange(8, dtype=np.float32), name)


def _in_sparse_values(model: onnx.ModelProto, ref: dict) -> None:
    values = numpy_helper.from_array(np.ones(2, np.float32), "sw")
    indices = numpy_helper.from_array(np.array([0, 3], np.int64), "sw_indices")
    sparse = helper.make_sparse_tensor(values, indices, [8])
    _external(sparse.values, **ref)
    model.graph.sparse_initializer.append(sparse)
    model.graph.node.append(helper.make_node("Identity", ["sw"], ["sz"], name="reads_sparse"))
    model.graph.output.append(helper.make_tensor_value_info("sz", TensorProto.FLOAT, None))


def _in_tensors_attribute(model: onnx.ModelProto, ref: dict) -> None:
    tensor = _weight("t")
    _external(tensor, **ref)
    node = helper.make_node("Custom", ["x"], ["cz"], name="custom", domain="user.ops")
    node.attribute.append(helper.make_attribute("tables", [tensor]))
    model.graph.node.append(node)
    model.opset_import.append(helper.make_opsetid("user.ops", 1))


def _in_function_constant(model: onnx.ModelProto, ref: dict) -> None:
    tensor = _weight("fc")
    _external(tensor, **ref)
    body = [
        helper.make_node("Constant", [], ["c"], value=tensor),
        helper.make_node("Add", ["a", "c"], ["b"]),
    ]
    model.functions.append(
        helper.make_function("user.fn", "AddW", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    )
    model.opset_import.append(helper.make_opsetid("user.fn", 1))


def _in_subgraph(model: onnx.ModelProto, ref: dict) -> None:
    tensor = _weight("sg")
    _external(tensor, **ref)
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["bo"], value=tensor)],
        "branch",
        [],
        [helper.make_tensor_value_info("bo", TensorProto.FLOAT, [8])],
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    model.graph.initializer.append(cond)
    model.graph.node.append(
        helper.make_node("If", ["cond"], ["iz"], name="if", then_branch=branch, else_branch=branch)
    )
    model.graph.output.append(helper.make_tensor_value_info("iz", TensorProto.FLOAT, [8]))


def _in_initializer(model: onnx.ModelProto, ref: dict) -> None:
    tensor = _weight("w")
    _external(tensor, **ref)
    model.graph.initializer.append(tensor)


PLACES = {
    "initializer": _in_initializer,
    "sparse initializer": _in_sparse_values,
    "TENSORS attribute": _in_tensors_attribute,
    "function constant": _in_function_constant,
    "subgraph constant": _in_subgraph,
}
BAD_REFS = {
    "parent": ({"location": "../w.bin"}, "outside"),
    "absolute": ({"location": "/etc/passwd"}, "outside"),
    "nul byte": ({"location": "w\0.bin"}, "nul"),
    "negative offset": ({"location": "w.bin", "offset": "-4"}, "offset"),
    "non-numeric offset": ({"location": "w.bin", "offset": "abc"}, "offset"),
    "negative length": ({"location": "w.bin", "length": "-1"}, "length"),
    "non-numeric length": ({"location": "w.bin", "length": "12x"}, "length"),
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("bad", sorted(BAD_REFS))
def test_external_data_is_validated_wherever_a_tensor_lives(
    cli, tmp_path: Path, place: str, bad: str
) -> None:
    ref, says = BAD_REFS[bad]
    model = _good_model()
    PLACES[place](model, ref)
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    before = sorted(tmp_path.iterdir())
    assert_clean(cli("fuse", path, "-o", tmp_path / "f.onnx"), says)
    assert_clean(cli("verify", path, path, "--sites"), says)
    assert sorted(tmp_path.iterdir()) == before


# ------------------------------------------------------------------------- names reaching ATC
@pytest.mark.parametrize("char", [":", ",", ";"])
def test_names_that_would_split_an_atc_option_are_refused(cli, tmp_path: Path, char: str) -> None:
    text = PROFILE.read_text().replace(
        'name = "input_ids", shape = ["batch", "seq"]', f'name = "input{char}ids", shape = ["batch", "seq"]'
    )
    profile = tmp_path / "p.toml"
    profile.write_text(text)
    model = tmp_path / "m.onnx"
    fuse_file(ROOT / "models" / "fixtures" / "llama_base_ts_fp32.onnx", model)
    result = cli("atc", model, "--profile", profile, "--dry-run")
    assert_clean(result, repr(char))
    assert "atc --framework" not in result.stdout


@pytest.mark.parametrize("char", [":", ",", ";"])
def test_model_input_names_that_would_split_an_atc_option_are_refused(cli, tmp_path: Path, char: str) -> None:
    model = onnx.load(ROOT / "models" / "fixtures" / "llama_base_ts_fp32.onnx", load_external_data=False)
    for node in model.graph.node:
        node.input[:] = [f"input{char}ids" if i == "input_ids" else i for i in node.input]
    model.graph.input[0].name = f"input{char}ids"
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    fused = tmp_path / "f.onnx"
    fuse_file(path, fused)
    text = PROFILE.read_text().replace('"input_ids"', f'"input{char}ids"')
    profile = tmp_path / "p.toml"
    profile.write_text(text)
    result = cli("atc", fused, "--profile", profile, "--dry-run")
    assert_clean(result, repr(char))


def test_terminal_control_characters_are_escaped_in_the_table(cli, tmp_path: Path) -> None:
    model = _good_model()
    evil = "y\x1b]0;owned\x07\x1b[2J"
    site = next(n for n in model.graph.node if n.op_type == "Identity").input[0]  # the site's output
    for node in model.graph.node:
        node.output[:] = [evil if o == site else o for o in node.output]
        node.input[:] = [evil if i == site else i for i in node.input]
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    result = cli("fuse", path, "-o", tmp_path / "f.onnx", "--report", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sites"][0]["output"] == evil


# ----------------------------------------------------------------------------- malformed inputs
def test_a_file_where_an_output_subfolder_must_go(cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    model = _good_model()
    tensor = _weight()
    (folder / "sub" / "w.bin").write_bytes(_external(tensor, "sub/w.bin"))
    model.graph.initializer.append(tensor)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file, not a folder")
    assert_clean(cli("fuse", folder / "model.onnx", "-o", out / "f.onnx"), "sub")
    assert (out / "sub").read_text() == "a file, not a folder"
    assert sorted(p.name for p in out.iterdir()) == ["sub"]


def _odd_bound_site(kind: str) -> onnx.ModelProto:
    g = Graph()
    if kind == "gather past rank":
        mid = g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", ["x"]), g.const(7)]), g.const([0])])
    elif kind == "empty slice starts":
        mid = g.op(
            "Slice", [g.op("Shape", ["x"]), g.const(np.zeros(0, np.int64)), g.const(np.zeros(0, np.int64))]
        )
    else:  # split sizes of 2**40 on the channel axis
        mid = None
    if mid is None:
        parts = [f"split_{i}" for i in range(2)]
        g.nodes.append(helper.make_node("Split", ["x", g.const([2**40, 8])], parts, name="huge", axis=-1))
        rot = g.op("Concat", [g.op("Neg", [parts[1]]), parts[0]], axis=-1)
        y = g.op("Add", [g.op("Mul", ["x", "cos"]), g.op("Mul", [rot, "sin"])])
    else:
        y = g.rope("x", "cos", "sin", mid=mid)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    return g.model([("x", ["B", 3, "L", D]), ("cos", [1, 1, "L", D]), ("sin", [1, 1, "L", D])], ["y"])


@pytest.mark.parametrize("kind", ["gather past rank", "empty slice starts", "split sizes 2**40"])
def test_odd_bounds_are_skipped_not_crashed(cli, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_odd_bound_site(kind).SerializeToString())
    result = cli("fuse", path, "-o", tmp_path / "f.onnx")
    assert result.returncode in (0, 2), result.stderr
    assert not any(marker in result.stderr for marker in CRASH_MARKERS), result.stderr
    if result.returncode == 0:
        assert "fused 0" in result.stdout


def _npz_declaring_a_huge_array(path: Path) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (2**40,)  # 4 TiB of float32
    with zipfile.ZipFile(path, "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(b"\0" * 64)


FEED_FILES = {
    "corrupt zip": lambda p: p.write_bytes(b"PK\x03\x04" + b"\xff" * 60),
    "empty": lambda p: p.write_bytes(b""),
    "a .npy": lambda p: np.save(p.open("wb"), np.zeros(3, np.float32)),
    "declares 4 TiB": _npz_declaring_a_huge_array,
    "text": lambda p: p.write_text("x = 1\n"),
}


@pytest.mark.parametrize("case", sorted(FEED_FILES))
def test_bad_verify_inputs_files_are_one_line_errors(cli, tmp_path: Path, case: str) -> None:
    original = tmp_path / "m.onnx"
    original.write_bytes(_good_model().SerializeToString())
    fused = tmp_path / "f.onnx"
    fuse_file(original, fused)
    feeds_path = tmp_path / "feeds.npz"
    FEED_FILES[case](feeds_path)
    assert_clean(cli("verify", original, fused, "--inputs", feeds_path), "feeds")


@pytest.mark.parametrize("value", [str(10**12), str(2**63), str(10**30)])
def test_dims_too_large_are_one_line_errors(cli, tmp_path: Path, value: str) -> None:
    original = tmp_path / "m.onnx"
    original.write_bytes(_good_model().SerializeToString())
    fused = tmp_path / "f.onnx"
    fuse_file(original, fused)
    assert_clean(cli("verify", original, fused, "--dim", f"B={value}"), "--dim")
    assert_clean(cli("fuse", original, "-o", tmp_path / "g.onnx", "--verify", "--dim", f"B={value}"), "--dim")


def test_a_deeply_nested_toml_profile_is_a_one_line_error(cli, tmp_path: Path) -> None:
    profile = tmp_path / "deep.toml"
    profile.write_text("x = " + "[" * 20000 + "]" * 20000 + "\n")
    model = tmp_path / "m.onnx"
    model.write_bytes(_good_model().SerializeToString())
    assert_clean(cli("atc", model, "--profile", profile, "--dry-run"), "deep.toml")


def test_a_profile_that_expands_to_a_billion_inputs_is_a_one_line_error(cli, tmp_path: Path) -> None:
    text = PROFILE.read_text().replace("num_layers = 2", "num_layers = 1000000000")
    profile = tmp_path / "huge.toml"
    profile.write_text(text)
    model = tmp_path / "m.onnx"
    model.write_bytes(_good_model().SerializeToString())
    assert_clean(cli("atc", model, "--profile", profile, "--dry-run", "--variant", "decode"), "inputs")


@pytest.mark.parametrize(
    "argv",
    [
        ["fuse"],
        ["fuse", "m.onnx"],
        ["verify", "a.onnx"],
        ["atc", "m.onnx"],
        ["bogus"],
        ["fuse", "--expect", "x"],
    ],
)
def test_usage_errors_keep_to_two_lines(cli, argv: list[str]) -> None:
    """argparse's usage errors, and the command's own (``atc`` without ``--profile``), exit 2 briefly."""
    result = cli(*argv)
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert 1 <= len(err) <= 2, err


# -------------------------------------------------------------------------- sparse initializers
def _with_sparse(model: onnx.ModelProto, name: str, width: int) -> onnx.ModelProto:
    """``z = x + s`` where s is a valid sparse initializer [width] (two non-zero entries)."""
    values = numpy_helper.from_array(np.array([1.5, -2.0], np.float32), name)
    indices = numpy_helper.from_array(np.array([0, width - 1], np.int64), f"{name}_indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [width]))
    model.graph.node.append(helper.make_node("Add", ["x", name], ["z"], name="reads_sparse"))
    x_dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, x_dims))
    return model


def test_a_valid_sparse_initializer_is_read(cli, tmp_path: Path) -> None:
    model = _with_sparse(_good_model(), "s", 8)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    result = cli("fuse", path, "-o", tmp_path / "f.onnx", "--domain", "x.y")
    assert result.returncode == 0, result.stderr
    fused = onnx.load(tmp_path / "f.onnx")
    onnx.checker.check_model(fused)
    assert [s.values.name for s in fused.graph.sparse_initializer] == ["s"]


@pytest.mark.parametrize("name", ["rope_onnx/cos/channels", "rope_onnx/cos/full_width", "rope_onnx/x/window"])
def test_generated_names_never_collide_with_sparse_initializers(name: str) -> None:
    spec = SiteSpec(head_dim=16, rotary_dim=16, interleaved=True, seed_form=True, split="step2")
    model = _with_sparse(build(spec), name, 16)
    fused = copy_of(model)
    assert fuse_model(fused, "x.y").fused == 1
    onnx.checker.check_model(fused)
    data = feeds(spec, batch=2, length=4, seed=3)
    want, got = run_model(model, data), run_model(fused, data)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5)
