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

from rope_onnx import __version__
from rope_onnx.errors import EXIT_BAD_INPUT, RopeOnnxError

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("fuse", "verify", "atc", "kernel_sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        return int(args.run(args))
    except RopeOnnxError as error:
        if error.report:
            print(error.report)
        if args.debug:
            traceback.print_exc()
        print(f"rope-onnx {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader (e.g. `| head`) went away; the work itself is done
        sys.stderr.close()
        return 0
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
