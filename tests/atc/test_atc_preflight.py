"""Each pre-flight check catches a model built to fail it; a fused model passes them all."""

from __future__ import annotations

import json

import onnx
from onnx import TensorProto, helper
from test_atc_models import llm_inputs, make_model, save
from test_atc_profiles import CONFIGS, cli

from rope_onnx.atc import preflight
from rope_onnx.atc.profile import load_profile
from rope_onnx.io.load import load_model

TINY = "atc_configs/tiny-llama_ascend910b3.toml"
LLAMA_310P = "atc_configs/llama2-7b_ascend310p3.toml"


def tiny_prefill(**kwargs) -> onnx.ModelProto:
    return make_model(llm_inputs(2, 1, 16, decode=False, position_ids=False), head_dim=16, **kwargs)


def test_fused_model_passes_every_check_and_reports(tmp_path):
    model = save(tiny_prefill(), tmp_path / "fused.onnx")
    report = tmp_path / "r.json"
    run = cli("atc", str(model), "--profile", TINY, "--dry-run", "--report", str(report))
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert data["command"] == run.stdout.strip()
    assert data["dry_run"] is True and data["atc"]["returncode"] is None
    kernels = {c["name"]: c["status"] for c in data["checks"] if c["name"].startswith("kernel[")}
    assert len(kernels) == 1 and set(kernels.values()) == {"pass"}  # one row per fused node
    assert {c["name"]: c["status"] for c in data["checks"] if c["name"] not in kernels} == {
        "rope_present": "pass",
        "single_domain": "pass",
        "no_functions": "pass",
        "opset_covered": "pass",
        "rope_dtype": "pass",
        "tables_shape": "pass",
        "profile_inputs": "pass",
        "external_data": "pass",
        "atc_model": "pass",  # which file ATC gets (--kernel custom: the input)
    }


def test_rope_moved_to_a_second_domain_is_stopped_with_e16005(tmp_path):
    moved = tiny_prefill(rope_domain="com.example", extra_opsets=(("com.example", 1),))
    model = save(moved, tmp_path / "m.onnx")
    report = tmp_path / "r.json"
    run = cli("atc", str(model), "--profile", TINY, "--dry-run", "--report", str(report))
    assert run.returncode == 1
    assert run.stdout == ""
    assert "pre-flight single_domain: E16005 predicted" in run.stderr
    assert "com.example::<version>::RoPECustomer" in run.stderr
    assert "re-fuse without --domain" in run.stderr
    checks = {c["name"]: c["status"] for c in json.loads(report.read_text())["checks"]}
    assert checks["single_domain"] == "fail"


def test_default_domain_rope_with_an_extra_opset_import_is_e16005(tmp_path):
    model = save(tiny_prefill(extra_opsets=(("com.microsoft", 1),)), tmp_path / "m.onnx")
    run = cli("atc", str(model), "--profile", TINY, "--dry-run")
    assert run.returncode == 1
    assert "E16005 predicted: the model imports 2 opsets ('ai.onnx', 'com.microsoft')" in run.stderr


def test_unfused_model_gets_a_clear_warning_but_converts(tmp_path):
    model = save(tiny_prefill(fused=False), tmp_path / "plain.onnx")
    run = cli("atc", str(model), "--profile", TINY, "--dry-run")
    assert run.returncode == 0
    assert run.stdout.startswith("atc --framework=5 ")
    assert "warning: rope_present: the model has no RoPECustomer node: it was never fused" in run.stderr
    assert "rope-onnx fuse" in run.stderr


def test_model_local_function_is_refused(tmp_path):
    model = save(tiny_prefill(with_function=True), tmp_path / "m.onnx")
    run = cli("atc", str(model), "--profile", TINY, "--dry-run")
    assert run.returncode == 1
    assert "pre-flight no_functions: the model carries 1 model-local function(s)" in run.stderr


def test_opset_without_a_plugin_key_fails():
    for opset, status in ((10, "fail"), (11, "pass"), (28, "pass")):
        check = preflight.check_opset_covered(tiny_prefill(opset=opset))
        assert check.status == status, (opset, check.message)
    assert "ai.onnx::11..28::RoPECustomer" in preflight.check_opset_covered(tiny_prefill(opset=10)).message


def test_bad_rope_attribute_is_refused(tmp_path):
    model = tiny_prefill()
    rope = next(n for n in model.graph.node if n.op_type == "RoPECustomer")
    rope.attribute[0].i = 2  # interleaved must be 0 or 1
    run = cli("atc", str(save(model, tmp_path / "m.onnx")), "--profile", TINY, "--dry-run")
    assert run.returncode == 1
    assert "interleaved must be 0 or 1" in run.stderr and "E11010" in run.stderr


def test_bfloat16_rope_is_refused_on_310p_but_not_on_910b(tmp_path):
    inputs = llm_inputs(32, 32, 128, decode=False)
    model = save(make_model(inputs, head_dim=128, dtype="bfloat16"), tmp_path / "bf16.onnx")
    run = cli("atc", str(model), "--profile", LLAMA_310P, "--dry-run")
    assert run.returncode == 1
    assert "RoPECustomer runs in bfloat16, which Ascend310P3 does not support" in run.stderr
    run = cli("atc", str(model), "--profile", "atc_configs/llama2-7b_ascend910b3.toml", "--dry-run")
    assert run.returncode == 0, run.stderr


def test_dtype_found_by_shape_inference_when_not_annotated(tmp_path):
    model = tiny_prefill(dtype="float16")
    del model.graph.value_info[:]
    profile = load_profile(CONFIGS / "tiny-llama_ascend910b3.toml")
    check = preflight.check_rope_dtype(model, "ascend310p", "Ascend310P3")
    assert check.status == "pass" and "float16" in check.message
    assert profile.family == "ascend910b"


def test_profile_of_another_model_class_is_refused(tmp_path):
    # a LLaMA-2 decode graph converted with the Qwen2 profile: 28 vs 32 layers, 4 vs 32 KV heads
    model = save(make_model(llm_inputs(32, 32, 128, decode=True), head_dim=128), tmp_path / "llama.onnx")
    run = cli(
        "atc",
        str(model),
        "--profile",
        "atc_configs/qwen2-7b_ascend910b3.toml",
        "--variant",
        "decode",
        "--dry-run",
    )
    assert run.returncode == 1
    assert "'past_key_values.0.key' axis 1 is 32 in the graph, 4 in the profile" in run.stderr


def test_missing_input_name_and_wrong_rank_are_refused(tmp_path):
    i64 = TensorProto.INT64
    renamed = [("tokens", i64, ["batch", "seq"]), ("attention_mask", i64, ["batch", "seq"])]
    run = cli("atc", str(save(make_model(renamed), tmp_path / "a.onnx")), "--profile", TINY, "--dry-run")
    assert run.returncode == 1
    assert "input 'input_ids' is not a graph input (ATC: E10016)" in run.stderr
    assert "graph input 'tokens' has a free size but no shape in the profile" in run.stderr
    ranked = [("input_ids", i64, ["batch", "seq"]), ("attention_mask", i64, ["batch", 1, 1, "seq"])]
    run = cli("atc", str(save(make_model(ranked), tmp_path / "b.onnx")), "--profile", TINY, "--dry-run")
    assert run.returncode == 1
    assert "'attention_mask' has rank 4 in the graph, 2 in the profile (ATC: E10049)" in run.stderr


def test_prefill_profile_on_a_decode_graph_is_refused(tmp_path):
    inputs = llm_inputs(2, 1, 16, decode=True, past_name="past_{kv}_{i}")
    model = save(make_model(inputs), tmp_path / "d.onnx")
    run = cli("atc", str(model), "--profile", TINY, "--dry-run")  # default variant: prefill
    assert run.returncode == 1
    assert "'input_ids' axis 1 is fixed to 1 in the graph but dynamic in the profile" in run.stderr


def test_missing_external_weights_are_exit_2(tmp_path):
    model = tiny_prefill()
    onnx.save(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="m.data",
        size_threshold=0,
    )
    assert load_model(tmp_path / "m.onnx").external
    run = cli("atc", str(tmp_path / "m.onnx"), "--profile", TINY, "--dry-run")
    assert run.returncode == 0, run.stderr
    (tmp_path / "m.data").unlink()
    run = cli("atc", str(tmp_path / "m.onnx"), "--profile", TINY, "--dry-run")
    assert run.returncode == 2
    assert "pre-flight external_data: external data 'm.data' (tensor 'embed') is missing" in run.stderr


def test_unknown_node_domain_is_named(tmp_path):
    model = tiny_prefill(extra_opsets=(("com.microsoft", 1),))
    model.graph.node.append(helper.make_node("FusedMatMul", ["y", "y"], ["z"], domain="com.microsoft"))
    check = preflight.check_single_domain(model)
    assert check.status == "fail" and "nodes use domain(s) 'com.microsoft'" in check.message


def test_output_path_that_is_a_folder_is_exit_2(tmp_path):
    model = save(tiny_prefill(), tmp_path / "m.onnx")
    (tmp_path / "out.om").mkdir()
    run = cli("atc", str(model), "--profile", TINY, "--output", str(tmp_path / "out"), "--dry-run")
    assert run.returncode == 2 and "is a directory" in run.stderr


def test_missing_variant_and_missing_model_are_exit_2(tmp_path):
    run = cli("atc", str(tmp_path / "none.onnx"), "--profile", TINY, "--dry-run")
    assert run.returncode == 2 and "no such file" in run.stderr
    run = cli("atc", "x.onnx", "--profile", str(tmp_path / "none.toml"), "--dry-run")
    assert run.returncode == 2 and "no such profile" in run.stderr


def test_real_fusion_output_passes_and_its_domain_form_is_refused():
    """The fusion pass's ATC form passes the graph checks; its --domain form (ONNX Runtime only) fails
    single_domain (E16005) and no_functions; the unfused graph only warns."""
    from rope_graphs import SiteSpec, build

    from rope_onnx.fusion import fuse_model

    plain = build(SiteSpec())
    assert preflight.check_rope_present(plain).status == "warn"
    atc_form, domain_form = build(SiteSpec()), build(SiteSpec())
    assert fuse_model(atc_form).sites and fuse_model(domain_form, domain="rope_onnx.reference").sites
    for check in (
        preflight.check_rope_present,
        preflight.check_single_domain,
        preflight.check_no_functions,
        preflight.check_opset_covered,
    ):
        assert check(atc_form).status == "pass", check(atc_form).message
    assert preflight.check_rope_dtype(atc_form, "ascend310p", "Ascend310P3").status == "pass"
    assert preflight.check_single_domain(domain_form).status == "fail"
    assert "E16005 predicted" in preflight.check_single_domain(domain_form).message
    assert preflight.check_no_functions(domain_form).status == "fail"


def test_cos_and_sin_of_different_static_shapes_are_refused():
    node = helper.make_node(
        "RoPECustomer", ["x", "cos", "sin"], ["y"], name="rope", interleaved=0, rotary_dim=16
    )
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 5, 16]),
            helper.make_tensor_value_info("cos", TensorProto.FLOAT, [1, 1, 5, 16]),
            helper.make_tensor_value_info("sin", TensorProto.FLOAT, [2, 1, 5, 16]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 5, 16])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    check = preflight.check_tables_shape(model)
    assert check.status == preflight.FAIL and "one shape" in check.message
    model.graph.input[2].type.tensor_type.shape.dim[0].dim_value = 1
    assert preflight.check_tables_shape(model).status == preflight.PASS
