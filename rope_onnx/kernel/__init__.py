"""rope_onnx.kernel."""
