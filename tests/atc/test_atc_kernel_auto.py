"""``rope-onnx atc --kernel auto``: the nodes Huawei's built-in RotaryPositionEmbedding is proven to serve
are marked RoPEBuiltin in a NEW model file, which ATC gets; the input is never touched (library API, on
fused fixtures with the 910B3 and 310P3 profiles, and hand-built nodes for the mixed case)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES, PROFILE_910B, ROOT
from onnx import TensorProto, helper

from rope_onnx.atc import kernel_choice, marking
from rope_onnx.atc.convert import convert, plan
from rope_onnx.atc.profile import Variant
from rope_onnx.errors import CheckFailed, InputError
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.io.load import load_model
from rope_onnx.io.validate import check_structure
from rope_onnx.op.contract import OP_TYPE

PLUGIN = ROOT / "custom_op" / "framework" / "onnx_plugin" / "ro_pe_customer_plugin.cc"


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fused") / "llama.onnx"
    fuse_file(FIXTURES / "llama_base_dynamo_fp16.onnx", out, expect=4)
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checker_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The ATC form fails onnx.checker by design (a custom op in the default domain, docs/op-contract.md);
    with the fused nodes moved to a private domain the checker sees everything else of the file."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for node in copy.graph.node:
        if node.op_type in (OP_TYPE, kernel_choice.BUILTIN_OP_TYPE):
            node.domain = "rope_onnx.check"
    copy.opset_import.append(helper.make_opsetid("rope_onnx.check", 1))
    return copy


def plugin_builtin_opsets() -> set[int]:
    body = PLUGIN.read_text().split('REGISTER_CUSTOM_OP("RotaryPositionEmbedding")')[-1]  # the registration
    return {int(v) for v in re.findall(r'"ai\.onnx::(\d+)::RoPEBuiltin"', body)}


def test_910b3_auto_writes_a_new_marked_file_and_atc_gets_it(fused: Path, tmp_path: Path) -> None:
    before = digest(fused)
    result = convert(fused, PROFILE_910B, kernel="auto", dry_run=True, output=tmp_path / "m")
    marked = marking.default_path(fused, "Ascend910B3", "prefill")
    assert result.marked is not None and result.marked.path == marked and marked.is_file()
    assert digest(fused) == before  # the input is untouched
    assert f"--model={marked}" in result.command.argv
    row = next(c for c in result.checks if c.name == "atc_model")
    assert row.status == "pass" and str(marked) in row.message and "4 of 4" in row.message
    kernels = [c for c in result.checks if c.name.startswith("kernel[")]
    assert len(kernels) == 4 and all(c.message.startswith("Huawei's built-in") for c in kernels)
    report = result.to_json()
    assert report["kernel"] == "auto" and report["atc_model"] == str(marked)
    assert len(report["marked_builtin"]) == 4
    model = onnx.load(marked)
    check_structure(marked, model)  # the project's own structural check of the ATC form
    onnx.checker.check_model(checker_copy(model), full_check=True)
    original = onnx.load(fused)
    assert [n.op_type for n in original.graph.node].count(OP_TYPE) == 4
    fused_types = [n.op_type for n in model.graph.node if n.op_type in (OP_TYPE, "RoPEBuiltin")]
    assert fused_types == ["RoPEBuiltin"] * 4
    # everything but the marked nodes' op type and rotary_dim is the input's
    for a, b in zip(original.graph.node, model.graph.node, strict=True):
        assert (a.name, list(a.input), list(a.output)) == (b.name, list(b.input), list(b.output))


def test_auto_infers_shapes_once_for_marking_and_checks(fused: Path, monkeypatch) -> None:
    """Marking renames ops and changes no tensor: the checks of the marked copy read the input's index."""
    from rope_onnx.graph.index import GraphIndex

    runs: list[int] = []
    real = GraphIndex._infer

    def counted(self: GraphIndex, model: onnx.ModelProto, *rest: object) -> None:
        runs.append(len(model.graph.node))
        real(self, model, *rest)

    monkeypatch.setattr(GraphIndex, "_infer", counted)
    result = plan(fused, PROFILE_910B, kernel="auto")
    assert result.marked is not None and len(result.marked.marked) == 4
    assert len(runs) == 1


def test_marked_nodes_are_what_the_plugin_maps_onto_rotary_position_embedding(fused: Path) -> None:
    result = convert(fused, PROFILE_910B, kernel="auto", dry_run=True)
    assert result.marked is not None and result.marked.path is not None
    model = onnx.load(result.marked.path)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset in plugin_builtin_opsets()  # ATC finds the key ai.onnx::<opset>::RoPEBuiltin
    plugin = PLUGIN.read_text()
    # ParseRoPEBuiltin: mode = interleaved; rotary_dim must be 0, anything else fails the parse
    assert 'opDest.SetAttr("mode", attrs.interleaved);' in plugin
    assert "attrs.rotaryDim != 0" in plugin
    choices = kernel_choice.choices(onnx.load(result.model), "ascend910b", result.profile.variants["prefill"])
    marked = [n for n in model.graph.node if n.op_type == "RoPEBuiltin"]
    for node, choice in zip(marked, choices, strict=True):
        attrs = {a.name: a.i for a in node.attribute}
        assert attrs == {"interleaved": choice.mode, "rotary_dim": 0}


def test_310p3_auto_marks_nothing_and_atc_gets_the_input(fused: Path, profile_310p: Path) -> None:
    result = convert(fused, profile_310p, kernel="auto", dry_run=True)
    assert result.marked is not None and result.marked.path is None and result.marked.marked == []
    assert not marking.default_path(fused, "Ascend310P3", "prefill").exists()
    assert f"--model={fused}" in result.command.argv
    row = next(c for c in result.checks if c.name == "atc_model")
    assert "ATC gets the input" in row.message and "found no RoPECustomer node" in row.message
    assert all("no ascend310p build" in c.message for c in result.checks if c.name.startswith("kernel["))


def test_custom_is_the_default_and_writes_nothing(fused: Path, tmp_path: Path) -> None:
    result = plan(fused, PROFILE_910B, output=tmp_path / "m")
    assert result.marked is not None and result.marked.kernel == "custom" and result.marked.path is None
    assert f"--model={fused}" in result.command.argv
    assert result.to_json()["marked_builtin"] == []
    with pytest.raises(InputError, match="--marked-output is the file --kernel auto writes"):
        plan(fused, PROFILE_910B, marked_output=tmp_path / "x.onnx")


def test_marked_path_is_checked_like_every_written_path(fused: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="equals the input"):
        plan(fused, PROFILE_910B, kernel="auto", marked_output=fused)
    with pytest.raises(InputError, match="is a directory"):
        plan(fused, PROFILE_910B, kernel="auto", marked_output=tmp_path)
    om = tmp_path / "out"  # ATC's .om / log must not land on the marked file either
    with pytest.raises(InputError):
        plan(fused, PROFILE_910B, kernel="auto", output=om, marked_output=tmp_path / "out.om")
    link = tmp_path / "link.onnx"
    link.symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(InputError, match="symbolic link"):
        plan(fused, PROFILE_910B, kernel="auto", marked_output=link)


def test_a_failed_preflight_writes_no_marked_file(fused: Path, tmp_path: Path) -> None:
    target = tmp_path / "marked.onnx"
    renamed = 'variants.prefill.inputs=[{name="tokens", shape=["batch","seq"]}]'
    with pytest.raises(CheckFailed, match="profile_inputs"):  # exit 1: nothing written, ATC not run
        convert(fused, PROFILE_910B, kernel="auto", dry_run=True, marked_output=target, overrides=[renamed])
    assert not target.exists()


def test_external_data_is_shared_next_to_the_input_and_copied_elsewhere(fused: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    model = onnx.load(fused)
    onnx.save(model, src / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=0)
    data_before = digest(src / "m.data")
    beside = convert(src / "m.onnx", PROFILE_910B, kernel="auto", dry_run=True)
    assert beside.marked is not None and beside.marked.path is not None
    assert beside.marked.path.parent == src and sorted(p.name for p in src.iterdir()) == sorted(
        ["m.onnx", "m.data", beside.marked.path.name]
    )  # no weight copied: the marked file refers to m.data
    assert load_model(beside.marked.path).external and digest(src / "m.data") == data_before
    away = tmp_path / "away"
    away.mkdir()
    convert(src / "m.onnx", PROFILE_910B, kernel="auto", dry_run=True, marked_output=away / "k.onnx")
    assert (away / "m.data").is_file() and digest(away / "m.data") == data_before


def two_nodes() -> onnx.ModelProto:
    """One node the built-in op serves (whole head) next to one it does not (partial rotary)."""
    vi = helper.make_tensor_value_info
    nodes = [
        helper.make_node(OP_TYPE, ["x", "c", "s"], ["y"], name="whole", interleaved=0, rotary_dim=0),
        helper.make_node(OP_TYPE, ["x", "c2", "s2"], ["y2"], name="partial", interleaved=1, rotary_dim=64),
    ]
    shapes = {"x": [2, 8, 64, 128], "c": [1, 1, 64, 128], "s": [1, 1, 64, 128], "c2": [1, 1, 64, 64]}
    shapes["s2"] = shapes["c2"]
    inputs = [vi(name, TensorProto.FLOAT16, shape) for name, shape in shapes.items()]
    outputs = [vi(name, TensorProto.FLOAT16, shapes["x"]) for name in ("y", "y2")]
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_only_eligible_nodes_are_marked(tmp_path: Path) -> None:
    path = tmp_path / "two.onnx"
    onnx.save(two_nodes(), path)
    loaded = load_model(path)
    static = Variant("prefill", "", "static", [])
    marked = marking.prepare(loaded, "ascend910b", static, "Ascend910B2", "auto")
    assert marked.marked == ["whole"] and marked.model is not None
    types = {n.name: n.op_type for n in marked.model.graph.node}
    assert types == {"whole": "RoPEBuiltin", "partial": OP_TYPE}
    assert {n.name: n.op_type for n in loaded.model.graph.node} == {"whole": OP_TYPE, "partial": OP_TYPE}
    assert marking.prepare(loaded, "ascend310p", static, "Ascend310P3", "auto").marked == []
    marking.write(marked, loaded)
    assert onnx.load(marked.path).graph.node[0].op_type == "RoPEBuiltin"
    with pytest.raises(InputError, match="choose one of custom, auto"):
        marking.prepare(loaded, "ascend910b", static, "Ascend910B2", "builtin")


def test_no_toolkit_is_found_before_the_marked_file_is_written(
    fused: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no atc here: a real run is exit 2
    target = tmp_path / "k.onnx"
    with pytest.raises(InputError, match="no CANN toolkit"):
        convert(fused, PROFILE_910B, kernel="auto", marked_output=target, output=tmp_path / "m")
    assert not target.exists()
