"""Atomic writes and output-path checks: a failed or interrupted run leaves nothing behind.

Outputs go to a temporary file in the destination folder and are renamed into place
(``os.replace``), so ``out`` is either whole or untouched; the input and its data files are
never a valid output path.
"""

from __future__ import annotations

import contextlib
import os
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


#: Tries at a fresh name before giving up (mkstemp's own figure): names are 16 random hex digits
#: (``os.urandom``, what ``secrets.token_hex`` reads, without importing ``secrets``' hmac and hashlib).
_NAME_TRIES = 100
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _random_suffix() -> str:
    """16 random hex digits for a temporary name."""
    return os.urandom(8).hex()


@contextlib.contextmanager
def temporary_beside(target: Path) -> Iterator[tuple[int, str]]:
    """A temporary file in ``target``'s folder, as ``(fd, path)``: removed if the block fails or is
    interrupted.

    The path is chosen *before* the file exists, so a Ctrl-C or SIGTERM can never land between the
    file's creation and the moment its path is known (with ``tempfile.mkstemp`` it could: its
    Python code runs after ``os.open``, and with other threads alive — numpy's BLAS pool — a
    process signal is taken by one of them, so holding it in this thread's mask did not help).
    ``O_EXCL`` makes the file ours: a name another file already has is given up, never removed.
    """
    tmp: str | None = None
    try:
        for _ in range(_NAME_TRIES):
            candidate = str(target.parent / f".{target.name}.{_random_suffix()}.tmp")
            try:
                tmp = candidate  # from here on the name is cleaned up, whatever interrupts
                fd = os.open(candidate, _CREATE, 0o600)
                break
            except FileExistsError:
                tmp = None  # someone else's file: never ours to remove
        else:
            raise FileExistsError(f"no free temporary name in {target.parent}")
        yield fd, tmp
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


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
