"""``python -m rope_onnx`` runs the command line."""

from rope_onnx.cli.app import entry

entry()
