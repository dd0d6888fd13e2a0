"""The candidate loop's fast paths against the plain scans they replace, on every committed export.

``candidates._in_reach`` finds the nodes whose first output is in a Mul's reach from the reach map's
tensors instead of reading every node; ``site_checks.data_inputs`` tells a site's inner tensors by
their producer instead of collecting every node's outputs.  Both must give exactly what the plain
scans give, or a candidate would be missed or a site would read different inputs.
"""

from __future__ import annotations

import json
import random

import onnx
import pytest
from conftest import FIXTURES

from rope_onnx.fusion import candidates
from rope_onnx.fusion.ops.registry import reads_values
from rope_onnx.fusion.reach import cone_facts
from rope_onnx.fusion.site_checks import data_inputs
from rope_onnx.graph.index import GraphIndex

FILES = sorted(e["file"] for e in json.loads((FIXTURES / "manifest.json").read_text()) if e.get("file"))


def _plain_scan(index: GraphIndex, reach: dict[str, int]) -> list[tuple[int, str]]:
    """The loop as it was: every node from the graph's end, its first output tested against reach."""
    firsts = ((i, index.nodes[i].output[0]) for i in range(len(index.nodes) - 1, -1, -1))
    return [(i, name) for i, name in firsts if name in reach]


def _plain_data_inputs(index: GraphIndex, nodes: frozenset[int]) -> set[str]:
    """data_inputs as it was: every output of the site collected, then every value read tested."""
    produced = {o for n in nodes for o in index.nodes[n].output}
    return {
        name
        for n in nodes
        if reads_values(index.nodes[n])
        for name in index.nodes[n].input
        if name and name not in produced and index.constant(name) is None
    }


@pytest.fixture(scope="module", params=FILES)
def index(request: pytest.FixtureRequest) -> GraphIndex:
    return GraphIndex(onnx.load(str(FIXTURES / request.param), load_external_data=False))


def test_the_reach_scan_is_the_plain_scan(index: GraphIndex) -> None:
    reach, _ = cone_facts(index)
    found = candidates._in_reach(index, reach)
    assert found == _plain_scan(index, reach)
    assert found  # every export has candidates: the comparison is not of two empty lists


def test_data_inputs_of_random_node_sets_are_the_plain_scans(index: GraphIndex) -> None:
    rng = random.Random(17)
    n = len(index.nodes)
    for size in (1, 2, 5, 24, 60, n):
        for _ in range(20 if size < n else 1):
            nodes = frozenset(rng.sample(range(n), min(size, n)))
            assert data_inputs(index, nodes) == _plain_data_inputs(index, nodes)


def test_data_inputs_of_every_traced_candidate_are_the_plain_scans(
    index: GraphIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[frozenset[int]] = []

    def compared(index: GraphIndex, nodes: frozenset[int]) -> set[str]:
        seen.append(nodes)
        fast = data_inputs(index, nodes)
        assert fast == _plain_data_inputs(index, nodes)
        return fast

    monkeypatch.setattr(candidates, "data_inputs", compared)
    proven, _ = candidates.find_sites(onnx.ModelProto(), index)
    assert len(seen) >= len(proven) > 0
