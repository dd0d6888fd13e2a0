"""rope-onnx as an ``onnx_ir`` pass, for onnxscript / onnx_ir pipelines (``pip install 'rope-onnx[ir]'``).

::

    import onnx_ir as ir
    from rope_onnx.ir import RopeFusionPass

    model = ir.load("model.onnx")                   # weights stay on disk (lazy external tensors)
    fuse = RopeFusionPass()
    result = ir.passes.PassManager([fuse])(model)  # or fuse(model)
    ir.save(result.model, "fused.onnx")
    print(fuse.result.fused, fuse.result.skipped)  # the same FuseResult as rope_onnx.fuse_model

The pass is functional (``in_place`` False: the input model is not changed) because the fusion pass
works on ``onnx.ModelProto``: the model is serialized, fused by :func:`rope_onnx.fuse_model`, and read
back; every initializer the fused model keeps is then the input's own tensor object again, so weights
are neither copied nor detached from their files.  Serializing copies in-memory weights into one
protobuf, which cannot exceed 2 GiB: load a large model with ``ir.load`` (weights stay external).

This module imports ``onnx_ir``; nothing else in rope_onnx does, so it is not a runtime dependency.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import FunctionalPass, PassResult

from rope_onnx.errors import CheckFailed
from rope_onnx.fusion import FuseResult, fuse_model


class RopeFusionPass(FunctionalPass):
    """Fuse every proven RoPE site into one ``RoPECustomer`` node (see :func:`rope_onnx.fuse_model`).

    ``domain`` as ``rope-onnx fuse --domain`` (default: the ATC form); ``expect``: raise
    :class:`~rope_onnx.errors.CheckFailed` unless exactly that many sites fuse.  After a call,
    ``self.result`` holds the :class:`~rope_onnx.FuseResult` (sites and skipped candidates).
    """

    def __init__(self, domain: str = "", *, expect: int | None = None) -> None:
        super().__init__()
        self.domain = domain
        self.expect = expect
        self.result: FuseResult | None = None

    def call(self, model: ir.Model) -> PassResult:
        proto = ir.serde.serialize_model(model)
        self.result = fuse_model(proto, self.domain, name=model.graph.name or "onnx_ir model")
        if self.expect is not None and self.result.fused != self.expect:
            raise CheckFailed(f"fused {self.result.fused} site(s), expected {self.expect}")
        fused = ir.serde.deserialize_model(proto)
        for name, value in fused.graph.initializers.items():
            before = model.graph.initializers.get(name)
            if before is not None and before.const_value is not None:
                value.const_value = before.const_value  # the input's tensor: no copy, same file
        return PassResult(fused, modified=self.result.fused > 0)


__all__ = ["RopeFusionPass"]
