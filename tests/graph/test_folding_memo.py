"""``folding.memo``: inside one pass each tensor is folded once, and a reused result is exactly the one
folding again would give — values, the nodes used, failures with their reasons, the caller's dims
hint and the depth limit taken into account.  Counted (folder calls, ``FoldMemo.evaluated``), never timed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion.ops.registry import FOLDERS, fold_ints, fold_memo
from rope_onnx.graph import folding
from rope_onnx.graph.folding import MAX_FOLD_DEPTH, Folder, IntValue, NotStatic, int_values, memo
from rope_onnx.graph.index import GraphIndex

LAYERS = 6


def _const(name: str, value: list[int] | int) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.int64)))


def _layers_model(chain: int = 0) -> onnx.ModelProto:
    """Per layer a reshape target ``[B, S, H*D, -1]`` read from one shared ``Shape(x)`` (each layer's
    own Concat, the Gather/Unsqueeze/Mul below shared), one target with a graph input in it, and
    ``chain`` Identities after ``Shape(x)`` (``i<k>``)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape")]
    for axis in range(4):
        nodes += [
            _const(f"c{axis}", axis),
            helper.make_node("Gather", ["s", f"c{axis}"], [f"g{axis}"], name=f"gather{axis}"),
        ]
    nodes += [
        _const("axes", [0]),
        _const("minus1", [-1]),
        helper.make_node("Mul", ["g2", "g3"], ["hd"], name="mul"),
        *(
            helper.make_node("Unsqueeze", [g, "axes"], [f"u_{g}"], name=f"unsq_{g}")
            for g in ("g0", "g1", "hd")
        ),
    ]
    for layer in range(LAYERS):
        parts = ["u_g0", "u_g1", "u_hd", "minus1"]
        nodes.append(helper.make_node("Concat", parts, [f"t{layer}"], name=f"concat{layer}", axis=0))
    nodes.append(helper.make_node("Concat", ["u_g0", "n"], ["dynamic"], name="concat_dynamic", axis=0))
    previous = "s"
    for k in range(chain):
        nodes.append(helper.make_node("Identity", [previous], [f"i{k}"], name=f"identity{k}"))
        previous = f"i{k}"
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8, 16]),
        helper.make_tensor_value_info("n", TensorProto.INT64, [1]),
    ]
    outputs = [helper.make_tensor_value_info(f"t{layer}", TensorProto.INT64, [4]) for layer in range(LAYERS)]
    graph = helper.make_graph(nodes, "layers", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _counting(calls: Counter) -> dict[str, Folder]:
    def wrap(op: str, fold: Folder) -> Folder:
        def counted(index, node, node_id, arg):  # type: ignore[no-untyped-def]
            calls[node.name] += 1
            return fold(index, node, node_id, arg)

        return counted

    return {op: wrap(op, fold) for op, fold in FOLDERS.items()}


def _outcome(fold: Callable[[], IntValue]) -> tuple[str, object]:
    try:
        return "value", fold()
    except NotStatic as why:
        return "not static", str(why)


def test_each_tensor_is_folded_once_per_pass() -> None:
    """Every layer's q and k fold their target: the shared Gather/Unsqueeze/Mul run once, each Concat once."""
    index = GraphIndex(_layers_model())
    calls: Counter = Counter()
    folders = _counting(calls)
    with memo(index, folders) as made:
        for _ in ("q", "k"):
            for layer in range(LAYERS):
                assert int_values(index, f"t{layer}", folders).values == ("param:batch", "param:seq", 128, -1)
    assert calls["gather0"] == calls["mul"] == calls["unsq_hd"] == 1
    assert all(calls[f"concat{layer}"] == 1 for layer in range(LAYERS))
    # s, 4 x (c, g), minus1, hd, 3 u, the layers' Concats (Unsqueeze reads its axes unfolded): once each
    assert made.evaluated == 1 + 8 + 1 + 1 + 3 + LAYERS
    calls.clear()
    int_values(index, "t0", folders)  # after the pass: nothing is kept
    assert calls["gather0"] == 1 and not folding._MEMOS


def test_reused_results_equal_folding_again() -> None:
    """Values, nodes used and failure reasons are those of a fold without the memo, however often asked."""
    index = GraphIndex(_layers_model())
    names = ["dynamic", *(f"t{layer}" for layer in range(LAYERS)), "hd", "n", "x", "dynamic"]
    plain = [_outcome(lambda n=n: fold_ints(index, n)) for n in names]
    with fold_memo(index):
        shared = [_outcome(lambda n=n: fold_ints(index, n)) for n in names * 2]
    assert shared == plain * 2
    assert plain[0] == ("not static", "'n' is a graph input, known only at run time")


def test_a_hinted_result_is_reused_only_where_the_hint_gives_the_same_dims() -> None:
    """``Shape(x)`` reads the caller's dims: a candidate that proved other dims gets its own fold."""
    index = GraphIndex(_layers_model())
    hints: dict[str, list | None] = {
        "none": None,
        "proven": ["param:batch", "param:seq", 4, 32],
        "numpy": ["param:batch", "param:seq", np.int64(4), 32],  # equal, but not an int to ints()
    }

    def hint_of(key: str) -> folding.DimsHint:
        return lambda name: hints[key] if name == "x" else None

    order = ["none", "proven", "none", "numpy", "proven", "numpy"]
    plain = [_outcome(lambda k=k: fold_ints(index, "t0", hint_of(k))) for k in order]
    with fold_memo(index) as made:
        shared = [_outcome(lambda k=k: fold_ints(index, "t0", hint_of(k))) for k in order]
        # all 15 tensors of t0 once; then, per other dims, the 10 that read Shape(x) (not the constants)
        assert made.evaluated == 15 + 10 + 10
        before = made.evaluated
        assert fold_ints(index, "g0") == fold_ints(index, "g0", hint_of("proven"))  # same dim either way
        assert made.evaluated == before  # both reads of Shape(x) were folded above
    assert shared == plain
    assert shared[1][1].values == ("param:batch", "param:seq", 128, -1)  # type: ignore[union-attr]
    assert shared[3] != shared[1]  # a NumPy 4 times 32 is an opaque symbol to the Mul folder, not 128


def test_the_hint_is_asked_where_folding_again_would_ask_it() -> None:
    """A hint that fails (raises) is not a graph fact: nothing folded around it is kept."""
    index = GraphIndex(_layers_model())
    fail = [True]

    def hint(name: str) -> list | None:
        if fail[0]:
            raise NotStatic("the candidate cannot tell yet")
        return ["param:batch", "param:seq", 2, 8]

    with fold_memo(index):
        with pytest.raises(NotStatic, match="cannot tell yet"):
            fold_ints(index, "t0", hint)
        fail[0] = False
        assert fold_ints(index, "t0", hint).values == ("param:batch", "param:seq", 16, -1)


@pytest.mark.parametrize("order", [(20, 70, 40, 70), (70, 20, 64, 63, 66)])
def test_the_depth_limit_is_that_of_the_caller(order: tuple[int, ...]) -> None:
    """A fold deep in a chain is refused from one start and fine from another: reused only where
    folding again could not reach the limit, and a refused fold is never kept."""
    index = GraphIndex(_layers_model(chain=80))
    names = [f"i{k}" for k in order]
    plain = [_outcome(lambda n=n: fold_ints(index, n)) for n in names]
    with fold_memo(index):
        shared = [_outcome(lambda n=n: fold_ints(index, n)) for n in names]
    assert shared == plain
    assert any(kind == "not static" and "too deep" in str(r) for kind, r in plain)
    assert any(kind == "value" for kind, _ in plain) and MAX_FOLD_DEPTH == 64


def test_a_memo_belongs_to_one_index_and_one_set_of_folders() -> None:
    model = _layers_model()
    index, other = GraphIndex(model), GraphIndex(model)
    with fold_memo(index) as outer:
        with fold_memo(index) as inner:
            assert inner is outer
        fold_ints(other, "t0")
        int_values(index, "t0", dict(FOLDERS))  # other folders: not this memo's
        assert outer.evaluated == 0
        fold_ints(index, "t0")
        assert outer.evaluated > 0
    assert not folding._MEMOS
