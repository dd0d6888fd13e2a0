"""io.atomic.temporary_beside: the one way outputs get a temporary file, removed on any failure."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rope_onnx.io.atomic import temporary_beside


def _current_mask() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks here")


def test_an_interrupt_in_the_block_removes_the_file_and_restores_the_signal_mask(tmp_path: Path) -> None:
    before = _current_mask()
    with pytest.raises(KeyboardInterrupt), temporary_beside(tmp_path / "out.onnx") as (fd, tmp):
        os.close(fd)
        assert Path(tmp).parent == tmp_path and Path(tmp).exists()
        assert _current_mask() == before  # the stopping signals are held only while the file is made
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    assert _current_mask() == before


def test_a_signal_sent_while_the_file_is_made_is_raised_inside_the_block(tmp_path: Path) -> None:
    """SIGTERM arriving during mkstemp is held, then delivered where the cleanup covers it."""
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    real_mkstemp = __import__("tempfile").mkstemp

    def mkstemp_then_signal(*args: object, **kwargs: object) -> tuple[int, str]:
        made = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        os.kill(os.getpid(), signal.SIGTERM)  # held: the handler cannot run before tmp is known
        return made

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("tempfile.mkstemp", mkstemp_then_signal)
            with pytest.raises(KeyboardInterrupt), temporary_beside(tmp_path / "out.onnx"):
                pytest.fail("the held signal must be raised before the block's body runs")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]
    assert list(tmp_path.iterdir()) == []
