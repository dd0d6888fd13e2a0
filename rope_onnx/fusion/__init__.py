"""rope_onnx.fusion."""
