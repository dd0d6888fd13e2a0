"""Shape and element-type checks a proven channel computation must also pass to become a site.

The proof (:mod:`rope_onnx.fusion.prove`) only sees the channel axes; these checks look at the
leading dims (the tables must broadcast into x exactly as RoPECustomer does, proven axis by axis in
:mod:`rope_onnx.fusion.dimproof`) and at element types.
"""

from __future__ import annotations

from rope_onnx.fusion.channels import Expr
from rope_onnx.fusion.dimproof import DimProver, table_axis_problem
from rope_onnx.fusion.ops.dimnames import SourceDims
from rope_onnx.fusion.ops.registry import reads_values_of
from rope_onnx.fusion.prove import Proof
from rope_onnx.fusion.trace import Tracer
from rope_onnx.fusion.views import Views
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import DTYPE_NAMES

#: Head dims of real models are 64-256; wider channel axes (hidden states) are not candidates.
MAX_HEAD_DIM = 1024


def data_inputs(index: GraphIndex, nodes: frozenset[int]) -> set[str]:
    """Tensors whose values flow into the site (not constants, not only read for their shape)."""
    read: set[str] = set()
    names = index.names  # each node's (domain, op_type, inputs as written), read once by the index
    for n in nodes:  # no protobuf read: it makes every name anew
        domain, op_type, written, _, _ = names[n]
        if reads_values_of(op_type, domain):
            read.update(written)
    read.discard("")
    producer = index.producer  # one producer per tensor (io.validate): made inside iff its producer is
    return {name for name in read if producer.get(name) not in nodes and index.constant(name) is None}


def head_sized(dims: list) -> bool:
    """A channel axis a head could have (an unknown width: let the proof decide)."""
    return bool(dims) and (not isinstance(dims[-1], int) or 2 <= dims[-1] <= MAX_HEAD_DIM)


def sums_products(expr: Expr) -> bool:
    """Some channel adds a product to something else: the shape of a rotation, worth a report."""
    return any(len(poly) >= 2 and 2 in map(len, poly) for poly in expr.grid.flat)


def _same_dims(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b, strict=True))


def _proven_over_claims(index: GraphIndex, name: str, dims: list, prover: DimProver) -> list:
    """``dims`` with each leading axis only a declaration sized replaced by the source the graph
    names for it (a value_info that says 1 where the table has a Shape read's rows is a claim, not
    a proof); a declared size the graph computes otherwise stays, for the contradiction to show."""
    claimed = index.claimed_axes(name)
    proven = prover.dims(name) if claimed else None
    if proven is None or len(proven) != len(dims):
        return dims
    last = len(dims) - 1
    return [
        p
        if a in claimed and a < last and p is not None and not (isinstance(d, int) and isinstance(p, int))
        else d
        for a, (d, p) in enumerate(zip(dims, proven, strict=True))
    ]


def check_site(
    index: GraphIndex, tracer: Tracer, output: str, proof: Proof, inputs: set[str], prover: DimProver
) -> tuple[str, list[str]]:
    """Shapes and element types a proven channel computation must also satisfy.

    Returns (reason, assumptions): reason is '' when the site is accepted.  Nothing is assumed
    any more (the list stays for the report's ``assumes`` field, always empty): every table axis
    is proven to broadcast as RoPECustomer does (:mod:`rope_onnx.fusion.dimproof`) or the site is
    skipped.
    """
    source, y_dims = tracer.leaf_dims(proof.x), index.dims(output)
    if source is None or len(source) < 2:
        return f"x '{proof.x}' must have a known rank >= 2", []
    if not isinstance(source[-1], int):  # a symbolic width: the window read cannot be checked
        return f"the channel width of x '{proof.x}' is not statically known ({source[-1]})", []
    runs = [o + n for o, n in (proof.before, proof.after) if n]
    highest = max([max(proof.reads()) + 1, *runs])
    if highest > source[-1]:
        return f"x '{proof.x}' has {source[-1]} channels; the site reads {highest}", []
    source = _proven_over_claims(index, proof.x, source, prover)
    x_dims = [*source[:-1], proof.width]  # the site's output: the channels it rotates and passes
    same_output = y_dims is not None and _same_dims(y_dims, x_dims)
    if not same_output and inputs - {proof.x, proof.cos, proof.sin}:
        return f"cannot prove the output has x's shape {x_dims}", []
    views = Views(index, tracer.views, prover)
    proven_x: list[SourceDims | None] = []  # asked once for both tables, where a table needs it first
    for table in (proof.cos, proof.sin):
        dims = tracer.leaf_dims(table)
        dims = None if dims is None else _proven_over_claims(index, table, dims, prover)
        if dims is None:
            if same_output:
                continue
            return f"table '{table}' has an unknown rank; cannot prove it broadcasts into x {x_dims}", []
        claimed = index.claimed_axes(views.source(table))
        proven_t = views.proven(table)
        if not proven_x:  # a view's dims are folded anew per call
            proven_x.append(views.proven(proof.x))
        problem = table_axis_problem(table, dims, x_dims, proven_t, proven_x[0], claimed)
        if problem:
            return problem, []
    x_type, y_type = index.elem_type(views.source(proof.x)), index.elem_type(views.source(output))
    if not x_type or not y_type:  # the fused node must carry x's type; a guess is not a proof
        return f"the element type of '{proof.x if not x_type else output}' is not known", []
    tables = (index.elem_type(views.source(n)) for n in (proof.cos, proof.sin))
    types = {x_type, y_type, *tables} - {0}
    if len(types) != 1 or next(iter(types)) not in DTYPE_NAMES:
        names = sorted(DTYPE_NAMES.get(t, str(t)) for t in types)
        return f"element types {names} are not one of float16/float32/bfloat16", []
    return views.plan({proof.x, proof.cos, proof.sin}), []
