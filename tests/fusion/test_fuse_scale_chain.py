"""Scale on chains of head-sized element-wise ops and on stacks of sites: work per node is bounded
(counted, never timed).

Every Add of such a chain is a candidate and its cone reaches back through the whole chain.  A
pass that traces each candidate to its depth limit does ~60 channel evaluations per node here
(issue 17: 200,000 nodes took 629 s); one that traces the whole cone would be quadratic.  A stack
of sites, one per layer, all reading one cos/sin pair, is what a model is: each site must cost the
same however many come before it.  These tests count the evaluations (``Tracer._eval``), the
index's answers about dims and constants, the index builds and the shape-inference runs.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper
from rope_graphs import SiteSpec, stacked

from rope_onnx.fusion import fuse_model, reach, trace
from rope_onnx.graph import index as graph_index


def _model(made: list[onnx.NodeProto], out: str, width: int) -> onnx.ModelProto:
    shape = ["batch", "seq", 2, width]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "y", "z")]
    outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)]
    model = helper.make_model(
        helper.make_graph(made, "chain", inputs, outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


def _chain(nodes: int, width: int = 8, operand: str = "x", start: str = "x") -> onnx.ModelProto:
    """h = Add(Neg(h), operand) from h = start, ``nodes`` Neg/Add nodes; "m" is one Mul(x, y)."""
    made = [helper.make_node("Mul", ["x", "y"], ["m"], name="chain/Mul")]
    h = start
    for i in range(nodes):
        if i % 2 == 0:
            made.append(helper.make_node("Neg", [h], [f"n{i}"], name=f"chain/Neg_{i}"))
            h = f"n{i}"
        else:
            made.append(helper.make_node("Add", [h, operand], [f"a{i}"], name=f"chain/Add_{i}"))
            h = f"a{i}"
    return _model(made, h, width)


def _counts(model: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch, sites: int = 0) -> dict[str, int]:
    """What one fuse of ``model`` did, counted; it must fuse ``sites`` sites (a chain: none)."""
    counts = {"eval": 0, "index": 0, "infer": 0, "reads": 0}
    original_eval = trace.Tracer._eval
    original_init = graph_index.GraphIndex.__init__
    original_infer = graph_index.GraphIndex._infer
    original_dims = graph_index.GraphIndex.dims
    original_constant = graph_index.GraphIndex.constant

    def counted_eval(self, name: str, k: int):
        counts["eval"] += 1
        return original_eval(self, name, k)

    def counted_init(self, *args, **kwargs) -> None:
        counts["index"] += 1
        original_init(self, *args, **kwargs)

    def counted_infer(self, *args, **kwargs) -> None:
        counts["infer"] += 1
        original_infer(self, *args, **kwargs)

    def counted_dims(self, *args, **kwargs):
        counts["reads"] += 1
        return original_dims(self, *args, **kwargs)

    def counted_constant(self, *args, **kwargs):
        counts["reads"] += 1
        return original_constant(self, *args, **kwargs)

    monkeypatch.setattr(trace.Tracer, "_eval", counted_eval)
    monkeypatch.setattr(graph_index.GraphIndex, "__init__", counted_init)
    monkeypatch.setattr(graph_index.GraphIndex, "_infer", counted_infer)
    monkeypatch.setattr(graph_index.GraphIndex, "dims", counted_dims)
    monkeypatch.setattr(graph_index.GraphIndex, "constant", counted_constant)
    result = fuse_model(model)
    assert result.fused == sites
    monkeypatch.undo()
    counts["skipped"] = len(result.skipped)
    return counts


@pytest.mark.parametrize("nodes", [1000, 4000])
def test_a_chain_without_products_is_not_traced(nodes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """No candidate of an Add/Neg chain can compute a product: none is traced or asks the index a
    dim or a constant; one index, one inference."""
    counts = _counts(_chain(nodes), monkeypatch)
    assert counts == {"eval": 0, "index": 1, "infer": 1, "reads": 0, "skipped": 0}, counts


def test_a_product_out_of_reach_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain that starts with a Mul: only the candidates within the depth limit of it are traced."""
    counts = _counts(_chain(4000, start="m"), monkeypatch)
    assert counts["eval"] <= trace.MAX_DEPTH * trace.MAX_DEPTH, counts  # not ~60 per node for 4000 nodes


def test_traced_chain_evaluations_grow_linearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where every candidate must be traced (each Add reads the Mul), evaluations per node stay flat.

    Each candidate (every other node) evaluates at most ~MAX_DEPTH tensors; the short cones at
    the chain's start make the small chain a little cheaper per node (measured: 5.2x for 4x the
    nodes).  A pass that traced whole cones would do ~16x, and ~n/4 evaluations per node.
    """
    small = _counts(_chain(400, width=2, operand="m"), monkeypatch)["eval"]
    large = _counts(_chain(1600, width=2, operand="m"), monkeypatch)["eval"]
    assert large <= 5.5 * small, (small, large)
    assert large <= (trace.MAX_DEPTH / 2 + 2) * 1600, large


@pytest.mark.parametrize("steps", [trace.MAX_DEPTH - 3, trace.MAX_DEPTH - 2, trace.MAX_DEPTH + 5])
def test_a_product_at_the_depth_limit(steps: int) -> None:
    """Add(Identity^steps(Mul(x, y)), z) sums a product when the tracer reaches the Mul: reported.

    The Mul's output is steps + 1 tensors behind the Add's, its operands steps + 2: the tracer
    multiplies only when those are above MAX_DEPTH, i.e. for steps <= MAX_DEPTH - 3.  The pass
    skips candidates with no product in reach without tracing them; it must not draw that line
    any closer than the tracer does (further, it is the same silent non-candidate).
    """
    made = [helper.make_node("Mul", ["x", "y"], ["i0"], name="mul")]
    made += [helper.make_node("Identity", [f"i{j}"], [f"i{j + 1}"], name=f"id{j}") for j in range(steps)]
    made.append(helper.make_node("Add", [f"i{steps}", "z"], ["out"], name="add"))
    result = fuse_model(_model(made, "out", 8))
    assert result.fused == 0
    assert [s.at for s in result.skipped] == (["out"] if steps <= trace.MAX_DEPTH - 3 else [])


def test_a_chain_with_products_everywhere_costs_a_few_evaluations_per_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every Add reads one shared Mul, so every candidate has a product in reach and is traced.

    Cones deeper than MAX_DEPTH are followed within a band of traced levels (``reach.band_floor``)
    whose settled leaves every candidate of the band shares; the depth limit cut each candidate's
    cone at a different tensor, so nothing was shared: ~60 evaluations per node, here ~2.
    """
    nodes = 4000
    counts = _counts(_chain(nodes, width=2, operand="m"), monkeypatch)
    assert counts["eval"] <= 4 * nodes, counts
    assert (counts["index"], counts["infer"]) == (1, 1), counts


@pytest.mark.parametrize(
    "spec",
    [
        SiteSpec(),  # rotate_half, full rotary width
        SiteSpec(interleaved=True, split="step2"),  # GPT-J pairs
        SiteSpec(rotary_dim=8, bounds="shape"),  # partial rotary, bounds computed from x's shape
    ],
    ids=["half", "interleaved", "partial"],
)
def test_each_site_of_a_stack_costs_the_same_however_many_come_before(
    spec: SiteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 and 64 layers, one site each, all reading one cos/sin pair: every site fuses, the
    evaluations and the index's answers grow with the layers (measured: 4.0x for 4x the layers,
    the first layer's few fewer reads aside), one index and one inference for the whole stack.
    A pass that re-read earlier sites, or scanned the table's readers per site, would grow ~16x."""
    small = _counts(stacked(spec, 16), monkeypatch, sites=16)
    large = _counts(stacked(spec, 64), monkeypatch, sites=64)
    for key in ("eval", "reads"):
        assert large[key] <= 4.2 * small[key], (key, small, large)
    assert (large["index"], large["infer"], large["skipped"]) == (1, 1, 0), large


def test_band_floors_follow_at_least_half_a_band_and_never_reach_the_depth_limit() -> None:
    half = trace.MAX_DEPTH // 2
    for level in range(0, 10 * trace.MAX_DEPTH):
        floor = reach.band_floor(level)
        if level < trace.MAX_DEPTH:
            assert floor == 0, level
        else:
            assert half <= level - floor < trace.MAX_DEPTH, (level, floor)
            assert floor % half == 0, (level, floor)  # two band systems: floors shared by many levels
