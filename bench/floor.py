#!/usr/bin/env python3
"""The floor of a fuse: read and write the graph with onnx alone (no weights), as a process.

``python bench/floor.py IN OUT`` does ``onnx.load(IN, load_external_data=False)`` and
``onnx.save(model, OUT)``: the least any tool that edits the graph must do.  Its wall time, with the
interpreter start-up and ``import onnx`` included, is what ``rope-onnx fuse`` is compared with.
"""

import sys

import onnx


def main(argv: list[str]) -> int:
    source, output = argv
    model = onnx.load(source, load_external_data=False)
    onnx.save(model, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
