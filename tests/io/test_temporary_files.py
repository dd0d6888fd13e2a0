"""io.atomic.temporary_beside: the one way outputs get a temporary file, removed on any failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rope_onnx.io import atomic
from rope_onnx.io.atomic import temporary_beside


def test_an_interrupt_in_the_block_removes_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), temporary_beside(tmp_path / "out.onnx") as (fd, tmp):
        os.close(fd)
        assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".out.onnx.")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_right_after_the_file_is_made_removes_it(tmp_path: Path, monkeypatch) -> None:
    """The moment mkstemp could not cover: the file exists, the caller has not been told its name."""
    real_open = os.open

    def open_then_interrupt(path: str, flags: int, mode: int = 0o777) -> int:
        os.close(real_open(path, flags, mode))
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt), temporary_beside(tmp_path / "out.onnx"):
        pytest.fail("the block must not run")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_name_another_file_holds_is_given_up_not_removed(tmp_path: Path, monkeypatch) -> None:
    names = iter(["taken", "free"])
    monkeypatch.setattr(atomic, "_random_suffix", lambda: next(names))
    (tmp_path / ".out.onnx.taken.tmp").write_bytes(b"someone else's")
    with temporary_beside(tmp_path / "out.onnx") as (fd, tmp):
        os.close(fd)
        assert Path(tmp).name == ".out.onnx.free.tmp"
    assert (tmp_path / ".out.onnx.taken.tmp").read_bytes() == b"someone else's"
