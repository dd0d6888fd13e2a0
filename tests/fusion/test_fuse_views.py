"""Reshapes that regroup leading axes, followed through a view of their input (fusion.views).

Meta's reference ``apply_rotary_emb`` in real arithmetic reshapes the ``[B, L, H*D]`` projection straight
to ``[B, L, H, D/2, 2]`` (models/export_families.py, ``custom_metareal_*``): the fused node reads that
projection reshaped to ``[B, L, H, D]``, a Reshape the pass writes.  These hand-built graphs are that
site and its look-alikes: each must fuse exactly (ORT CPU) or be skipped with the fact that fails.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import FIXTURES, run_model
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion import fuse_model

SHAPES = {"B": 2, "L": 5, "H": 2}


def meta_graph(
    target: list,
    pair_axis: int = -1,
    stack_axis: int = -1,
    source: tuple[str, list] = ("h", ["B", "L", 32]),
    table: tuple = ("B", "L", 1, 8),
    extra: tuple = (),
) -> onnx.ModelProto:
    """``source.view(target)``, split in two along ``pair_axis``, rotated by half tables, stacked on
    ``stack_axis`` and flattened back, written as TorchScript writes it (target entries ``(t, i)``
    are ``Shape(t)[i]``)."""
    nodes, inits = [], []

    def const(name: str, values: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    parts = []
    for i, entry in enumerate(target):
        if isinstance(entry, int):
            parts.append(const(f"t{i}", [entry]))
        else:
            nodes.append(helper.make_node("Shape", [entry[0]], [f"s{i}"], start=entry[1], end=entry[1] + 1))
            parts.append(f"s{i}")
    nodes.append(helper.make_node("Concat", parts, ["shape5"], axis=0))
    nodes.append(helper.make_node("Reshape", [source[0], "shape5"], ["x5"], name="view"))
    nodes.append(helper.make_node("Split", ["x5", const("ones", [1, 1])], ["a", "b"], axis=pair_axis))
    nodes += [
        helper.make_node("Squeeze", [n, const(f"sq_{n}", [pair_axis])], [m])
        for n, m in (("a", "re"), ("b", "im"))
    ]
    for out, (p, q) in {
        "m1": ("re", "cos"),
        "m2": ("im", "sin"),
        "m3": ("re", "sin"),
        "m4": ("im", "cos"),
    }.items():
        nodes.append(helper.make_node("Mul", [p, q], [out]))
    nodes.append(helper.make_node("Sub", ["m1", "m2"], ["y_re"]))
    nodes.append(helper.make_node("Add", ["m3", "m4"], ["y_im"]))
    nodes += [
        helper.make_node("Unsqueeze", [n, const(f"u_{n}", [stack_axis])], [n + "_u"])
        for n in ("y_re", "y_im")
    ]
    nodes.append(helper.make_node("Concat", ["y_re_u", "y_im_u"], ["stacked"], axis=stack_axis))
    nodes.append(helper.make_node("Shape", ["stacked"], ["lead"], start=0, end=3))
    nodes.append(helper.make_node("Concat", ["lead", const("minus1", [-1])], ["flat"], axis=0))
    nodes.append(helper.make_node("Reshape", ["stacked", "flat"], ["y"]))
    inputs = [helper.make_tensor_value_info(source[0], TensorProto.FLOAT, source[1])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(table)) for n in ("cos", "sin")]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in extra]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "meta", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value or SHAPES[d.dim_param] for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


HL = (("h", 0), ("h", 1))


@pytest.mark.parametrize(
    ("case", "interleaved"),
    [
        # Meta's reference: pairs in, pairs out
        (dict(target=[*HL, 2, 8, 2]), 1),
        # the view's pair axis need not be last: halves in, halves out is rotate_half
        (dict(target=[*HL, 2, 2, 8], pair_axis=-2, stack_axis=-2), 0),
        # pairs in, halves out: RoPE up to a permutation (fusion.prove's de-interleaved form; how the
        # permutation is written is prove/rewrite's business, so the layout is not pinned here)
        (dict(target=[*HL, 2, 8, 2], stack_axis=-2), None),
        # halves in, pairs out ([2, D/2] read, stacked on the last axis): rotate_half whose output channels
        # are interleaved — RoPE up to a permutation of y (fusion.arrange), exact like the others
        (dict(target=[*HL, 2, 2, 8], pair_axis=-2), None),
        # a static view target (dynamo writes constants where shapes are static)
        (dict(target=[0, 0, 2, 8, 2]), 1),
    ],
    ids=["meta", "halves", "deinterleaved_output", "interleaved_output", "static_target"],
)
def test_a_5d_root_fuses_through_a_view_exactly(case: dict, interleaved: int | None) -> None:
    model = meta_graph(**case)
    original = onnx.ModelProto()
    original.CopyFrom(model)
    result = fuse_model(model)
    assert result.fused == 1 and not result.skipped, [s.reason for s in result.skipped]
    site = result.sites[0]
    assert (site.input, site.rotary_dim, site.head_dim) == ("h", 16, 16)
    assert interleaved is None or site.interleaved == interleaved
    views = [n for n in model.graph.node if n.op_type == "Reshape" and n.input[0] == "h"]
    shape = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}[views[0].input[1]]
    assert len(views) == 1 and shape == [0, 0, 2, 16]  # [B, L, H, D]: the projection's dims copied
    feeds = _feeds(original)
    np.testing.assert_allclose(
        run_model(model, feeds)["y"], run_model(original, feeds)["y"], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        # the pair axis ahead of the heads: real and imaginary parts are different heads
        (dict(target=[*HL, 2, 2, 8], pair_axis=2), "Squeeze node '' acts on axis 2, not on the channel axes"),
        # the Reshape moves heads before the sequence: the per-token tables would broadcast x
        (
            dict(target=[("x", 0), -1, ("x", 1), 8, 2], source=("x", ["B", "L", "H", 16])),
            "table 'cos' dim 1 (L) is not shown to be 1 or equal to x dim 1 (H)",
        ),
        # a leading entry from another input: the view's shape cannot be written as a constant
        (
            dict(target=[("h", 0), ("n", 0), 2, 8, 2], table=("B", 1, 1, 8), extra=[("n", ["N"])]),
            "leading entry 1 of its target (param:N) is neither static nor shown equal to dim 1 of its "
            "input 'h'",
        ),
    ],
    ids=["pair_axis_before_heads", "moves_heads", "unproven_lead"],
)
def test_a_view_look_alike_is_skipped_with_its_reason(case: dict, reason: str) -> None:
    model = meta_graph(**case)
    before = model.SerializeToString()
    result = fuse_model(model)
    assert result.fused == 0 and model.SerializeToString() == before
    assert len(result.skipped) == 1 and reason in result.skipped[0].reason, result.skipped[0].reason


def test_the_real_exports_read_the_projection_and_the_cache_through_one_view_each() -> None:
    model = onnx.load(FIXTURES / "custom_chatglm_ts_fp32.onnx")
    result = fuse_model(model)
    assert result.fused == 4 and {s.cos for s in result.sites} == {"/Gather_output_0"}
    views = [n for n in model.graph.node if n.op_type == "Reshape" and n.input[0] == "/Gather_output_0"]
    shapes = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    assert [shapes[n.input[1]] for n in views] == [[-1, 0, 1, 8]]  # cache.view(-1, sq, 1, R): one, shared


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_the_rotary_targets_refuse_a_view_site_with_the_reason(target: str) -> None:
    result = fuse_model(meta_graph(target=[*HL, 2, 8, 2]), target=target)
    assert result.fused == 0 and len(result.skipped) == 1
    assert "a view of 'h' that only --target atc writes" in result.skipped[0].reason
