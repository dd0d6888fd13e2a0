"""Sites whose channels are a permutation of one RoPECustomer's output (issue 12 item 4).

DeepSeek-V3's ``rope_interleave`` under TorchScript is ``cat(q_pass, x_e·c − x_o·s, x_o·c + x_e·s)`` in
ONE Concat: the pass-through channels first, the rotation's output de-interleaved.  Such a site fuses as
one RoPECustomer plus only the data movement its order needs (x's channels reordered, a Concat of x's
pass-through runs, a Gather of the op's output), each proven channel by channel and exact on ONNX
Runtime.  The look-alikes differ in the one fact the proof must check (a pass-through channel read twice,
a pair's half missing, halves that pair other channels, a flipped sin sign) and are skipped with why.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from conftest import FIXTURES, cli, run_model
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from rope_onnx.fusion import fuse_model

_names = itertools.count()


class _Graph:
    """x [B, 2, L, 16], half tables cos/sin [1, 1, L, 4]; y is the Concat of the parts given."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []

    def slice(self, start: int, end: int, step: int = 1) -> str:
        names = [f"c{next(_names)}" for _ in range(4)]
        for name, value in zip(names, (start, end, -1, step), strict=True):
            self.nodes.append(
                helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array([value])))
            )
        out = f"x_{start}_{end}_{step}".replace("-", "m")
        self.nodes.append(helper.make_node("Slice", ["x", *names], [out]))
        return out

    def op(self, op: str, a: str, b: str) -> str:
        out = f"{op.lower()}{next(_names)}"
        self.nodes.append(helper.make_node(op, [a, b], [out]))
        return out

    def rotation(self, even: str, odd: str, second: str = "Add", partner: str = "") -> tuple[str, str]:
        """(e·c − o·s, o·c + e·s): the de-interleaved output of the pairs (e_i, o_i)."""
        first = self.op("Sub", self.op("Mul", even, "cos"), self.op("Mul", odd, "sin"))
        other = self.op(second, self.op("Mul", odd, "cos"), self.op("Mul", partner or even, "sin"))
        return first, other

    def model(self, parts: list[str], width: int = 16) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Concat", parts, ["y"], axis=-1))
        inputs = [helper.make_tensor_value_info("x", TP.FLOAT, ["B", 2, "L", 16])]
        inputs += [helper.make_tensor_value_info(t, TP.FLOAT, [1, 1, "L", 4]) for t in ("cos", "sin")]
        out = [helper.make_tensor_value_info("y", TP.FLOAT, ["B", 2, "L", width])]
        graph = helper.make_graph(self.nodes, "g", inputs, out)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _site(kind: str) -> onnx.ModelProto:
    g = _Graph()
    if kind == "pass_first":  # TorchScript's DeepSeek-V3 q: cat(q_pass, rotation halves)
        return g.model([g.slice(0, 8), *g.rotation(g.slice(8, 16, 2), g.slice(9, 16, 2))])
    if kind == "pass_split":  # pass-through channels on both sides of the rotation
        rotated = g.rotation(g.slice(4, 12, 2), g.slice(5, 12, 2))
        return g.model([g.slice(0, 4), *rotated, g.slice(12, 16)])
    if kind == "pass_between":  # pass-through channels between the two halves: a Gather of the output
        first, second = g.rotation(g.slice(0, 8, 2), g.slice(1, 8, 2))
        return g.model([first, g.slice(8, 16), second])
    if kind == "pass_duplicated":
        rotated = g.rotation(g.slice(8, 16, 2), g.slice(9, 16, 2))
        return g.model([g.slice(0, 4), g.slice(0, 4), *rotated])
    if kind == "pass_overlaps":  # a pass-through channel is also rotated: not a permutation
        return g.model([g.slice(8, 16), *g.rotation(g.slice(8, 16, 2), g.slice(9, 16, 2))])
    if kind == "half_missing":
        even, odd = g.slice(8, 16, 2), g.slice(9, 16, 2)
        first = g.op("Sub", g.op("Mul", even, "cos"), g.op("Mul", odd, "sin"))
        return g.model([g.slice(0, 8), first], 12)
    if kind == "mispaired":  # the second half rotates o_i against e_(3-i)
        even, odd = g.slice(8, 16, 2), g.slice(9, 16, 2)
        return g.model([g.slice(0, 8), *g.rotation(even, odd, partner=g.slice(14, 7, -2))])
    assert kind == "sin_flipped"
    return g.model([g.slice(0, 8), *g.rotation(g.slice(8, 16, 2), g.slice(9, 16, 2), second="Sub")])


def _feeds(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 6, (1, 1, 5, 4))
    x = rng.standard_normal((2, 2, 5, 16)).astype(np.float32)
    return {"x": x, "cos": np.cos(angle).astype(np.float32), "sin": np.sin(angle).astype(np.float32)}


def _producer(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if name in n.output)


@pytest.mark.parametrize(
    ("kind", "movement"),
    [("pass_first", "Concat"), ("pass_split", "Concat"), ("pass_between", "Gather")],
)
@pytest.mark.parametrize("target", ["atc", "ort"])
def test_a_permuted_site_fuses_as_one_op_plus_its_data_movement_and_is_exact(
    kind: str, movement: str, target: str
) -> None:
    model = _site(kind)
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model, target=target)
    assert result.fused == 1 and not result.skipped, [s.reason for s in result.skipped]
    site = result.sites[0]
    assert (site.interleaved, site.rotary_dim) == (0, 8)
    last = _producer(model, "y")
    assert last.op_type == movement
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("RoPECustomer" if target == "atc" else "RotaryEmbedding") == 1
    if target == "atc":  # the op feeds the Concat/Gather directly, reads x through one Gather
        op = next(n for n in model.graph.node if n.op_type == "RoPECustomer")
        assert op.output[0] in last.input and site.node == op.name
        assert _producer(model, op.input[0]).op_type == "Gather"
    for seed in (0, 1):
        feeds = _feeds(seed)
        np.testing.assert_allclose(run_model(model, feeds)["y"], run_model(original, feeds)["y"], atol=1e-6)


def test_a_rotation_that_is_a_tensor_of_its_own_is_fused_there_and_the_concat_stays() -> None:
    """dynamo's cat(q_pass, cat(rot1, rot2)): the inner Concat is the site; the graph's outer one is kept."""
    g = _Graph()
    rotated = g.rotation(g.slice(8, 16, 2), g.slice(9, 16, 2))
    g.nodes.append(helper.make_node("Concat", list(rotated), ["q_rot"], axis=-1))
    model = g.model([g.slice(0, 8), "q_rot"])
    original = onnx.load_from_string(model.SerializeToString())
    result = fuse_model(model)
    assert result.fused == 1 and not result.skipped and result.sites[0].output == "q_rot"
    assert _producer(model, "y").op_type == "Concat" and _producer(model, "q_rot").op_type == "RoPECustomer"
    feeds = _feeds()
    np.testing.assert_allclose(run_model(model, feeds)["y"], run_model(original, feeds)["y"], atol=1e-6)


def test_a_permuted_site_verifies_on_its_own_cut(tmp_path) -> None:
    source, fused = tmp_path / "m.onnx", tmp_path / "f.onnx"
    onnx.save(_site("pass_split"), source)
    assert cli("fuse", str(source), "-o", str(fused), "--expect", "1").returncode == 0
    run = cli("verify", str(source), str(fused), "--sites", "--dim", "B=2", "--dim", "L=5")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED: 1 of 1" in run.stdout and "[node rope_onnx/RoPECustomer_0]" in run.stdout


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("pass_duplicated", "x channel 0 is read by output channels 0 and 4"),
        ("pass_overlaps", "x channel 8 is read by output channels 0 and 8"),
        ("half_missing", "no channel is x[9]·cos + x[8]·sin"),
        ("mispaired", "no channel is x[9]·cos + x[8]·sin"),
        ("sin_flipped", "(a sign flipped, or the pair's other half missing)"),
    ],
)
def test_permutation_look_alikes_do_not_fuse_and_say_why(kind: str, why: str) -> None:
    result = fuse_model(_site(kind))
    assert result.fused == 0
    assert len(result.skipped) == 1 and why in result.skipped[0].reason, result.skipped[0].reason


@pytest.mark.parametrize(
    "name", ["deepseekv3_interleave_dynamo_fp32.onnx", "deepseekv3_interleave_ts_fp32.onnx"]
)
def test_deepseek_sites_written_as_ort_rotary_ops_read_x_in_the_op_order(name: str) -> None:
    """--target ort once dropped the reordering of x (a de-interleaved site): logits off by 1e-3."""
    original = onnx.load(FIXTURES / name)
    model = onnx.load(FIXTURES / name)
    result = fuse_model(model, target="ort")
    assert result.fused == 4 and not result.skipped
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(0, 32, (2, 5)), "attention_mask": np.ones((2, 5), np.int64)}
    want, got = run_model(original, feeds)["logits"], run_model(model, feeds)["logits"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
