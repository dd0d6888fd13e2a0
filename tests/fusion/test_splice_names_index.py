"""The rewrite's taken names from the index (node names from one parse) equal a scan of the graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from rope_onnx.fusion.splice import _Names
from rope_onnx.fusion.targets import kept_nodes
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.load import load_model

FIXTURE_PATHS = sorted(FIXTURES.glob("*.onnx"))[::3]


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.stem)
def test_taken_names_and_kept_nodes_match_a_scan(path: Path) -> None:
    loaded = load_model(path, need_external_data=False)
    handed = GraphIndex(loaded.model, names=loaded.names)
    assert _Names(loaded.model, handed).used == _Names(loaded.model, None).used
    plain = GraphIndex(loaded.model)
    assert plain.node_names is None  # without the loader's names: read node by node
    for target in ("atc", "ort"):
        assert kept_nodes(handed, target) == kept_nodes(plain, target)
