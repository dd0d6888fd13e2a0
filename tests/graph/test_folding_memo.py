"""The memoised folder answers exactly what a plain recursion answers, also where the memo must not
be trusted: a shape DAG read through paths of different depths around the depth limit (Gather's
fallback answers otherwise on a cut path), and a dims hint that changes between calls sharing one
memo (the tracer's hint grows with its candidate).

The reference below is the folder as it was before the memo: one recursion per path, no reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import NodeProto, TensorProto, helper, numpy_helper

from rope_onnx.fusion.ops.registry import FOLDERS, fold_ints
from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.folding import (
    MAX_FOLD_DEPTH,
    DimsHint,
    Folder,
    FoldMemo,
    IntValue,
    NotStatic,
    int_values,
)
from rope_onnx.graph.index import Dim, GraphIndex

CI = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def reference(
    index: GraphIndex, name: str, folders: Mapping[str, Folder], hint: DimsHint | None, depth: int = 0
) -> IntValue:
    """int_values without any memo: every path folded again."""
    if depth > MAX_FOLD_DEPTH:
        raise NotStatic(f"'{name}' is computed by a chain too deep to fold")
    const = index.constant(name)
    if const is not None:
        if const.ndim > 1 or not np.issubdtype(const.dtype, np.integer):
            raise NotStatic(f"constant '{name}' is not a 0-D/1-D integer tensor")
        producer = index.producer.get(name)
        used = frozenset() if producer is None else frozenset({producer})
        return IntValue(tuple(int(v) for v in const.reshape(-1)), const.ndim == 0, used)
    node_id = index.producer.get(name)
    if node_id is None:
        raise NotStatic(f"'{name}' is a graph input, known only at run time")
    node = index.nodes[node_id]

    def arg(i: int) -> IntValue:
        return reference(index, node.input[i], folders, hint, depth + 1)

    if is_default_domain(node.domain) and node.op_type == "Shape":
        known = hint(node.input[0]) if hint is not None else None
        dims = known if known is not None else index.dims(node.input[0])
        if dims is None:
            raise NotStatic(f"rank of '{node.input[0]}' is unknown")
        start, end = attr_int(node, "start", 0), attr_int(node, "end")
        values, scalar, used = list(dims[slice(start, end)]), False, frozenset[int]()
    elif is_default_domain(node.domain) and node.op_type in folders:
        values, scalar, used = folders[node.op_type](index, node, node_id, arg)
    else:
        raise NotStatic(f"'{name}' is computed by {node.op_type} node '{node.name}', which is not folded")
    constants = {p for i in node.input if (p := index.producer.get(i)) is not None}
    used |= {p for p in constants if index.nodes[p].op_type == "Constant"}
    return IntValue(tuple(values), scalar, used | {node_id})


def _outcome(fold: Callable[[], IntValue]) -> object:
    try:
        value = fold()
    except NotStatic as why:
        return ("NotStatic", str(why))
    return (tuple(value.values), value.scalar, value.nodes)


@st.composite
def shape_dags(draw: st.DrawFn) -> tuple[GraphIndex, list[str]]:
    """Shape arithmetic as exporters write it, random: Shape reads of three inputs (one of unknown rank,
    one of rank 0),
    Gather/Unsqueeze/Concat/Slice/arithmetic/Cast on them, and Identity chains of depths around the
    limit in front of shared values (the one path long, another short)."""
    nodes: list[NodeProto] = []
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("i0", 0), ("i1", 1), ("i3", -1))]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("ax", [0]), ("two", [2]))]
    scalars, vectors = ["i0", "i1", "i3"], ["ax", "two"]

    def add(op: str, inputs: list[str], **attrs: object) -> str:
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"n{len(nodes)}", **attrs))
        return out

    for source in ("x", "u", "z"):
        vectors.append(add("Shape", [source]))
    for _ in range(draw(st.integers(3, 14))):
        kind = draw(st.sampled_from(["gather", "unsqueeze", "concat", "arith", "cast", "chain", "slice"]))
        if kind == "gather":
            scalars.append(
                add("Gather", [draw(st.sampled_from(vectors)), draw(st.sampled_from(scalars[:3]))])
            )
        elif kind == "unsqueeze":
            vectors.append(add("Unsqueeze", [draw(st.sampled_from(scalars)), "ax"]))
        elif kind == "concat":
            parts = draw(st.lists(st.sampled_from(vectors), min_size=1, max_size=3))
            vectors.append(add("Concat", parts, axis=0))
        elif kind == "arith":
            pool = draw(st.sampled_from([scalars, vectors]))
            op = draw(st.sampled_from(["Add", "Mul", "Div", "Sub"]))
            pool.append(add(op, [draw(st.sampled_from(pool)), draw(st.sampled_from(pool))]))
        elif kind == "cast":
            pool = draw(st.sampled_from([scalars, vectors]))
            to = draw(st.sampled_from([TensorProto.INT64, TensorProto.INT32, TensorProto.INT8]))
            pool.append(add("Cast", [draw(st.sampled_from(pool))], to=to))
        elif kind == "slice":
            vectors.append(add("Slice", [draw(st.sampled_from(vectors)), "i1", "two", "ax"]))
        else:  # a long Identity chain in front of a value, so that it is reached at two depths
            pool = draw(st.sampled_from([scalars, vectors]))
            last = start = draw(st.sampled_from(pool))
            for _ in range(draw(st.integers(MAX_FOLD_DEPTH - 6, MAX_FOLD_DEPTH + 2))):
                last = add("Identity", [last])
            pool.append(
                add(
                    "Concat" if pool is vectors else "Add",
                    [last, start] if draw(st.booleans()) else [start, last],
                    **({"axis": 0} if pool is vectors else {}),
                )
            )
    graph = helper.make_graph(
        nodes,
        "dag",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", 4, 8]),
            helper.make_tensor_value_info("u", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.INT64, None)],
        initializer=inits,
    )
    index = GraphIndex(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), infer=False)
    names = [n.output[0] for n in nodes]
    return index, draw(st.lists(st.sampled_from(names), min_size=1, max_size=12))


@CI
@given(shape_dags(), st.data())
def test_memoised_folding_equals_the_plain_recursion(
    dag: tuple[GraphIndex, list[str]], data: st.DataObject
) -> None:
    index, asked = dag
    hinted: dict[str, list[Dim]] = {}

    def hint(name: str) -> list[Dim] | None:
        return hinted.get(name)

    memo: FoldMemo = {}
    for name in asked:
        # The hint changes between calls sharing one memo, as the tracer's does within a candidate.
        if data.draw(st.booleans()):
            hinted["x"] = data.draw(st.sampled_from([["B", "L", 4, 8], [2, "L", 4, 16], [1, 1]]))
        if data.draw(st.booleans()):
            hinted.pop("x", None)
        want = _outcome(lambda n=name: reference(index, n, FOLDERS, hint))  # type: ignore[misc]
        assert _outcome(lambda n=name: fold_ints(index, n, hint, memo)) == want  # type: ignore[misc]
        assert _outcome(lambda n=name: int_values(index, n, FOLDERS, hint)) == want  # type: ignore[misc]


def _behind_identities(more: list[NodeProto], last: str) -> tuple[list[NodeProto], str]:
    """``g = Gather(Shape(x), 0)``, then ``more``, then ``last`` behind ``MAX_FOLD_DEPTH - 1``
    Identities: a read of the chain's end puts the Shape one past the depth limit."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["g"]),
        *more,
    ]
    for k in range(MAX_FOLD_DEPTH - 1):
        nodes.append(helper.make_node("Identity", [last], [f"c{k}"]))
        last = f"c{k}"
    return nodes, last


def _shape_of_x(nodes: list[NodeProto], output: str) -> GraphIndex:
    """The index (no inference) of ``nodes`` reading ``x`` of shape [3, 5] and the index ``i0`` = 0."""
    graph = helper.make_graph(
        nodes,
        "depth",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])],
        [helper.make_tensor_value_info(output, TensorProto.INT64, None)],
        initializer=[numpy_helper.from_array(np.array(0, np.int64), "i0")],
    )
    return GraphIndex(helper.make_model(graph), infer=False)


def test_a_value_remembered_near_the_limit_is_refolded_where_a_deeper_path_would_cut_it() -> None:
    """``Gather(Shape(x))`` read directly and through an Identity chain that puts its Shape one past
    the limit: the deep read fails (Gather's fallback does not apply to a ranked x), whichever
    path is folded first, exactly as the plain recursion says."""
    nodes, last = _behind_identities([], "g")
    nodes += [
        helper.make_node("Add", [last, "g"], ["deep_first"]),
        helper.make_node("Add", ["g", last], ["short_first"]),
    ]
    index = _shape_of_x(nodes, "deep_first")
    for name in ("deep_first", "short_first", last, "g"):
        want = _outcome(lambda n=name: reference(index, n, FOLDERS, None))  # type: ignore[misc]
        assert _outcome(lambda n=name: fold_ints(index, n)) == want  # type: ignore[misc]
    assert _outcome(lambda: fold_ints(index, "deep_first"))[0] == "NotStatic"
    assert _outcome(lambda: fold_ints(index, "g")) == ((3,), True, frozenset({0, 1}))


def _recover(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    """A folder that answers 7 where its input does not fold (as Gather answers otherwise on failure)."""
    try:
        value = arg(0)
    except NotStatic:
        return [7], True, frozenset()
    return list(value.values), value.scalar, value.nodes


def test_a_value_made_on_a_cut_path_is_not_remembered() -> None:
    """``Recover(Gather(Shape(x)))`` is 3, but 7 on a path where the depth limit cuts its input:
    folded first on that path, its answer must not be reused where the path is short."""
    nodes, last = _behind_identities([helper.make_node("Recover", ["g"], ["r"])], "r")
    nodes.append(helper.make_node("Add", [last, "r"], ["y"]))
    index = _shape_of_x(nodes, "y")
    folders = {**FOLDERS, "Recover": _recover}
    assert _outcome(lambda: reference(index, "y", folders, None))[0] == (10,)  # 7 (deep) + 3 (short)
    assert _outcome(lambda: int_values(index, "y", folders)) == _outcome(
        lambda: reference(index, "y", folders, None)
    )
