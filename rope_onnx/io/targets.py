"""Where a command may write: checked before any work is done.

Every path a command writes — ``-o``, ``--report``, the ``.om`` and log paths handed to ATC — is
held against every input model and every data file of every input model (also under another
name: a hard link or symlink), and must be either absent or a regular file.  An existing FIFO,
device, socket or symlink is refused: replacing it by a regular file (``os.replace``) would, run
as root, swap ``/dev/stdout`` or ``/dev/null`` for a file, or write through a symlink to wherever
it points.  ``-`` means stdout for reports and is refused for models.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rope_onnx.errors import InputError

#: The report path that means "print the JSON on stdout".
STDOUT = "-"

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


def _same(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_target(output: str | os.PathLike[str], protected: Iterable[Path], what: str = "output") -> Path:
    """``output`` as a Path, or an :class:`InputError` saying why nothing may be written there."""
    if str(output) == STDOUT:
        raise InputError(f"{what} '-': a model cannot be written to stdout; give a file name")
    out = Path(output)
    try:
        mode = out.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{out}: cannot inspect the {what} path ({exc.strerror or exc})") from exc
    for number, item in enumerate(protected):  # the first is the command's own input model
        if _same(out, item):
            if item.suffix in (".onnx", ".toml") or number == 0:  # a model or a profile
                raise InputError(
                    f"{out}: {what} equals the input '{item.name}'; inputs are never modified, "
                    "choose another path"
                )
            raise InputError(
                f"{out}: is an input's external data file '{item.name}'; writing there would destroy "
                f"the weights, choose another {what} path"
            )
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"{out}: is a directory; give a file name for the {what}")
    if mode is not None and not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
        raise InputError(
            f"{out}: is {kind}, not a regular file; refusing to replace it — choose another {what} path"
        )
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} folder does not exist; create it first")
    try:  # os.access says yes to root even where writes fail (read-only mounts, sysfs): try it
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise InputError(
            f"{folder}: {what} folder is not writable ({exc.strerror or exc}); choose another folder"
        ) from exc
    return out
