"""The memoised channel algebra (fusion.memo) against the plain one (fusion.channels, fusion.prove).

The memo may only ever hand back what the plain functions compute: for random polynomial grids
(hypothesis), every memoised call equals the plain call, a refusal included, also when asked again
through a new array of the same polynomials (a grid move) or with equal polynomials that are other
objects.  Alike sites must really be computed once (counted), the proof's tie order must stay in the
key, whole fixtures must fuse the same with the memo off, and the memo must stay within its bound.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import channels, fuse_model, memo
from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.prove import proof_fields, prove

NONE: frozenset[int] = frozenset()
CI = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_factors = st.tuples(st.integers(0, 2), st.integers(0, 3))
_monomials = st.lists(_factors, min_size=0, max_size=2).map(lambda fs: tuple(sorted(fs)))
_polys = st.dictionaries(_monomials, st.sampled_from([1.0, -1.0, 2.0]), min_size=1, max_size=2)


@st.composite
def _grids(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    width = draw(st.integers(1, 4))
    widths = draw(st.sampled_from([(width, width), (1, width), (width, 1), (width, width + 1)]))
    a, b = (draw(st.lists(_polys, min_size=w, max_size=w)) for w in widths)
    return channels._grid(a, (len(a),)), channels._grid(b, (len(b),))


def _answer(algebra: Any, op: str, a: Expr, b: Expr, factor: float) -> Any:
    """``algebra``'s answer (the plain ``channels`` module or a memo.Algebra, the same calls): (grid as
    lists, nodes), or the refusal's reason."""
    try:
        if op == "mul":
            value = algebra.mul(a, b, frozenset({9}))
        elif op == "add":
            value = algebra.add(a, b, factor, frozenset({9}))
        else:
            value = algebra.scale(a, factor, frozenset({9}))
    except NotRope as why:
        return str(why)
    return value.grid.tolist(), value.nodes


def _plain(op: str, a: Expr, b: Expr, factor: float) -> Any:
    return _answer(channels, op, a, b, factor)


def _memoised(algebra: memo.Algebra, op: str, a: Expr, b: Expr, factor: float) -> Any:
    return _answer(algebra, op, a, b, factor)


@CI
@given(_grids())
def test_the_memo_answers_what_the_plain_algebra_computes(grids: tuple[np.ndarray, np.ndarray]) -> None:
    """Every op and constant on one memo, twice over: through the grids, new arrays of the same
    polynomials (a grid move: memo hits) and equal polynomials that are other objects."""
    algebra = memo.Algebra()
    a, b = Expr(grids[0], frozenset({1})), Expr(grids[1], frozenset({2}))
    moved = Expr(a.grid.copy(), frozenset({3})), Expr(b.grid.copy(), frozenset({4}))
    equal = tuple(Expr(channels._grid([dict(p) for p in g.flat], g.shape)) for g in grids)
    for _ in range(2):
        for operands in ((a, b), moved, equal):
            for op in ("mul", "add", "scale"):
                for factor in (1.0, -1.0, 0.5):
                    assert _memoised(algebra, op, *operands, factor) == _plain(op, *operands, factor)
    if isinstance(_plain("mul", a, b, 1.0), tuple):  # stored: the very same grid for the same polynomials
        assert algebra.mul(a, b, NONE).grid is algebra.mul(*moved, NONE).grid
    if isinstance(_plain("add", a, b, -1.0), tuple):
        assert algebra.add(a, b, -1.0, NONE).grid is algebra.add(*moved, -1.0, NONE).grid
    assert algebra.scale(a, -1.0, NONE).grid is algebra.scale(moved[0], -1.0, NONE).grid


def _symmetric() -> Expr:
    """A site that is RoPE read either way: x = leaf 0 (cos = sin = leaf 1), or x = leaf 1."""
    c0 = {((0, 0), (1, 0)): 1.0, ((0, 1), (1, 1)): -1.0}
    c1 = {((0, 1), (1, 0)): 1.0, ((0, 0), (1, 1)): 1.0}
    return Expr(channels._grid([c0, c1], (2,)))


def test_the_rank_picks_the_leaf_tried_first_as_x_and_is_part_of_the_key() -> None:
    expr = _symmetric()
    assert proof_fields(expr, (0, 1))[1][0] == 0 and proof_fields(expr, (1, 0))[1][0] == 1
    assert prove(expr, ["a", "b"]).x == "a"
    algebra = memo.Algebra()
    assert algebra.prove(expr, ["a", "b"], {"a": 0, "b": 1}).x == "a"
    assert algebra.prove(expr, ["a", "b"], {"a": 1, "b": 0}).x == "b"  # the same grid, the other order
    assert algebra.prove(expr, ["p", "q"], {"p": 1, "q": 0}).x == "q"  # names are put in after the memo


def test_a_stored_refusal_keeps_its_reason() -> None:
    grid = channels._grid([{((0, 0),): 1.0}, {((0, 1),): 1.0}], (2,))
    algebra = memo.Algebra()
    for _ in range(2):
        with pytest.raises(NotRope, match=r"^no channel is rotated$"):
            algebra.prove(Expr(grid), ["x"], {"x": 0})


def _counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the plain algebra's products and proofs: the work the memo did not answer."""
    counts = {"mul": 0, "proof": 0}
    plain_mul, plain_proof = channels.mul, memo.proof_fields

    def counted_mul(*args: Any) -> Any:
        counts["mul"] += 1
        return plain_mul(*args)

    def counted_proof(*args: Any) -> Any:
        counts["proof"] += 1
        return plain_proof(*args)

    monkeypatch.setattr(channels, "mul", counted_mul)
    monkeypatch.setattr(memo, "proof_fields", counted_proof)
    return counts


@pytest.mark.parametrize(
    "spec",
    [
        SiteSpec(sites=2),
        SiteSpec(sites=2, kv_heads=1),
        SiteSpec(sites=2, interleaved=True, split="step2"),
        SiteSpec(sites=2, rotary_dim=8, neg="mul"),
    ],
    ids=["half", "kv_heads", "interleaved", "partial_mul"],
)
def test_the_second_of_two_alike_sites_multiplies_nothing(
    spec: SiteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = _counted(monkeypatch)
    assert fuse_model(build(spec)).fused == 2
    assert counts["mul"] == 2  # the first site's x·cos and rot·sin; the second: leaf ids from 0 again, hits


@pytest.mark.parametrize(
    ("fixture", "muls"),
    [("llama_base_ts_fp32", 3), ("llama_base_dynamo_fp16", 3), ("seed_halftables_ts_fp32", 4)],
)
def test_alike_sites_are_computed_once(fixture: str, muls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four sites (q, k of two layers): the products of the first site (and of one candidate that is
    no site) and two proofs: the first site's, and the one the others share (their x is met after
    the tables the first site met, so the tie order of their leaves differs).  Without the memo:
    two products per site and four proofs."""
    counts = _counted(monkeypatch)
    assert fuse_model(onnx.load(str(FIXTURES / f"{fixture}.onnx"))).fused == 4
    assert counts == {"mul": muls, "proof": 2}


def _fused(path: str) -> tuple[bytes, str]:
    model = onnx.load(path, load_external_data=False)
    report = fuse_model(model, "", name=path)
    return model.SerializeToString(deterministic=True), json.dumps(report.to_json(), sort_keys=True)


def test_every_fixture_fuses_the_same_with_the_memo_off(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = sorted(str(p) for p in FIXTURES.glob("*.onnx"))
    assert len(paths) > 50
    with_memo = [_fused(p) for p in paths]
    monkeypatch.setattr(memo, "MEMO_CELLS", 0)  # nothing is stored: every call computes
    assert memo.Algebra().cells == 0
    assert [_fused(p) for p in paths] == with_memo


def test_the_memo_stays_within_its_bound() -> None:
    algebra = memo.Algebra(cells=64)
    x = algebra.leaf(0, 8)
    for leaf_id in range(1, 200):
        algebra.mul(x, algebra.leaf(leaf_id, 8), NONE)
        assert algebra.cells <= 64
    assert algebra.leaf(0, 8) is not x  # long since dropped (least recently used), built again
    assert algebra.leaf(199, 8) is algebra.leaf(199, 8)
    big = memo.Algebra(cells=64).leaf(0, 9)  # over an eighth of the bound: never stored
    assert big.grid.tolist() == channels.leaf(0, 9).grid.tolist()


def test_ties_are_broken_in_the_order_the_pass_met_the_tensors() -> None:
    """Leaf ids are the candidate's, but ties are broken as when they were the pass's: here the
    candidate met "later" first (its leaf 0), while the pass had met "earlier" before it."""
    algebra = memo.Algebra()
    assert algebra.prove(_symmetric(), ["later", "earlier"], {"earlier": 0, "later": 1}).x == "earlier"
    assert algebra.prove(_symmetric(), ["later", "earlier"], {"earlier": 7, "later": 3}).x == "later"
