"""The cyclic garbage collector paused while the pass runs.

The pass allocates millions of small containers (a polynomial dict per channel, tuples per dim) and
frees them without ever making a cycle.  Each of Python's full collections walks every live container
— the whole graph index by then — so their cost grows with the graph and with the number of
candidates: on a chain of 10,000 Muls, 36 full collections took a third of the fuse and found
nothing to free.  Reference counting still frees everything as it goes; only the cycle search waits.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["collector_paused"]

P = ParamSpec("P")
R = TypeVar("R")


def collector_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with the cyclic collector off, restored as it was on return or on error
    (a caller that turned it off itself keeps it off)."""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused
