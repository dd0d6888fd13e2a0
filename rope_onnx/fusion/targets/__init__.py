"""Output forms of ``fuse``: ``--target atc|onnx|ort`` (docs/targets.md has the whole matrix).

* ``atc`` (default): RoPECustomer, the form ATC serves (default domain, or ``--domain NAME`` with the
  reference function embedded).  Existing ai.onnx / com.microsoft RotaryEmbedding nodes are converted into
  RoPECustomer too (ATC serves neither); existing RoPECustomer nodes are kept.
* ``onnx``: the standard ``RotaryEmbedding`` (opset 23; a lower opset is raised in place when exact).
* ``ort``: ``com.microsoft.RotaryEmbedding``, no opset change.
  For both, existing rotary ops (and RoPECustomer nodes) are kept as they are, and a site is written only
  when its half caches are proven (:mod:`rope_onnx.fusion.ops.repeats`); otherwise it is skipped
  with the reason.

The report lists converted and kept (already fused) nodes apart from skipped candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from onnx import ModelProto

from rope_onnx.errors import InputError
from rope_onnx.fusion.rewrite import ProvenSite
from rope_onnx.fusion.targets.convert import (
    ROTARY,
    RotaryNode,
    convert_rotary,
    refusal,
    rotary_nodes,
)
from rope_onnx.fusion.targets.rotary import apply_rotary, check_sites
from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.opset import raise_to_23
from rope_onnx.op.contract import CONVERTED_PREFIX, OP_TYPE

TARGETS = ("atc", "onnx", "ort")
#: Domains --domain may not name: the default one (that is the plain ATC form) and those of real ops.
RESERVED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
#: The ops that already are one RoPE op: kept (RoPECustomer) or converted (RotaryEmbedding, atc).
_ROPE_OPS = (OP_TYPE, ROTARY)


@dataclass(frozen=True)
class Converted:
    """An existing rotary op the pass rewrote into RoPECustomer (``--target atc``)."""

    node: str
    op: str  # "ai.onnx::RotaryEmbedding" or "com.microsoft::RotaryEmbedding"
    output: str
    interleaved: int
    rotary_dim: int


@dataclass(frozen=True)
class Kept:
    """A node that already computes RoPE as one op and that the pass leaves exactly as it is."""

    node: str
    op: str
    output: str


def check_options(target: str, domain: str | None) -> None:
    """One-line refusals for option combinations that cannot mean anything."""
    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got '{target}'")
    if domain is None:
        return
    if target != "atc":
        raise InputError(
            f"--domain names RoPECustomer's domain and only goes with --target atc (got {target})"
        )
    if domain in RESERVED_DOMAINS:
        raise InputError(
            f"--domain '{domain}' is reserved (default, ai.onnx, ai.onnx.ml, com.microsoft); "
            "choose a private name such as rope_onnx.cpu, or omit --domain for the ATC form"
        )


def _label(r: RotaryNode) -> str:
    return f"{r.domain}::RotaryEmbedding"


def kept_nodes(index: GraphIndex, target: str) -> tuple[list[Kept], list[RotaryNode]]:
    """(nodes kept as they are, rotary nodes to convert): atc converts rotary ops, others keep them."""
    # one scan for both lists, of the names the index holds (no protobuf read per node)
    ops = [i for i, op in enumerate(map(itemgetter(1), index.names)) if op in _ROPE_OPS]
    kept = [
        Kept(n.name, f"{n.domain or 'ai.onnx'}::{OP_TYPE}", n.output[0])
        for n in (index.nodes[i] for i in ops)
        if n.op_type == OP_TYPE
    ]
    rotary = rotary_nodes(index, ops)
    if target == "atc":
        return kept, rotary
    return kept + [Kept(r.node.name, _label(r), r.node.output[0]) for r in rotary], []


def write_sites(
    model: ModelProto, index: GraphIndex, sites: Sequence[ProvenSite], target: str
) -> tuple[list[ProvenSite], list[int], list[tuple[str, str]]]:
    """Write ``sites`` as ``target``'s rotary op.

    Returns (written sites, nodes removed per written site, (output, reason) of each refused site).
    """
    checked = check_sites(index, sites, target)
    accepted = [s for s, why in checked if not why]
    refused = [(s.output, why) for s, why in checked if why]
    if not accepted:
        return [], [], refused
    if target == "onnx":
        why = raise_to_23(model)
        if why:
            raise InputError(f"--target onnx needs opset 23: {why}")
    return accepted, apply_rotary(model, index, accepted, target), refused


def convert_existing(
    model: ModelProto, index: GraphIndex, nodes: Sequence[RotaryNode], domain: str
) -> tuple[list[Converted], list[tuple[str, str]]]:
    """Rotary ops -> RoPECustomer (atc): (converted, (output, reason) left as they are)."""
    ok, refused = [], []
    for r in nodes:
        why = refusal(index, r)
        if why:
            refused.append((r.node.output[0], why))
        else:
            ok.append(r)
    if ok:
        convert_rotary(model, index, ok, domain)
    converted = [Converted(r.node.name, _label(r), r.node.output[0], r.interleaved, r.rotary_dim) for r in ok]
    return converted, refused


def converted_elem_types(model: ModelProto, index: GraphIndex) -> dict[str, int]:
    """x element type of every converted RoPECustomer (its x may be a reshape the conversion added)."""
    made_by = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for node in model.graph.node:
        if node.op_type == OP_TYPE and node.name.startswith(CONVERTED_PREFIX):
            x = node.input[0]
            source = x if index.elem_type(x) else made_by[x].input[0]
            out[x] = index.elem_type(source)
    return out


__all__ = [
    "CONVERTED_PREFIX",
    "RESERVED_DOMAINS",
    "TARGETS",
    "Converted",
    "Kept",
    "check_options",
    "convert_existing",
    "converted_elem_types",
    "kept_nodes",
    "rotary_nodes",
    "write_sites",
]
