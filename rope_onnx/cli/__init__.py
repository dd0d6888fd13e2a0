"""The ``rope-onnx`` command line: one module per verb, each only parsing arguments and mapping exit codes."""

from rope_onnx.cli.app import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
