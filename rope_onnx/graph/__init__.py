"""rope_onnx.graph."""
