"""Static ``If`` nodes: TorchScript exports ``t.squeeze(-1)`` on a dim it cannot see as an If.

The condition is ``Shape(t)[-1] == 1``, which the proof can fold (the channel grid is known), so
only one branch can ever run.  A branch that is a single Squeeze or Identity of an outer tensor is
followed like that op; anything else ends the candidate.
"""

from __future__ import annotations

from onnx import GraphProto, NodeProto, numpy_helper

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.grid import squeeze_grid
from rope_onnx.fusion.ops.base import OpRule, ShapeContext, TraceContext
from rope_onnx.graph.attributes import attr_graph, attr_ints
from rope_onnx.graph.protos import constant_node_value


def _branch_constants(branch: GraphProto) -> dict[str, list[int]]:
    values = {t.name: numpy_helper.to_array(t) for t in branch.initializer}
    values |= {n.output[0]: constant_node_value(n) for n in branch.node if n.op_type == "Constant"}
    return {name: [int(v) for v in value.reshape(-1)] for name, value in values.items() if value is not None}


def _if(t: TraceContext, node: NodeProto, out: str, k: int) -> Expr:
    condition, cond_nodes = t.ints(node, 0)
    if len(condition) != 1:
        raise NotRope(f"If node '{node.name}' has a condition that is not one static value")
    branch = attr_graph(node, "then_branch" if condition[0] else "else_branch")
    if branch is None:
        raise NotRope(f"If node '{node.name}' lacks the branch its condition takes")
    work = [n for n in branch.node if n.op_type != "Constant"]
    if len(branch.output) != 1 or len(work) != 1 or work[0].output[0] != branch.output[0].name:
        raise NotRope(f"If node '{node.name}': the branch taken is not one Squeeze or Identity")
    inner = work[0]
    data = inner.input[0]
    if inner.op_type == "Identity":
        value, rank = t.expr(data, k), t.rank(data)
    elif inner.op_type == "Squeeze":
        constants = _branch_constants(branch)
        axes = constants.get(inner.input[1]) if len(inner.input) > 1 else attr_ints(inner, "axes")
        if axes is None:
            raise NotRope(f"If node '{node.name}': the Squeeze in its branch has no static axes")
        value, rank = squeeze_grid(t, data, list(axes), k, inner), t.rank(data) - len(axes)
    else:
        raise NotRope(f"If node '{node.name}': the branch taken is a {inner.op_type}")
    t.prove_rank(out, rank)
    return value.with_grid(value.grid, cond_nodes)


def _if_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """The branch a static condition takes, as that branch declares its output."""
    condition = ctx.fold(node.input[0]).ints()
    branch = attr_graph(node, "then_branch" if condition and condition[0] else "else_branch")
    if branch is None:
        return None
    out = branch.output[list(node.output).index(name)].type.tensor_type
    return len(out.shape.dim) if out.HasField("shape") else None


RULES = (OpRule("If", trace=_if, rank=_if_rank, makes_products=True),)
