"""Run a command with live progress and keep its full output in a log file.

ATC prints progress and its error summary on stdout/stderr and can run for many minutes on a 7B
model; the user sees every line as it comes, and the same lines land in the log next to the output
so the failure can be read (and diagnosed by :mod:`.errors_map`) after the run.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path


def run_logged(argv: list[str], log_path: Path, echo: Callable[[str], None]) -> tuple[int, str]:
    """Run ``argv`` (no shell), echo each output line, write all of it to ``log_path``.

    Returns the exit status and the full output text.  On Ctrl-C the child is terminated and the
    interrupt propagates.
    """
    lines: list[str] = []
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(argv) + "\n")
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                log.write(line)
                log.flush()
                echo(line.rstrip("\n"))
            status = process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
    return status, "".join(lines)
