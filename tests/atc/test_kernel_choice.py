"""Which kernel each fused node gets under ATC (rope_onnx.atc.kernel_choice), on fused fixtures for the
910B and 310P profiles and on hand-built nodes at the edges of Huawei's RotaryPositionEmbedding limits."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES, PROFILE_910B
from onnx import TensorProto, helper

from rope_onnx.atc import kernel_choice
from rope_onnx.atc.convert import plan
from rope_onnx.atc.profile import Variant, load_profile
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.graph.index import GraphIndex


def fused(tmp_path: Path, fixture: str) -> Path:
    out = tmp_path / fixture
    fuse_file(FIXTURES / fixture, out, expect=4)
    return out


def kernel_rows(model: Path, profile: Path, variant: str) -> list:
    return [c for c in plan(model, profile, variant=variant).checks if c.name.startswith("kernel[")]


def test_910b_rows_name_the_kernel_and_marking_switches_eligible_nodes(tmp_path: Path) -> None:
    model = fused(tmp_path, "llama_base_dynamo_fp16.onnx")
    rows = kernel_rows(model, PROFILE_910B, "prefill")
    assert len(rows) == 4 and all(r.status == "pass" for r in rows)
    assert all("custom kernel ro_pe_customer; Huawei's RotaryPositionEmbedding would also serve" in r.message
               for r in rows)  # fmt: skip
    proto = onnx.load(model)
    prof = load_profile(PROFILE_910B)
    assert len(kernel_choice.mark_builtin(proto, prof.family, prof.variants["prefill"])) == 4
    marked = [n for n in proto.graph.node if n.op_type == kernel_choice.BUILTIN_OP_TYPE]
    assert len(marked) == 4
    assert all({a.name: a.i for a in n.attribute} == {"interleaved": 0, "rotary_dim": 0} for n in marked)
    out = tmp_path / "marked.onnx"
    onnx.save(proto, out)
    result = plan(out, PROFILE_910B, variant="prefill")
    rows = [c for c in result.checks if c.name.startswith("kernel[")]
    assert [r.status for r in rows] == ["pass"] * 4
    assert all(r.message.startswith("Huawei's built-in RotaryPositionEmbedding (mode 0)") for r in rows)
    assert next(c for c in result.checks if c.name == "rope_present").status == "pass"


def test_310p_keeps_every_node_on_the_custom_kernel_and_fails_a_marked_one(
    tmp_path: Path, profile_310p: Path
) -> None:
    model = fused(tmp_path, "llama_base_dynamo_fp16.onnx")
    rows = kernel_rows(model, profile_310p, "prefill")
    assert len(rows) == 4
    assert all(r.status == "pass" and "no ascend310p build" in r.message for r in rows)
    proto = onnx.load(model)
    prof = load_profile(profile_310p)
    assert kernel_choice.mark_builtin(proto, prof.family, prof.variants["prefill"]) == []
    proto.graph.node[[n.op_type for n in proto.graph.node].index("RoPECustomer")].op_type = "RoPEBuiltin"
    out = tmp_path / "marked.onnx"
    onnx.save(proto, out)
    rows = kernel_rows(out, profile_310p, "prefill")
    assert [r.status for r in rows].count("fail") == 1
    assert "no ascend310p build" in next(r.message for r in rows if r.status == "fail")


def test_decode_profile_and_unprovable_symbols(tmp_path: Path) -> None:
    rows = kernel_rows(fused(tmp_path, "llama_kvcache_dynamo_fp32.onnx"), PROFILE_910B, "decode")
    assert len(rows) == 4 and all("would also serve" in r.message for r in rows)
    # the TorchScript export names cos's sequence axis apart from x's: nothing proves they are equal
    rows = kernel_rows(fused(tmp_path, "llama_base_ts_fp32.onnx"), PROFILE_910B, "prefill")
    assert all(r.status == "pass" and "cannot show how cos" in r.message for r in rows)


def node_model(
    x: list[int], table: list[int], interleaved: int, rotary: int, dtype: int = TensorProto.FLOAT16
):
    node = helper.make_node("RoPECustomer", ["x", "cos", "sin"], ["y"], name="r",
                            interleaved=interleaved, rotary_dim=rotary)  # fmt: skip
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, dtype, s) for n, s in (("x", x), ("cos", table), ("sin", table))],
        [helper.make_tensor_value_info("y", dtype, x)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(
    ("x", "table", "interleaved", "rotary", "family", "builtin", "why"),
    [
        ([2, 8, 64, 128], [1, 1, 64, 128], 0, 0, "ascend910b", True, "BNSD"),
        ([2, 8, 64, 128], [2, 1, 64, 128], 0, 128, "ascend910b", True, "BNSD"),
        ([2, 64, 8, 128], [1, 64, 1, 128], 1, 0, "ascend910b", True, "BSND"),
        ([2, 8, 64, 128], [2, 1, 64, 128], 1, 0, "ascend910b", False, "interleaved mode lists"),
        ([2, 8, 64, 128], [1, 1, 64, 64], 0, 64, "ascend910b", False, "partial rotary"),
        ([2, 8, 64, 896], [1, 1, 64, 896], 0, 0, "ascend910b", False, "below 896"),
        ([40, 32, 8, 128], [1, 1, 8, 128], 1, 0, "ascend910b", False, "limits"),  # B*N = 1280
        ([4, 32, 8, 128], [1, 1, 8, 128], 0, 0, "ascend910b", False, "limits"),  # BNSD refusal: 128 > 64
        ([4, 32, 16, 128], [1, 1, 16, 128], 0, 0, "ascend910b", True, "BNSD"),  # 128 <= 8 * 16
        ([4, 32, 64, 48], [1, 1, 64, 48], 0, 0, "ascend910b", False, "limits"),  # unaligned D/2, D < 80
        ([4, 32, 64, 64], [1, 1, 64, 64], 0, 0, "ascend910b", True, "BNSD"),  # aligned: 128 <= 8 * 64
        ([1, 8, 64, 128], [64, 128], 0, 0, "ascend910b", False, "4-D"),
        ([2, 8, 64, 128], [1, 1, 64, 128], 0, 0, "ascend310p", False, "no ascend310p build"),
    ],
)
def test_choice_edges(x, table, interleaved, rotary, family, builtin, why) -> None:
    model = node_model(x, table, interleaved, rotary)
    (choice,) = kernel_choice.choices(model, family, Variant("v", "", "static", []), GraphIndex(model))
    assert choice.builtin is builtin
    assert why in choice.reason
    assert choice.mode == interleaved
