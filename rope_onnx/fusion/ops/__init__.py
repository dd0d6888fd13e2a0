"""rope_onnx.fusion.ops."""
