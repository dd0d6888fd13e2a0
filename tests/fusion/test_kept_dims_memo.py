"""The tracer's per-pass memo of ``kept_dims`` answers what ``kept_dims`` answers, asks it once per
tensor and dims, and asks again when the same tensor comes with other dims (a rank proven later)."""

from __future__ import annotations

import onnx
import pytest
from conftest import FIXTURES

from rope_onnx.fusion import shapes
from rope_onnx.fusion.shapes import KeptDims, kept_dims
from rope_onnx.graph.index import GraphIndex


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.onnx"))[:6], ids=lambda p: p.name)
def test_the_memo_answers_kept_dims_once_per_tensor_and_dims(
    fixture: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = GraphIndex(onnx.load(str(fixture), load_external_data=False))
    calls: list[str] = []
    real = shapes.kept_dims

    def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(shapes, "kept_dims", counted)
    memo = KeptDims(index, index.rank, lambda _: None)
    names = [o for n in index.nodes for o in n.output if o and index.dims(o) is not None]
    for name in names * 2:
        dims = index.dims(name)
        assert dims is not None
        got = memo(name, dims)
        assert got == kept_dims(index, name, list(dims), index.rank, lambda _: None)
        got.append("changed by the caller")  # a fresh list: the memo keeps its own
    assert sorted(calls) == sorted(names)  # the second round came from the memo
    if names:
        other = [f"dim:{names[0]}:{axis}" for axis in range(len(index.dims(names[0]) or []) + 1)]
        assert memo(names[0], other) == kept_dims(index, names[0], list(other), index.rank, lambda _: None)
        assert calls.count(names[0]) == 2
