"""Sub-commands of the rope-onnx CLI, one module each."""
