"""Property tests of the fusion pass: generated sites, mutants and look-alikes meet the oracle.

CI runs a bounded number of examples (derandomized, so a CI failure reproduces locally); the
10,000-example seeded sweep is ``scripts/property_sweep.py``.  The oracle is in
:mod:`property_oracle`: true sites fused, mutants left alone or fused exactly, fused model equal
to the original on ONNX Runtime, deterministic and idempotent.
"""

from __future__ import annotations

import os

import numpy as np
import property_oracle
import pytest
from conftest import run_model
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper
from property_oracle import WrongFusion, check, copy_of
from rope_graphs import SiteSpec, build, feeds
from strategies import Lookalike, RopeCase, lookalike_feeds, lookalike_graphs, rope_cases

from rope_onnx.fusion import FuseResult, fuse_model
from rope_onnx.fusion.pipeline import fuse_file

#: Examples per property in CI (overridable for a longer local run).
EXAMPLES = int(os.environ.get("ROPE_ONNX_PROPERTY_EXAMPLES", "100"))
CI = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@CI
@given(rope_cases())
def test_generated_sites_fuse_exactly_and_mutants_do_not_fuse_wrongly(case: RopeCase) -> None:
    model = build(case.spec)
    data = [feeds(case.spec, length=1, seed=1), feeds(case.spec, batch=2, length=4, seed=2)]
    check(model, data, case.true_sites, case.mutant_sites)


@CI
@given(lookalike_graphs())
def test_random_lookalikes_are_never_fused_wrongly(case: Lookalike) -> None:
    check(case.model, [lookalike_feeds(case, 1)], true_sites=0, mutants=1)


@CI
@given(rope_cases())
def test_fuse_command_is_deterministic_and_idempotent_on_files(tmp_path_factory, case: RopeCase) -> None:
    """Through the library's file path (what the CLI calls): same input, same bytes; fuse∘fuse = fuse."""
    folder = tmp_path_factory.mktemp("files")
    source = folder / "in.onnx"
    source.write_bytes(build(case.spec).SerializeToString())
    first, second, again = folder / "a.onnx", folder / "b.onnx", folder / "c.onnx"
    fuse_file(source, first)
    fuse_file(source, second)
    assert first.read_bytes() == second.read_bytes()
    assert fuse_file(first, again).fused == 0
    assert again.read_bytes() == first.read_bytes()


def test_the_oracle_catches_a_wrong_fusion(monkeypatch) -> None:
    """Guard against an oracle that cannot fail: fuse a mutant by force and expect WrongFusion."""
    spec = SiteSpec(mutation="sub_sign")

    def force(model):
        graph = model.graph
        del graph.node[:]
        graph.node.extend(
            [
                helper.make_node("RoPECustomer", ["x", "cos", "sin"], ["rope"], interleaved=0, rotary_dim=0),
                helper.make_node("Identity", ["rope"], ["y"]),
            ]
        )
        return FuseResult("forced", sites=[None])

    monkeypatch.setattr(property_oracle, "fuse_model", force)
    with pytest.raises(WrongFusion, match="fused"):
        check(build(spec), [feeds(spec)], true_sites=0, mutants=1)


def test_site_input_declared_as_graph_output_with_unknown_dims_fuses() -> None:
    """Regression (found by the sweep, fixed on main): a declared rank-only output type hid the
    inferred static width of the site's x, and the site was silently missed."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8, mutation="scaled_x", extra_output="xr"))
    xr = next(n.output[0] for n in model.graph.node if n.op_type == "Mul")
    model.graph.output.append(helper.make_tensor_value_info(xr, TensorProto.FLOAT, [None] * 4))
    assert fuse_model(model).fused == 1


def test_a_long_chain_before_a_site_does_not_crash_the_pass() -> None:
    """Regression (found while fuzzing, fixed on main): a ~350-node chain before a site made the
    tracer recurse into Python's limit (RecursionError) before its node budget stopped it."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    depth = 380
    chain = [helper.make_node("Identity", [f"x{i}" if i else "x"], [f"x{i + 1}"]) for i in range(depth)]
    for node in model.graph.node:
        node.input[:] = [f"x{depth}" if name == "x" else name for name in node.input]
    nodes = chain + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    original = copy_of(model)
    assert fuse_model(model).fused == 1
    data = feeds(SiteSpec(head_dim=8, rotary_dim=8))
    assert np.array_equal(run_model(model, data)["y"], run_model(original, data)["y"])
