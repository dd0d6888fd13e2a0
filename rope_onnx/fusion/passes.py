"""The fusion pass: find every RoPE site, prove it, rewrite it into one RoPECustomer node.

Candidates are the nodes a site can end in (Add, Sub, Concat, Reshape) with a head-sized
channel axis, visited from the graph's end so that the largest site wins (a partial-rotary
Concat before the Add inside it).  Each candidate is symbolically executed on its channel axes
(:mod:`rope_onnx.fusion.trace`), proven against the op's definition (:mod:`rope_onnx.fusion.prove`) and
checked for shapes and element types here; only then is it rewritten (:mod:`rope_onnx.fusion.rewrite`).
Anything that computes degree-2 channel terms but fails a check is reported with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from onnx import ModelProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.dimproof import DimProver, table_axis_problem
from rope_onnx.fusion.prove import Proof, prove
from rope_onnx.fusion.rewrite import ProvenSite, apply_sites
from rope_onnx.fusion.trace import BudgetExceeded, Tracer
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import DTYPE_NAMES
from rope_onnx.op.decomposition import embed_reference

if TYPE_CHECKING:
    from rope_onnx.verify import VerifyResult

#: Sites end in one of these ops; everything else inside a site is reached from them.
ANCHOR_OPS = frozenset({"Add", "Sub", "Concat", "Reshape"})
#: Head dims of real models are 64-256; wider channel axes (hidden states) are not candidates.
MAX_HEAD_DIM = 1024


@dataclass(frozen=True)
class Site:
    """One fused site, as the report shows it (keys mirror the op's attributes)."""

    output: str
    input: str
    cos: str  # the tables as the original graph consumes them (before any widening)
    sin: str
    interleaved: int
    rotary_dim: int
    head_dim: int
    dtype: str
    nodes_removed: int
    node: str
    assumes: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        match = re.search(r"layers?[._/](\d+)", self.output)
        return match.group(1) if match else "-"


@dataclass(frozen=True)
class Skip:
    at: str
    reason: str


@dataclass
class FuseResult:
    model: str
    sites: list[Site] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    verification: VerifyResult | None = None  # set by pipeline.fuse_file(..., verify=...)
    linked: list[str] = field(default_factory=list)  # data files fuse_file hard-linked (link_data)

    @property
    def fused(self) -> int:
        return len(self.sites)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "fused": self.fused,
            "sites": [{**s.__dict__, "assumes": list(s.assumes)} for s in self.sites],
            "skipped": [s.__dict__ for s in self.skipped],
            **({"verify": self.verification.to_json()} if self.verification is not None else {}),
        }


def _data_inputs(index: GraphIndex, nodes: frozenset[int]) -> set[str]:
    """Tensors whose values flow into the site (not constants, not only read for their shape)."""
    produced = {o for n in nodes for o in index.nodes[n].output}
    return {
        name
        for n in nodes
        if index.nodes[n].op_type != "Shape"
        for name in index.nodes[n].input
        if name and name not in produced and index.constant(name) is None
    }


def _head_sized(dims: list) -> bool:
    """A channel axis a head could have (an unknown width: let the proof decide)."""
    return bool(dims) and (not isinstance(dims[-1], int) or 2 <= dims[-1] <= MAX_HEAD_DIM)


def _sums_products(expr: Expr) -> bool:
    """Some channel adds a product to something else: the shape of a rotation, worth a report."""
    return any(len(poly) >= 2 and any(len(m) == 2 for m in poly) for poly in expr.grid.flat)


def _same_dims(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b, strict=True))


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
    if proof.x_offset + proof.head_dim > source[-1]:
        return (
            f"x '{proof.x}' has {source[-1]} channels; the site reads {proof.x_offset + proof.head_dim}",
            [],
        )
    x_dims = [*source[:-1], proof.head_dim]  # the channel window the site rotates
    same_output = y_dims is not None and _same_dims(y_dims, x_dims)
    if not same_output and inputs - {proof.x, proof.cos, proof.sin}:
        return f"cannot prove the output has x's shape {x_dims}", []
    for table in (proof.cos, proof.sin):
        dims = tracer.leaf_dims(table)
        if dims is None:
            if same_output:
                continue
            return f"table '{table}' has an unknown rank; cannot prove it broadcasts into x {x_dims}", []
        problem = table_axis_problem(table, dims, x_dims, prover.dims(table), prover.dims(proof.x))
        if problem:
            return problem, []
    types = {index.elem_type(n) for n in (proof.x, proof.cos, proof.sin, output)} - {0}
    if len(types) != 1 or next(iter(types)) not in DTYPE_NAMES:
        names = sorted(DTYPE_NAMES.get(t, str(t)) for t in types)
        return f"element types {names} are not one of float16/float32/bfloat16", []
    return "", []


def find_sites(model: ModelProto, index: GraphIndex) -> tuple[list[ProvenSite], list[Skip]]:
    """Every provable site of ``model`` and every near miss with its reason (nothing is edited)."""
    tracer = Tracer(index)
    prover = DimProver(index)
    proven: list[ProvenSite] = []
    skipped: list[Skip] = []
    claimed: set[int] = set()
    covered: set[int] = set()
    for anchor in range(len(index.nodes) - 1, -1, -1):
        node = index.nodes[anchor]
        if anchor in claimed or node.op_type not in ANCHOR_OPS or node.domain not in ("", "ai.onnx"):
            continue
        output = node.output[0]
        dims = index.dims(output)
        if dims is not None and not _head_sized(dims):
            continue
        tracer.reset()
        try:
            expr = tracer.eval(output, 1)
        except (BudgetExceeded, NotRope):
            continue
        if not isinstance(expr, Expr) or not _sums_products(expr):
            continue
        try:
            proof = prove(expr, tracer.leaf_names)
            reason, assumptions = check_site(
                index, tracer, output, proof, _data_inputs(index, expr.nodes), prover
            )
        except NotRope as why:
            reason, assumptions = str(why), []
        if reason:
            if anchor not in covered:
                notes = "; ".join(f"{t}: {n}" for t, n in sorted(tracer.notes.items()))
                skipped.append(Skip(output, reason + (f" (inputs not followed: {notes})" if notes else "")))
            covered |= expr.nodes
            continue
        widths = {name: tracer.width(name) for name in (proof.x, proof.cos, proof.sin)}
        if proof.x_offset or widths[proof.x] != proof.head_dim:
            window = tracer.find_window(proof.x, proof.x_offset, proof.head_dim)
            if window is not None:  # an existing tensor holds exactly the rotated window of x
                proof = replace(proof, x=window, x_offset=0)
                widths[window] = proof.head_dim
        proven.append(ProvenSite(anchor, output, proof, expr.nodes | {anchor}, tuple(assumptions), widths))
        claimed |= expr.nodes
        covered |= expr.nodes
    proven.reverse()
    skipped.reverse()
    return proven, skipped


def fuse_model(model: ModelProto, domain: str = "", name: str = "") -> FuseResult:
    """Fuse every RoPE site of ``model`` in place.

    ``domain`` "" writes the ATC form (default domain, docs/op-contract.md); any other name writes the nodes
    in that domain with the reference functions embedded, runnable by ONNX Runtime as it is.
    """
    index = GraphIndex(model)
    proven, skipped = find_sites(model, index)
    removed = apply_sites(model, index, proven, domain) if proven else []
    sites = []
    fused_nodes = {n.output[0]: n.name for n in model.graph.node if n.op_type == "RoPECustomer"}
    for site, count in zip(proven, removed, strict=True):
        p = site.proof
        sites.append(
            Site(
                site.output,
                p.x,
                p.cos,
                p.sin,
                p.interleaved,
                p.rotary_dim,
                p.head_dim,
                DTYPE_NAMES[index.elem_type(p.x)],
                count,
                fused_nodes.get(site.output, ""),
                site.assumes,
            )
        )
    if domain and proven:  # only the pass's own nodes: RoPECustomer nodes already there stay
        outputs = {site.output for site in proven}
        ours = [n for n in model.graph.node if n.op_type == "RoPECustomer" and n.output[0] in outputs]
        embed_reference(model, domain, {p.x: index.elem_type(p.x) for p in (s.proof for s in proven)}, ours)
    return FuseResult(name, sites, skipped)
