"""Pre-flight checks: predict ATC failures from the graph and the profile, before a long compile.

Each check reads only the graph (no weights are loaded) and returns a :class:`Check` with a
status and one sentence saying what is wrong and what to do.  Why each exists:

- ``rope_present``: an unfused model converts, but without the fused kernel (a warning).
- ``single_domain``: released ATC ONNX parsers build the lookup key of a non-built-in op with an
  empty domain from the model's only ``opset_import`` entry and fail with E16005 when there are
  more (hicann/ge ``parser/parser/onnx/onnx_parser.cc``, ``ConstructOriType`` before commit
  74f8167a4 "support empty onnx domain", 2026-07); a node in a custom domain gets the key
  ``<domain>::<version>::RoPECustomer``, which the plugin does not register (E16002).
- ``no_functions``: ATC's parser has no ONNX model-local function support; a function left by
  ``rope-onnx verify``'s reference copy would reach ATC as an unknown op.
- ``opset_covered``: the plugin registers ``ai.onnx::<v>::RoPECustomer`` for each v in
  ``contract.SUPPORTED_OPSETS`` only; any other default opset gives E16002.
- ``rope_dtype``: the 310P has no bfloat16 (docs/op-contract.md).
- ``tables_shape``: the kernel streams cos and sin with one set of broadcast strides, so both
  tables of a node must have one shape (custom_op/README.md); a static mismatch fails here instead
  of in the op's InferShape on the NPU host.
- ``profile_inputs``: ``--input_shape`` names must be graph inputs (E10016), ranks must match
  (E10049), fixed sizes must agree, and every graph input with a free size needs a shape.
- ``external_data``: ATC reads the weights; a missing data file fails late (E10041).
- ``kernel[<node>]``: one row per fused node saying which kernel it gets -- the custom
  ``ro_pe_customer`` or Huawei's built-in RotaryPositionEmbedding for a node marked ``RoPEBuiltin``
  (:mod:`rope_onnx.atc.kernel_choice`); a marked node the built-in op cannot serve fails.
- ``atc_model`` (added by :func:`rope_onnx.atc.convert.plan`): which file ATC gets -- the input, or the
  marked copy ``--kernel auto`` writes (:mod:`rope_onnx.atc.marking`).
The checks read the graph ATC gets (the marked copy under ``--kernel auto``).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from rope_onnx.atc import kernel_choice
from rope_onnx.atc.profile import Profile, Variant
from rope_onnx.atc.soc import dtypes_of
from rope_onnx.errors import InputError
from rope_onnx.graph.conventions import all_nodes, default_opset, is_default_domain
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.load import LoadedModel
from rope_onnx.op.contract import DTYPE_NAMES, OP_TYPE, SUPPORTED_OPSETS, attributes_of, is_rope_node

PASS, WARN, FAIL = "pass", "warn", "fail"


def _fused(node: onnx.NodeProto) -> bool:
    """A fused node in either form ATC gets: RoPECustomer, or RoPEBuiltin (marked by --kernel auto)."""
    return is_rope_node(node) or node.op_type == kernel_choice.BUILTIN_OP_TYPE


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | warn | fail
    message: str
    # A failure of the input itself (docs/conventions.md: missing external data is exit 2, not 1).
    input_problem: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message}


def check_rope_present(model: onnx.ModelProto) -> Check:
    ropes = [n for n in all_nodes(model.graph) if _fused(n)]
    if not ropes:
        return Check(
            "rope_present",
            WARN,
            f"the model has no {OP_TYPE} node: it was never fused, so ATC "
            "compiles the original RoPE subgraphs; run 'rope-onnx fuse' first to use the custom op",
        )
    for node in ropes:
        try:
            attributes_of(node)
        except InputError as exc:
            return Check("rope_present", FAIL, f"{exc}; the plugin would reject it (E11010)")
    return Check("rope_present", PASS, f"{len(ropes)} {OP_TYPE} node(s)")


def check_single_domain(model: onnx.ModelProto) -> Check:
    imports = [f"'{o.domain or 'ai.onnx'}'" for o in model.opset_import]
    foreign = sorted({n.domain for n in all_nodes(model.graph) if not is_default_domain(n.domain)})
    rope_foreign = sorted(
        {n.domain for n in all_nodes(model.graph) if _fused(n) and not is_default_domain(n.domain)}
    )
    if len(model.opset_import) == 1 and not foreign:
        return Check("single_domain", PASS, "all nodes in the default domain, one opset_import entry")
    if rope_foreign:
        what = (
            f"{OP_TYPE} is in domain '{rope_foreign[0]}', so ATC looks up "
            f"'{rope_foreign[0]}::<version>::{OP_TYPE}', which the plugin does not register (E16002)"
        )
    elif foreign:
        what = f"nodes use domain(s) {', '.join(repr(d) for d in foreign)}, for which ATC has no parsers"
    else:
        what = "every node is in the default domain"
    return Check(
        "single_domain",
        FAIL,
        f"E16005 predicted: the model imports {len(imports)} opsets ({', '.join(imports)}) and {what}; "
        "released ATC accepts a default-domain custom op only when opset_import has exactly one entry. "
        "Fix: re-fuse without --domain (rope-onnx fuse writes RoPECustomer in the default domain) "
        "and drop the other opset_import entries",
    )


def check_no_functions(model: onnx.ModelProto) -> Check:
    if not model.functions:
        return Check("no_functions", PASS, "no model-local functions")
    names = ", ".join(sorted(f"{f.domain}::{f.name}" for f in model.functions)[:3])
    return Check(
        "no_functions",
        FAIL,
        f"the model carries {len(model.functions)} model-local function(s) "
        f"({names}); ATC cannot parse them. This looks like a verification copy: convert the "
        "file written by 'rope-onnx fuse', not a reference copy",
    )


def check_opset_covered(model: onnx.ModelProto) -> Check:
    version = default_opset(model)
    if version in SUPPORTED_OPSETS:
        return Check(
            "opset_covered", PASS, f"default opset {version} has a plugin key ai.onnx::{version}::{OP_TYPE}"
        )
    return Check(
        "opset_covered",
        FAIL,
        f"default opset {version} has no plugin key (the plugin registers "
        f"ai.onnx::{SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}::{OP_TYPE}); ATC would fail with "
        f"E16002. Re-export with an opset in {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}",
    )


def check_rope_dtype(model: onnx.ModelProto, family: str, soc: str, index: GraphIndex | None = None) -> Check:
    ropes = [n for n in model.graph.node if _fused(n)]
    if not ropes:
        return Check("rope_dtype", PASS, "no RoPECustomer node")
    # Declared types, else graph-only inference (never a weight byte; unknown ops skipped).
    index = index or GraphIndex(model)
    elem_types = {index.elem_type(n.input[0]) for n in ropes if n.input} - {0}
    found = {DTYPE_NAMES.get(t, str(t)) for t in elem_types}
    allowed = dtypes_of(family)
    bad = sorted(found - set(allowed))
    if bad:
        return Check(
            "rope_dtype",
            FAIL,
            f"{OP_TYPE} runs in {', '.join(bad)}, which {soc} does not support "
            f"(it has {', '.join(allowed)}); export the model in float16 for this chip",
        )
    if not found:
        return Check(
            "rope_dtype", WARN, f"could not infer the dtype of the {OP_TYPE} inputs; ATC will check it"
        )
    return Check("rope_dtype", PASS, f"{OP_TYPE} dtype {', '.join(sorted(found))} supported on {soc}")


def _static_mismatch(a: list, b: list) -> bool:
    """Two shapes that cannot be equal at run time (a different rank, or two different sizes)."""
    return len(a) != len(b) or any(
        isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a, b, strict=True)
    )


def check_tables_shape(model: onnx.ModelProto, index: GraphIndex | None = None) -> Check:
    ropes = [n for n in model.graph.node if _fused(n)]
    if not ropes:
        return Check("tables_shape", PASS, "no RoPECustomer node")
    index = index or GraphIndex(model)  # graph-only shape inference; unknown ops are skipped
    unknown = []
    for node in ropes:
        cos, sin = index.dims(node.input[1]), index.dims(node.input[2])
        if cos is not None and cos == sin:
            continue
        if cos is None or sin is None or not _static_mismatch(cos, sin):
            unknown.append(node.name)
            continue
        return Check(
            "tables_shape",
            FAIL,
            f"{OP_TYPE} node '{node.name}' has cos {cos} and sin {sin}: the kernel needs both tables of "
            "one shape; expand the smaller one to the other's shape before the node",
        )
    if unknown:
        return Check(
            "tables_shape",
            WARN,
            f"could not show cos and sin have one shape for {len(unknown)} "
            f"{OP_TYPE} node(s) (symbolic dims); the op's InferShape checks it",
        )
    return Check("tables_shape", PASS, f"cos and sin have one shape in all {len(ropes)} {OP_TYPE} node(s)")


def _graph_dims(vi: onnx.ValueInfoProto) -> list[int | None] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def check_profile_inputs(
    model: onnx.ModelProto, variant: Variant, profile: Profile, fit_problems: list[str] | None = None
) -> Check:
    initializers = {i.name for i in model.graph.initializer}
    graph_inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    where = f"profile {profile.path.name} [variants.{variant.name}]"
    problems = list(fit_problems or ())  # what fitting the profile to the graph could not settle
    for spec in variant.inputs:
        if spec.name not in graph_inputs:
            problems.append(f"input '{spec.name}' is not a graph input (ATC: E10016)")
            continue
        dims = _graph_dims(graph_inputs[spec.name])
        if dims is None:
            continue
        if len(dims) != len(spec.dims):
            problems.append(
                f"'{spec.name}' has rank {len(dims)} in the graph, {len(spec.dims)} in the "
                "profile (ATC: E10049)"
            )
            continue
        for axis, (have, want) in enumerate(zip(dims, spec.dims, strict=True)):
            if have is not None and want.fixed is not None and have != want.fixed:
                problems.append(
                    f"'{spec.name}' axis {axis} is {have} in the graph, {want.fixed} in the profile"
                )
            elif have is not None and want.fixed is None:
                problems.append(
                    f"'{spec.name}' axis {axis} is fixed to {have} in the graph but dynamic in the profile"
                )
    named = {s.name for s in variant.inputs}
    for name, vi in graph_inputs.items():
        dims = _graph_dims(vi)
        if name not in named and (dims is None or None in dims):
            problems.append(f"graph input '{name}' has a free size but no shape in the profile")
    if problems:
        extra = f" (+{len(problems) - 2} more)" if len(problems) > 2 else ""
        return Check(
            "profile_inputs",
            FAIL,
            f"{where} does not fit this model: {'; '.join(problems[:2])}"
            f"{extra}. Use the profile of this model class, or fix the names in the profile",
        )
    return Check("profile_inputs", PASS, f"{len(variant.inputs)} profile inputs match the graph")


def check_external_data(loaded: LoadedModel) -> Check:
    missing = []
    for ref in loaded.external:
        target = loaded.folder / ref.location
        if not target.is_file():
            missing.append(f"'{ref.location}' (tensor '{ref.tensor}') is missing")
        elif ref.length is not None and target.stat().st_size < ref.offset + ref.length:
            missing.append(f"'{ref.location}' is shorter than the model says")
    if missing:
        return Check(
            "external_data",
            FAIL,
            f"external data {missing[0]}; ATC reads every weight (E10041): "
            "keep the data files next to the model",
            input_problem=True,
        )
    files = len({r.location for r in loaded.external})
    return Check(
        "external_data", PASS, f"{files} external data file(s) present" if files else "weights inline"
    )


def run_checks(
    loaded: LoadedModel,
    profile: Profile,
    variant: Variant,
    soc: str,
    family: str,
    fit_problems: list[str] | None = None,
    index: GraphIndex | None = None,
) -> list[Check]:
    """Every pre-flight check of ``loaded``'s graph.  ``index``: the caller's index of a graph with the
    same tensors (``atc --kernel auto`` checks the marked copy with the input's: marking renames ops
    and changes no tensor), so one shape inference serves the whole pre-flight."""
    model = loaded.model
    index = index or GraphIndex(model)  # one graph-only shape inference for the checks that need types
    return [
        check_rope_present(model),
        check_single_domain(model),
        check_no_functions(model),
        check_opset_covered(model),
        check_rope_dtype(model, family, soc, index),
        check_tables_shape(model, index),
        check_profile_inputs(model, variant, profile, fit_problems),
        check_external_data(loaded),
        *kernel_choice.check_kernels(model, family, variant, index),
    ]
