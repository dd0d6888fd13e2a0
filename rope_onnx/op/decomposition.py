"""RoPECustomer as an ONNX function, so ONNX Runtime can run a fused model on CPU.

The reference semantics live in :mod:`rope_onnx.op.reference`; this module expresses the same
computation with standard ONNX ops.  One function is emitted per (interleaved, rotary_dim,
element type) that the model uses, all named ``RoPECustomer`` in one private domain and told apart
by the node's ``overload`` (IR version 10).  We measured the alternative — one function whose
body reads the attributes through ``ref_attr_name`` — and it needs ``Constant(value_int)`` and
``CastLike``, i.e. default opset >= 15, while exporters still emit opset 11-14 models; static
per-variant bodies use only ops that exist unchanged in meaning from opset 11 to 28, and the
overload mechanism is honoured by ONNX Runtime and accepted by ``onnx.checker`` (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import FunctionProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.graph import conventions
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import DTYPE_NAMES, OP_TYPE, attributes_of, is_rope_node

INT64_MAX = 2**63 - 1
#: Overloads appeared in IR version 10.
MIN_IR_VERSION_FOR_OVERLOADS = 10


class _Body:
    """Tiny builder for a function body: unique local names, constants as Constant nodes."""

    def __init__(self) -> None:
        self.nodes: list[NodeProto] = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:  # ints, floats, lists, tensors
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def ints(self, *values: int) -> str:
        tensor = numpy_helper.from_array(np.array(values, dtype=np.int64))
        return self.op("Constant", value=tensor)

    def last_axis_slice(self, data: str, start: str, end: str) -> str:
        return self.op("Slice", data, start, end, self.ints(-1))


def overload_key(interleaved: int, rotary_dim: int, elem_type: int) -> str:
    """Name of the function variant serving one attribute set and element type."""
    return f"i{interleaved}_r{rotary_dim}_{DTYPE_NAMES[elem_type]}"


def build_function(
    domain: str, interleaved: int, rotary_dim: int, elem_type: int, opset: int
) -> FunctionProto:
    """The reference decomposition for one variant, in ``domain``, for default opset ``opset``."""
    b = _Body()
    if rotary_dim:
        rotary = b.ints(rotary_dim)
        half = b.ints(rotary_dim // 2)
    else:  # the whole last dim, known only at run time
        rotary = b.op("Slice", b.op("Shape", "x"), b.ints(-1), b.ints(INT64_MAX), b.ints(0))
        half = b.op("Div", rotary, b.ints(2))
    xr = b.last_axis_slice("x", b.ints(0), rotary)
    passthrough = b.last_axis_slice("x", rotary, b.ints(INT64_MAX))
    compute, cos, sin = xr, "cos", "sin"
    if elem_type != TensorProto.FLOAT:  # float32 arithmetic, one rounding at the end
        compute, cos, sin = (b.op("Cast", t, to=TensorProto.FLOAT) for t in (xr, cos, sin))
    if interleaved:
        shape = b.op("Shape", compute)
        leading = b.op("Slice", shape, b.ints(0), b.ints(-1), b.ints(0))
        pairs = b.op("Reshape", compute, b.op("Concat", leading, b.ints(-1, 2), axis=0))
        even = b.last_axis_slice(pairs, b.ints(0), b.ints(1))
        odd = b.last_axis_slice(pairs, b.ints(1), b.ints(2))
        rotated = b.op("Reshape", b.op("Concat", b.op("Neg", odd), even, axis=-1), shape)
    else:
        first = b.last_axis_slice(compute, b.ints(0), half)
        second = b.last_axis_slice(compute, half, b.ints(INT64_MAX))
        rotated = b.op("Concat", b.op("Neg", second), first, axis=-1)
    result = b.op("Add", b.op("Mul", compute, cos), b.op("Mul", rotated, sin))
    if elem_type != TensorProto.FLOAT:
        result = b.op("Cast", result, to=elem_type)
    b.nodes.append(helper.make_node("Concat", [result, passthrough], ["y"], axis=-1))
    function = helper.make_function(
        domain,
        OP_TYPE,
        ["x", "cos", "sin"],
        ["y"],
        b.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["interleaved", "rotary_dim"],
    )
    function.overload = overload_key(interleaved, rotary_dim, elem_type)
    function.doc_string = "Reference decomposition of RoPECustomer (rope-onnx docs/op-contract.md)."
    return function


def default_opset(model: ModelProto) -> int:
    """The default-domain opset the reference functions are written in; a model without one is refused."""
    version = conventions.default_opset(model)
    if version is not None:
        return version
    raise InputError("the model imports no default-domain opset; re-export it with a standard exporter")


def embed_reference(
    model: ModelProto,
    domain: str,
    elem_types: dict[str, int] | None = None,
    nodes: Sequence[NodeProto] | None = None,
) -> int:
    """Move RoPECustomer ``nodes`` of ``model`` (in place) into ``domain``, backed by functions.

    ``nodes`` defaults to the nodes of the operator contract: RoPECustomer in the default domain
    (the ATC form, which no model-local function serves).  A node in any other domain belongs to
    whoever wrote it — an earlier fusion with ``--domain``, or a user's own operator of that name —
    and is left as it is.  Functions created here never reuse a function already in the model:
    when a (domain, name, overload) is taken, the variant gets a fresh overload, so a user's
    function of that identity keeps serving the user's nodes.  Returns the number of nodes served.
    ``elem_types`` (x tensor -> element type) saves a shape inference when the caller knows them.
    """
    if not domain:
        raise InputError("the reference functions need a non-empty domain name (e.g. rope_onnx.op.reference)")
    if nodes is None:
        nodes = [n for n in model.graph.node if is_rope_node(n) and is_default_domain(n.domain)]
    if not nodes:
        return 0
    opset = default_opset(model)
    types = dict(elem_types or {})
    missing = {n.input[0] for n in nodes} - set(types)
    if missing:  # declared types, else one graph-only shape inference
        index = GraphIndex(model)
        types.update({name: index.elem_type(name) for name in missing})
    existing = {(f.domain, f.name, f.overload) for f in model.functions}
    chosen: dict[str, str] = {}  # variant key -> the overload of the function made for it here
    for node in nodes:
        attrs = attributes_of(node)
        elem_type = types.get(node.input[0])
        if elem_type not in DTYPE_NAMES:
            raise InputError(
                f"{OP_TYPE} node '{node.name}': element type of x '{node.input[0]}' is unknown or "
                f"unsupported ({elem_type}); RoPECustomer takes float16, float32 or bfloat16"
            )
        key = overload_key(attrs.interleaved, attrs.rotary_dim, elem_type)
        if key not in chosen:
            overload, n = key, 1
            while (domain, OP_TYPE, overload) in existing:
                n += 1
                overload = f"{key}_{n}"
            function = build_function(domain, attrs.interleaved, attrs.rotary_dim, elem_type, opset)
            function.overload = overload
            model.functions.append(function)
            existing.add((domain, OP_TYPE, overload))
            chosen[key] = overload
        node.domain = domain
        node.overload = chosen[key]
    if all(entry.domain != domain for entry in model.opset_import):
        model.opset_import.append(helper.make_opsetid(domain, 1))
    model.ir_version = max(model.ir_version, MIN_IR_VERSION_FOR_OVERLOADS)
    return len(nodes)


def runnable_copy(model: ModelProto, domain: str = "") -> ModelProto:
    """An in-memory copy ONNX Runtime can run: RoPECustomer served by the reference functions."""
    from rope_onnx.op.contract import REFERENCE_DOMAIN

    copy = ModelProto()
    copy.CopyFrom(model)
    embed_reference(copy, domain or REFERENCE_DOMAIN)
    return copy
