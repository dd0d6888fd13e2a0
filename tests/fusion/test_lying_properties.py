"""Property test of the lying-value_info generator (:func:`lying_graphs.lying_cases`) against its oracle.

Every kind of lie (:data:`lying_graphs.LIES`) is told three times (each example tells each, and
checks that the planted entry really disagrees with the graph), about true sites, mutants and
look-alikes: whatever a declaration says, a fused model computes what the graph computes and the
pass does not crash (:func:`property_oracle.check_lies`).  The seeded 10,000-example run is
``scripts/property_sweep.py --kinds lies``.  The last test shows the oracle is not blind: a pass
that took a declared table dim over the rows the graph computes is caught.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lying_graphs import LIES, LyingCase, lying_cases, true_types
from property_oracle import WrongFusion, check_lies
from test_trust_lies import _computed_tables_site, _feeds
from trust_graphs import D

from rope_onnx.graph.index import GraphIndex


def _told_a_lie(case: LyingCase) -> bool:
    """Whether some planted entry really disagrees with the graph (or names nothing in it)."""
    truth = true_types(case.clean)
    initializers = {t.name: t for t in case.clean.graph.initializer}
    for entry in (*case.model.graph.value_info, *case.model.graph.output):
        if entry.name not in case.planted:
            continue
        told = _declared(entry)
        known = truth.get(entry.name)
        if entry.name in initializers:
            init = initializers[entry.name]
            known = (init.data_type, list(init.dims))
        if known is None or told != known:
            return True
    return False


def _declared(entry) -> tuple:
    tensor = entry.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in tensor.shape.dim]
    return tensor.elem_type, dims if tensor.HasField("shape") else None


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_no_lie_makes_a_wrong_fusion_or_a_crash(data: st.DataObject) -> None:
    for lie in LIES:
        case = data.draw(lying_cases(lie), label=lie)
        assert case.lie == lie and case.planted and _told_a_lie(case), case.describe
        check_lies(case)


def test_the_oracle_catches_a_pass_that_trusts_a_declared_table_dim(monkeypatch) -> None:
    model, tables = _computed_tables_site(["B", 3, 1, D], "P", [1, 1, 1, D])
    clean, _ = _computed_tables_site(["B", 3, 1, D], "P", None)
    case = LyingCase(
        clean, model, "one_for_symbol", tuple(tables), (_feeds([2, 3, 1, D], 5),), "refuse", "1 row"
    )
    assert check_lies(case).fused == 0
    monkeypatch.setattr(GraphIndex, "claimed_axes", lambda self, name: frozenset())  # the old rule
    try:
        check_lies(case)
    except WrongFusion as caught:
        assert "shape" in str(caught)
    else:
        raise AssertionError("a fusion resting on the declared 1 was not caught")
