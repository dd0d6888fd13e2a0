"""rope_onnx.io."""
