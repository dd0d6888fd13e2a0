"""The loader parses a model file exactly as ``onnx.load`` does (same serializer, chosen by the file's
extension), and keeps the bytes of a binary one for the UTF-8 check (issue 17: re-serialising the
parsed model for that check cost as much as parsing it)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from rope_graphs import SiteSpec, build

from rope_onnx.io import load


@pytest.mark.filterwarnings("ignore:The onnxtxt format is experimental")
@pytest.mark.parametrize("suffix", [".onnx", ".pb", ".bin", ".onnxtxt", ".json", ".textproto"])
def test_every_format_onnx_reads_parses_the_same(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"model{suffix}"
    onnx.save(build(SiteSpec(head_dim=8, rotary_dim=8)), str(path))
    model, serialized = load._parse(path)
    assert model == onnx.load(str(path), load_external_data=False)
    assert serialized == (path.read_bytes() if suffix in (".onnx", ".pb", ".bin") else None)
    assert load.load_model(path).model == model


def test_the_binary_format_is_onnx_default() -> None:
    assert load._BINARY == onnx._DEFAULT_FORMAT
