"""The ``rope-onnx`` command line: parse arguments, call the library, map errors to exit codes.

No logic lives here.  Each sub-command is a module in :mod:`rope_onnx.cli` with a
``register(subparsers)`` function that adds its parser and sets ``run`` to a function taking
the parsed arguments and returning an exit code; the library raises
:class:`~rope_onnx.errors.RopeOnnxError` subclasses that carry their exit code (docs/conventions.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from rope_onnx import __version__
from rope_onnx.cli.signals import Terminated, terminate_as_interrupt
from rope_onnx.errors import EXIT_BAD_INPUT, RopeOnnxError
from rope_onnx.printable import printable

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("fuse", "verify", "atc", "kernel_sim")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors kept to two lines (the error and where to get help).

    The stock message reprints the whole usage, which wraps over many lines for ``fuse``; the
    one-or-two-line rule of docs/conventions.md holds for usage errors too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nTry '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rope-onnx",
        description="Find, prove and fuse rotary position embedding in ONNX models for Ascend ATC.",
    )
    parser.add_argument("--version", action="version", version=f"rope-onnx {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rope_onnx.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():
            return int(args.run(args))
    except RopeOnnxError as error:
        if error.report:  # with --report - the JSON owns stdout: the table goes to stderr
            print(error.report, file=sys.stderr if getattr(args, "report", None) == "-" else sys.stdout)
        if args.debug:
            traceback.print_exc()
        print(f"rope-onnx {args.command}: error: {printable(str(error))}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader (e.g. `| head`) went away; the work itself is done
        sys.stderr.close()
        return 0
    except Terminated as stop:  # SIGTERM/SIGHUP: cleaned up like Ctrl-C, exit as the signal would
        print(
            f"rope-onnx {args.command}: terminated (signal {stop.signum}); no output was written",
            file=sys.stderr,
        )
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"rope-onnx {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so in one line, show the traceback only on request
        if args.debug:
            traceback.print_exc()
        print(
            f"rope-onnx {args.command}: internal error: {type(error).__name__}: {error} "
            "(rerun with --debug and report it)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
