"""SIGTERM and SIGHUP end a command the way Ctrl-C does: cleanup first, then exit.

Every output path (atomic writes, copies of data files) removes its temporary files in an
``except BaseException`` block; a signal whose default action kills the process skips them and
leaves ``.tmp`` files behind.  While a command runs, these signals raise :class:`Terminated`
(a ``KeyboardInterrupt``) in the main thread, so the same cleanup runs; the CLI then exits with
128 + the signal number, as a shell reports a process the signal killed.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

#: The signals a terminal, a service manager or ``timeout`` sends to stop a command.
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when a termination signal arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise :class:`Terminated`; the old handlers come back after."""
    previous = {}
    try:
        for signum in HANDLED:
            previous[signum] = signal.signal(signum, _raise)
    except ValueError:  # not the main thread (a library caller's worker): leave signals alone
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
