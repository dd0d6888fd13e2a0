"""Does FUSED derive from ORIGINAL?  Checked before anything runs.

``verify`` answers "does the fusion compute what the original computes"; given a model that was not
made from the original (another export of the same architecture, another checkpoint), a FAILED table
would read as "the fusion is wrong".  So the pair is checked first, structurally, and refused with
exit 2 and one line naming the first difference.  What the fusion pass guarantees (docs/guarantees.md)
and so what is required here:

* the same graph inputs (names, element types) and outputs (names, element types);
* every node of FUSED is either one the pass added — a ``RoPECustomer`` node or a node named
  ``rope_onnx/…`` (the widening Gathers and window Slices of the rewrite, converted rotary ops) — or a
  node of ORIGINAL kept as it was: same op, domain, inputs, outputs and attributes (only op, domain and
  outputs when the two models import different default opsets, as a target that raises the opset
  adapts nodes);
* every initializer of FUSED with a name ORIGINAL has holds the same type, shape and values (external
  weights: type and shape; their bytes are compared through the outputs by the run), and every
  initializer a kept node reads is one of ORIGINAL's;
* every node of ORIGINAL missing from FUSED lies inside a fused site: upstream of a site's output and
  downstream of the tensors FUSED still computes.
"""

from __future__ import annotations

from onnx import ModelProto, NodeProto, TensorProto

from rope_onnx.errors import InputError
from rope_onnx.graph.conventions import default_opset, is_default_domain
from rope_onnx.op.contract import is_rope_node
from rope_onnx.verify.feeds import input_specs

#: Name prefix of every node the pass adds (rewrite's fresh names, converted rotary ops).
ADDED_PREFIX = "rope_onnx/"
_HINT = "give the original model and the fused model rope-onnx fuse made from it"


def _refuse(what: str) -> InputError:
    return InputError(f"the models do not correspond: {what}; {_HINT}")


def _label(node: NodeProto) -> str:
    return f"'{node.name or next((o for o in node.output if o), '?')}'"


def _op(node: NodeProto) -> str:
    return node.op_type if is_default_domain(node.domain) else f"{node.domain}::{node.op_type}"


def _node_difference(original: NodeProto, fused: NodeProto, same_opset: bool) -> str:
    """What differs between a node of ORIGINAL and the node of FUSED making the same tensor ("" if none)."""
    if _op(original) != _op(fused):
        return f"is {_op(original)} in ORIGINAL but {_op(fused)} in FUSED"
    if list(original.output) != list(fused.output):
        return f"has outputs {list(original.output)} in ORIGINAL but {list(fused.output)} in FUSED"
    if not same_opset:
        return ""
    if list(original.input) != list(fused.input):
        pairs = zip(original.input, fused.input, strict=False)
        first = next(((a, b) for a, b in pairs if a != b), None)
        said = f"reads '{first[1]}' where ORIGINAL reads '{first[0]}'" if first else "has other inputs"
        return f"({_op(fused)}) {said}"
    attrs_a = {a.name: a for a in original.attribute}
    attrs_b = {a.name: a for a in fused.attribute}
    if attrs_a.keys() != attrs_b.keys():
        names = sorted(attrs_a.keys() ^ attrs_b.keys())
        return f"({_op(fused)}) has attribute(s) {', '.join(names)} in only one of the models"
    changed = sorted(name for name in attrs_a if attrs_a[name] != attrs_b[name])
    return f"({_op(fused)}) has another value of attribute '{changed[0]}'" if changed else ""


def _tensor_difference(original: TensorProto, fused: TensorProto) -> str:
    if original.data_type != fused.data_type:
        return "another element type"
    if list(original.dims) != list(fused.dims):
        return f"shape {list(fused.dims)} where ORIGINAL's is {list(original.dims)}"
    if TensorProto.EXTERNAL in (original.data_location, fused.data_location):
        return ""  # weights on disk: the full run compares what they compute
    return "" if original == fused else "other values"


def _check_signature(original: ModelProto, fused: ModelProto) -> None:
    def io(model: ModelProto) -> tuple[dict[str, int], dict[str, int]]:
        outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
        return {s.name: s.elem_type for s in input_specs(model)}, outputs

    for kind, a, b in zip(("inputs", "outputs"), io(original), io(fused), strict=True):
        if a.keys() != b.keys():
            names = sorted(a.keys() ^ b.keys())
            raise _refuse(f"{kind} differ ({', '.join(names[:4])}{' …' if len(names) > 4 else ''})")
        typed = sorted(n for n in a if a[n] != b[n])
        if typed:
            raise _refuse(f"{kind} differ in element type ({', '.join(typed[:4])})")


def check_derivation(original: ModelProto, fused: ModelProto) -> None:
    """Raise :class:`InputError` (exit 2) naming the first difference unless FUSED derives from ORIGINAL."""
    _check_signature(original, fused)
    same_opset = default_opset(original) == default_opset(fused)
    made_by = {out: node for node in original.graph.node for out in node.output if out}
    kept: set[int] = set()  # id() of ORIGINAL's nodes found unchanged in FUSED
    available = {v.name for v in fused.graph.input} | {t.name for t in fused.graph.initializer}
    site_outputs: list[str] = []
    read_by_kept: set[str] = set()
    for node in fused.graph.node:
        key = next((o for o in node.output if o), "")
        twin = made_by.get(key)
        difference = "" if twin is None else _node_difference(twin, node, same_opset)
        if twin is not None and not difference:
            kept.add(id(twin))
            available.update(node.output)
            read_by_kept.update(node.input)
        elif is_rope_node(node) or node.name.startswith(ADDED_PREFIX):
            site_outputs.extend(o for o in node.output if o in made_by)
        elif twin is None:
            swapped = any(n.name.startswith(ADDED_PREFIX) for n in original.graph.node)
            raise _refuse(
                f"FUSED's node {_label(node)} ({_op(node)}) computes '{key}', which ORIGINAL does not"
                + (" (are ORIGINAL and FUSED swapped?)" if swapped else "")
            )
        else:
            raise _refuse(f"node {_label(node)} {difference}")
    originals = {t.name: t for t in original.graph.initializer}
    for tensor in fused.graph.initializer:
        if tensor.name in originals:
            difference = _tensor_difference(originals[tensor.name], tensor)
            if difference:
                raise _refuse(f"initializer '{tensor.name}' has {difference} in FUSED")
        elif tensor.name in read_by_kept and not tensor.name.startswith(ADDED_PREFIX):
            raise _refuse(f"initializer '{tensor.name}' of FUSED is not in ORIGINAL")
    inside = _site_interiors(made_by, site_outputs, available)
    for node in original.graph.node:
        if id(node) not in kept and id(node) not in inside:
            raise _refuse(
                f"ORIGINAL's node {_label(node)} ({_op(node)}) is missing from FUSED outside any fused site"
            )


def _site_interiors(made_by: dict[str, NodeProto], outputs: list[str], available: set[str]) -> set[int]:
    """id() of ORIGINAL's nodes upstream of a site output and downstream of what FUSED still computes."""
    inside: set[int] = set()
    work = list(outputs)
    while work:
        node = made_by.get(work.pop())
        if node is None or id(node) in inside:
            continue
        inside.add(id(node))
        work.extend(name for name in node.input if name and name not in available)
    return inside
