"""The pass on hand-built sites: every exporter-style variant fuses exactly, every mutant is left alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from conftest import run_model
from rope_graphs import MUTATIONS, STILL_ROPE, SiteSpec, build, feeds

from rope_onnx.fusion import fuse_model

HALF = SiteSpec()
INTERLEAVED = SiteSpec(interleaved=True, split="step2")

VARIANTS = {
    "half_slices": HALF,
    "half_split": replace(HALF, split="split"),
    "half_mul_neg1": replace(HALF, neg="mul"),
    "half_computed_bounds": replace(HALF, bounds="shape"),
    "half_operand_orders": replace(HALF, swap_mul=True, swap_add=True),
    "half_partial": replace(HALF, head_dim=24, rotary_dim=8),
    "half_partial_cos_shape": replace(HALF, head_dim=24, rotary_dim=8, bounds="cos_shape"),
    "half_empty_passthrough": replace(HALF, empty_passthrough=True),
    "half_blhd": replace(HALF, layout="BLHD", table="BL1R"),
    "half_blhd_L1R": replace(HALF, layout="BLHD", table="L1R"),
    "half_table_LR": replace(HALF, table="LR"),
    "half_table_B1LR": replace(HALF, table="B1LR"),
    "half_fp16_cast_tables": replace(HALF, dtype="float16", table_cast=True),
    "half_extra_consumer": replace(HALF, extra_consumer=True),
    "il_step2": INTERLEAVED,
    "il_gather": replace(INTERLEAVED, split="gather"),
    "il_split_squeeze": replace(INTERLEAVED, split="split"),
    "il_slice_squeeze": replace(INTERLEAVED, split="slice"),
    "il_mul_neg1_partial": replace(INTERLEAVED, neg="mul", head_dim=24, rotary_dim=8),
    "il_fp16": replace(INTERLEAVED, dtype="float16"),
    "seed_step2": replace(INTERLEAVED, seed_form=True),
    "seed_reshape_pairs": replace(INTERLEAVED, seed_form=True, split="gather"),
    "seed_swapped": replace(INTERLEAVED, seed_form=True, swap_mul=True, swap_add=True, split="split"),
    "seed_partial_blhd": replace(
        INTERLEAVED, seed_form=True, head_dim=32, rotary_dim=16, layout="BLHD", table="BL1R"
    ),
}


def _fuse(spec: SiteSpec) -> tuple[onnx.ModelProto, onnx.ModelProto, object]:
    original = build(spec)
    fused = onnx.ModelProto()
    fused.CopyFrom(original)
    return original, fused, fuse_model(fused)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_fuses_to_one_exact_node(name: str) -> None:
    spec = VARIANTS[name]
    original, fused, result = _fuse(spec)
    assert result.fused == 1, result.skipped
    site = result.sites[0]
    assert (site.interleaved, site.rotary_dim, site.head_dim) == (
        int(spec.interleaved),
        spec.rotary_dim,
        spec.head_dim,
    )
    assert site.input == "x"
    rope_nodes = [n for n in fused.graph.node if n.op_type == "RoPECustomer"]
    assert len(rope_nodes) == 1 and rope_nodes[0].domain == ""
    kept = [
        n.op_type for n in fused.graph.node if n.op_type not in {"RoPECustomer", "Identity", "Cast", "Gather"}
    ]
    assert kept == (["Mul"] if spec.extra_consumer else []), f"nodes left behind: {kept}"
    for length in (1, 6):
        data = feeds(spec, length=length)
        want, got = run_model(original, data), run_model(fused, data)
        for out, value in want.items():
            tol = 2e-3 if spec.dtype == "float16" else 1e-6
            np.testing.assert_allclose(
                got[out].astype(np.float32), value.astype(np.float32), rtol=tol, atol=tol
            )


def test_half_width_tables_are_widened_once() -> None:
    _, fused, result = _fuse(VARIANTS["seed_step2"])
    gathers = [n for n in fused.graph.node if n.op_type == "Gather"]
    assert [g.input[0] for g in gathers] == ["cos", "sin"]
    assert result.sites[0].cos == "cos"  # the table as the original consumes it


def test_extra_consumer_keeps_the_intermediate_alive() -> None:
    original, fused, _ = _fuse(VARIANTS["half_extra_consumer"])
    assert [o.name for o in fused.graph.output] == [o.name for o in original.graph.output]
    produced = {o for n in fused.graph.node for o in n.output}
    assert all(o.name in produced for o in fused.graph.output)


BASES = {"half": HALF, "interleaved": INTERLEAVED, "seed": replace(INTERLEAVED, seed_form=True)}


@pytest.mark.parametrize(("base", "mutation"), [(b, m) for b, ms in MUTATIONS.items() for m in ms])
def test_mutants_are_left_alone_with_a_reason(base: str, mutation: str) -> None:
    original, fused, result = _fuse(replace(BASES[base], mutation=mutation))
    assert result.fused == 0
    assert fused == original
    assert len(result.skipped) == 1 and result.skipped[0].reason


@pytest.mark.parametrize("mutation", STILL_ROPE)
@pytest.mark.parametrize("base", sorted(BASES))
def test_look_alikes_that_are_still_rope_fuse_exactly(base: str, mutation: str) -> None:
    spec = replace(BASES[base], mutation=mutation)
    original, fused, result = _fuse(spec)
    assert result.fused == 1, result.skipped
    data = feeds(spec)
    want, got = run_model(original, data), run_model(fused, data)
    np.testing.assert_array_equal(got["y"], want["y"])


def test_fusing_twice_changes_nothing() -> None:
    _, fused, _ = _fuse(VARIANTS["half_partial"])
    again = onnx.ModelProto()
    again.CopyFrom(fused)
    result = fuse_model(again)
    assert result.fused == 0
    assert again.SerializeToString() == fused.SerializeToString()


def test_a_site_on_a_window_of_a_wider_tensor_reads_a_new_slice_of_it() -> None:
    """Channels 16..31 of a 48-wide tensor rotated half by half (no tensor holds the window itself)."""
    from onnx import TensorProto, helper, numpy_helper

    def ints(name: str, *v: int) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(v, dtype=np.int64), name)

    nodes = [
        helper.make_node("Slice", ["qkv", "s16", "s24", "ax"], ["x1"]),
        helper.make_node("Slice", ["qkv", "s24", "s32", "ax"], ["x2"]),
        helper.make_node("Slice", ["cos", "s0", "s8", "ax"], ["c1"]),
        helper.make_node("Slice", ["cos", "s8", "s16", "ax"], ["c2"]),
        helper.make_node("Slice", ["sin", "s0", "s8", "ax"], ["s1"]),
        helper.make_node("Slice", ["sin", "s8", "s16", "ax"], ["s2"]),
        helper.make_node("Mul", ["x1", "c1"], ["a"]),
        helper.make_node("Mul", ["x2", "s1"], ["b"]),
        helper.make_node("Sub", ["a", "b"], ["y1"]),
        helper.make_node("Mul", ["x2", "c2"], ["c"]),
        helper.make_node("Mul", ["x1", "s2"], ["d"]),
        helper.make_node("Add", ["c", "d"], ["y2"]),
        helper.make_node("Concat", ["y1", "y2"], ["y"], axis=-1),
    ]
    inits = [ints("s0", 0), ints("s8", 8), ints("s16", 16), ints("s24", 24), ints("s32", 32), ints("ax", -1)]
    graph = helper.make_graph(
        nodes,
        "window",
        [
            helper.make_tensor_value_info("qkv", TensorProto.FLOAT, ["B", 2, "L", 48]),
            helper.make_tensor_value_info("cos", TensorProto.FLOAT, [1, 1, "L", 16]),
            helper.make_tensor_value_info("sin", TensorProto.FLOAT, [1, 1, "L", 16]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 2, "L", 16])],
        inits,
    )
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    fused = onnx.ModelProto()
    fused.CopyFrom(original)
    result = fuse_model(fused)
    assert result.fused == 1 and result.sites[0].input == "qkv"  # as the original graph has it
    window = next(n for n in fused.graph.node if n.op_type == "Slice")
    rope = next(n for n in fused.graph.node if n.op_type == "RoPECustomer")
    assert window.input[0] == "qkv" and rope.input[0] == window.output[0]
    rng = np.random.default_rng(0)
    data = {
        "qkv": rng.standard_normal((2, 2, 5, 48)).astype(np.float32),
        "cos": rng.standard_normal((1, 1, 5, 16)).astype(np.float32),
        "sin": rng.standard_normal((1, 1, 5, 16)).astype(np.float32),
    }
    np.testing.assert_array_equal(run_model(fused, data)["y"], run_model(original, data)["y"])

    from rope_onnx.verify import VerifyOptions, verify_models

    assert verify_models(original, fused, VerifyOptions(sites=True)).passed
