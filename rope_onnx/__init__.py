"""rope-onnx: find, prove and fuse rotary position embedding (RoPE) in ONNX models.

Library entry points (the CLI is a thin layer over these):

- :func:`rope_onnx.fusion.passes.fuse_model` / :func:`rope_onnx.fusion.passes.fuse_file` — the fusion pass.
- :func:`rope_onnx.op.reference.rope` — the op's semantics in NumPy.
- :func:`rope_onnx.op.decomposition.runnable_copy` — a fused model ONNX Runtime can run.
"""

__version__ = "0.1.0"
