"""rope_onnx.op."""
