"""fusion.collector: the cyclic collector is off while fuse_model runs, and as it was afterwards."""

from __future__ import annotations

import gc

import pytest
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.collector import collector_paused


@collector_paused
def _state() -> bool:
    return gc.isenabled()


@collector_paused
def _fail() -> None:
    raise ValueError("boom")


def test_paused_inside_and_restored_after_return_and_error() -> None:
    assert gc.isenabled()
    assert _state() is False
    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"):
        _fail()
    assert gc.isenabled()


def test_a_caller_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    try:
        assert _state() is False
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fuse_model_runs_with_it_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    from rope_onnx.fusion import api

    seen: list[bool] = []
    real = api.find_sites

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "find_sites", spy)
    result = fuse_model(build(SiteSpec(head_dim=32, rotary_dim=32)))
    assert result.fused == 1 and seen == [False] and gc.isenabled()
