"""The oracle every generated graph is judged by (property tests and the seeded sweep).

For a model with ``true`` sites that must fuse and ``mutants`` that may fuse only if exact:

1. at least ``true`` and at most ``true + mutants`` RoPECustomer nodes are written;
2. a model in which nothing fused is byte-identical to the input;
3. on ONNX Runtime CPU (RoPECustomer served by the reference function), every output of the fused
   model equals the original's: float32 within 1e-6; float16 within one float16 rounding of the
   float32 result — the fused op computes in float32 and rounds once (docs/op-contract.md) while the original
   rounds after every op, so the fused output is compared with the original graph evaluated in
   float32 (same ops, same order), allowing half an ulp: ``|fused - ref| <= 2**-11 |ref| + 2**-24``;
4. fusing is deterministic (same input, same bytes) and idempotent (fusing the output again
   changes nothing).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from conftest import run_model
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion import FuseResult, fuse_model

#: float16's unit roundoff (half an ulp at 1.0) and half its smallest subnormal step.
FP16_HALF_ULP = 2.0**-11
FP16_TINY = 2.0**-24
FP32_TOL = 1e-6


class WrongFusion(AssertionError):
    """The oracle failed: a wrong or missed fusion, or a changed graph."""


@dataclass(frozen=True)
class Outcome:
    fused: int
    skipped: int
    mutants_fused: int


def copy_of(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def as_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph computed in float32: inputs, outputs and constants widened; Casts to float16
    (an input rounded on purpose, or a result cast back) still round, then widen again."""
    out = copy_of(model)
    graph = out.graph
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            value = numpy_helper.to_array(tensor).astype(np.float32)
            graph.initializer[i].CopyFrom(numpy_helper.from_array(value, tensor.name))
    nodes = []
    for node in graph.node:  # a Cast to float16 keeps its rounding: Cast(fp16) then Cast(fp32)
        nodes.append(node)
        if node.op_type == "Cast" and node.attribute[0].i == TensorProto.FLOAT16:
            rounded = f"{node.output[0]}/float16"
            nodes.append(helper.make_node("Cast", [rounded], [node.output[0]], to=TensorProto.FLOAT))
            node.output[0] = rounded
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def _compare(name: str, got: np.ndarray, want: np.ndarray, ref: np.ndarray | None) -> None:
    if got.shape != want.shape:
        raise WrongFusion(f"output '{name}' has shape {got.shape}, the original {want.shape}")
    if np.array_equal(got, want, equal_nan=True):
        return  # bit for bit the original (e.g. an output no fused node feeds)
    if want.dtype == np.float16 and ref is not None:
        bound = FP16_HALF_ULP * np.abs(ref.astype(np.float64)) + FP16_TINY
        error = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        if np.any(error > bound):
            worst = np.unravel_index(np.argmax(error - bound), error.shape)
            raise WrongFusion(
                f"output '{name}': |fused - float32 reference| = {error[worst]:.3g} > {bound[worst]:.3g} "
                f"at {worst} (more than one float16 rounding)"
            )
        return
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bound = FP32_TOL * (1 + np.abs(want.astype(np.float64)))
    if np.any(error > bound):
        raise WrongFusion(f"output '{name}': max |fused - original| = {error.max():.3g} > 1e-6")


def run_fused(fused: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a fused model and hold each RoPECustomer node to its contract: its output has x's shape.

    On ONNX Runtime the node is served by its reference function, which broadcasts as the original
    graph did — a fused node whose table expands x (x one row, the table five) computes the
    original's five rows there, and only the kernel, whose output has x's shape, gives one.  So
    the outputs alone cannot show that wrong fusion: x and each node's output are read too.
    """
    nodes = [n for n in fused.graph.node if n.op_type == "RoPECustomer" and len(n.input) == 3]
    probe = copy_of(fused)
    listed = {o.name for o in probe.graph.output}
    for name in dict.fromkeys(t for n in nodes for t in (n.input[0], n.output[0])):
        if name not in listed:
            probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    values = run_model(probe, feeds)
    for node in nodes:
        x, y = values[node.input[0]], values[node.output[0]]
        if x.shape != y.shape:
            raise WrongFusion(
                f"RoPECustomer '{node.name}' returns {y.shape} for x {x.shape}: its tables expand x "
                "(the kernel's output has x's shape)"
            )
    return values


def check(
    model: onnx.ModelProto, feed_sets: list[dict[str, np.ndarray]], true_sites: int, mutants: int
) -> Outcome:
    """Fuse ``model`` and hold the result to the oracle; raises :class:`WrongFusion`."""
    original = model.SerializeToString()
    fused = copy_of(model)
    result: FuseResult = fuse_model(fused)
    if not true_sites <= result.fused <= true_sites + mutants:
        reasons = "; ".join(s.reason for s in result.skipped)
        raise WrongFusion(
            f"fused {result.fused} site(s), expected {true_sites}..{true_sites + mutants} ({reasons})"
        )
    if result.fused == 0 and fused.SerializeToString() != original:
        raise WrongFusion("nothing fused but the graph changed")
    if result.fused:
        reference = as_float32(model) if _has_fp16(model) else None
        for feeds in feed_sets:
            want, got = run_model(model, feeds), run_fused(fused, feeds)
            ref = None
            if reference is not None:
                ref = run_model(
                    reference,
                    {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in feeds.items()},
                )
            for name, value in want.items():
                _compare(name, got[name], value, None if ref is None else ref[name])
    again = copy_of(fused)
    if fuse_model(again).fused or again.SerializeToString() != fused.SerializeToString():
        raise WrongFusion("fusing the fused model again changed it (not idempotent)")
    twice = copy_of(model)
    fuse_model(twice)
    if twice.SerializeToString() != fused.SerializeToString():
        raise WrongFusion("fusing the same input twice gave different bytes (not deterministic)")
    return Outcome(result.fused, len(result.skipped), max(0, result.fused - true_sites))


def _has_fp16(model: onnx.ModelProto) -> bool:
    graph = model.graph
    return any(
        info.type.tensor_type.elem_type == TensorProto.FLOAT16
        for info in (*graph.input, *graph.output, *graph.value_info)
    )


def check_trust(case) -> Outcome:
    """The oracle for :func:`strategies.trust_cases`: the expected outcome, exact fusions on every
    feed set the original accepts, and a pre-existing RoPECustomer node and its function kept."""
    fused = copy_of(case.model)
    result = fuse_model(fused, case.domain)
    if case.expect == "fuse" and result.fused != 1:
        raise WrongFusion(
            f"{case.describe}: a provable site did not fuse ({[s.reason for s in result.skipped]})"
        )
    if case.expect == "refuse" and result.fused:
        raise WrongFusion(f"{case.describe}: fused a site whose facts are unknown or false")
    if any(site.assumes for site in result.sites):
        raise WrongFusion(f"{case.describe}: a fusion rests on an assumption")
    if case.user_node is not None:
        before = next(n for n in case.model.graph.node if n.name == "users_own")
        after = next(n for n in fused.graph.node if n.name == "users_own")
        if after.SerializeToString() != before.SerializeToString():
            raise WrongFusion(f"{case.describe}: the model's own RoPECustomer node was changed")
        kept = {f.SerializeToString() for f in fused.functions}
        if not all(f.SerializeToString() in kept for f in case.model.functions):
            raise WrongFusion(f"{case.describe}: a model-local function was changed")
    if result.fused:
        for feeds in case.feed_sets:
            try:
                want = run_model(case.model, feeds)
            except Exception:  # the original refuses these feeds (e.g. 4 positions against 1): skip
                continue
            got = run_fused(fused, feeds)
            for name, value in want.items():
                _compare(f"{case.describe}: {name}", got[name], value, None)
    return Outcome(result.fused, len(result.skipped), 0)


@dataclass(frozen=True)
class LieOutcome:
    """What a lie did: fusions of the lying model, the clean model's, and skip reasons it added."""

    lie: str
    fused: int
    clean_fused: int
    new_reasons: tuple[str, ...]
    #: "": ORT ran the fused model as written; "both models" / "only the fused model": ORT refused it
    #: (its inference or buffer planning trusts the lie), so it ran with the planted entries removed
    ort_refused: str


def reason_key(reason: str) -> str:
    """A skip reason with its tensor names blanked, to count reasons across graphs."""
    return re.sub(r"'[^']*'", "'…'", reason)[:110]


def check_lies(case) -> LieOutcome:
    """The oracle for :func:`lying_graphs.lying_cases`: whatever the planted lie, no crash, nothing
    assumed, a model nothing fused in unchanged, fusing idempotent, and every output of the fused
    model equal to what the graph computes.

    The reference is the clean graph (the same nodes without the lie): value_info is a claim about
    the graph, never part of what it computes.  The fused model runs on ONNX Runtime as written;
    where ORT refuses it (its own inference or buffer planning trusts the lie: "Shape mismatch
    attempting to re-use buffer"), it runs again with the planted entries removed.  The outcome
    says whether the lying original ran as written then (a model ORT ran that the pass turned into
    one ORT refuses — the lie kept on a tensor the fused node reads — is counted, never hidden).
    """
    from lying_graphs import strip

    clean = copy_of(case.clean)
    clean_result = fuse_model(clean)
    if case.expect == "refuse" and clean_result.fused:
        raise WrongFusion(f"{case.describe}: the clean site fused, its facts are unknown or false")
    original = case.model.SerializeToString()
    fused = copy_of(case.model)
    result = fuse_model(fused)
    if any(site.assumes for site in result.sites):
        raise WrongFusion(f"{case.describe}: a fusion rests on an assumption")
    if result.fused == 0 and fused.SerializeToString() != original:
        raise WrongFusion(f"{case.describe}: nothing fused but the graph changed")
    refused = ""
    if result.fused:
        reference = as_float32(case.clean) if _has_fp16(case.clean) else None
        for feeds in case.feed_sets:
            try:
                want = run_model(case.clean, feeds)
            except Exception:  # the graph itself refuses these feeds (e.g. 4 positions against 1)
                continue
            ref = None
            if reference is not None:
                wide = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in feeds.items()}
                ref = run_model(reference, wide)
            try:
                got = run_fused(fused, feeds)
            except WrongFusion:
                raise
            except Exception:
                got = run_fused(strip(fused, case.clean, case.planted), feeds)
                try:
                    run_model(case.model, feeds)
                except Exception:
                    refused = refused or "both models"
                else:
                    refused = "only the fused model"
            for name, value in want.items():
                _compare(f"{case.describe}: {name}", got[name], value, None if ref is None else ref[name])
    again = copy_of(fused)
    if fuse_model(again).fused or again.SerializeToString() != fused.SerializeToString():
        raise WrongFusion(f"{case.describe}: fusing the fused model again changed it")
    clean_reasons = Counter(reason_key(s.reason) for s in clean_result.skipped)
    new = Counter(reason_key(s.reason) for s in result.skipped) - clean_reasons
    return LieOutcome(case.lie, result.fused, clean_result.fused, tuple(sorted(new.elements())), refused)
