"""Atomic writes and output-path checks: a failed or interrupted run leaves nothing behind.

Outputs go to a temporary file in the destination folder and are renamed into place
(``os.replace``), so ``out`` is either whole or untouched; the input and its data files are
never a valid output path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rope_onnx.errors import InputError
from rope_onnx.io.targets import check_target


def check_output_path(output: str | os.PathLike[str], source: Path, *inputs: Path) -> Path:
    """Validate where an output goes before any work is done (:func:`rope_onnx.io.targets.check_target`).

    ``source`` and ``inputs`` (e.g. :attr:`LoadedModel.files`: the model and its data files) are
    never overwritten; an existing target must be a regular file.
    """
    return check_target(output, (source, *inputs))


def write_bytes_atomically(data: bytes, out: Path) -> None:
    """Temporary file in the destination folder + rename: ``out`` is either whole or untouched.

    An OS failure (disk full, permissions, folder gone) becomes an :class:`InputError` after the
    temporary file is removed; an interrupt removes it too and propagates.
    """
    try:
        _write_atomically(data, out)
    except OSError as exc:
        raise InputError(
            f"{out}: cannot write ({exc.strerror or exc}); nothing was written, free space or "
            "choose another folder"
        ) from exc


#: Signals that stop a command; the CLI turns them into exceptions (rope_onnx.cli.signals).
_STOPPING = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def temporary_beside(target: Path) -> Iterator[tuple[int, str]]:
    """A temporary file in ``target``'s folder, as ``(fd, path)``: removed if the block fails or is
    interrupted.  The stopping signals are held while it is created, so none can land between the
    file's creation and the moment its path is known (a Ctrl-C or SIGTERM there left a ``.tmp``)."""
    can_hold = hasattr(signal, "pthread_sigmask")
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING) if can_hold else None
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a held signal is raised here, inside
            held = None
        yield fd, tmp
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _write_atomically(data: bytes, out: Path) -> None:
    with temporary_beside(out) as (fd, tmp):
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp, out)


def write_report(text: str, target: Path | TextIO) -> None:
    """A report to a file, atomically, or to a stream the caller chose (``--report -``: stdout).

    The library never picks a stream itself: a stream here is one the caller handed in.
    """
    if isinstance(target, Path):
        write_bytes_atomically(text.encode("utf-8"), target)
    else:
        target.write(text)
        target.flush()
