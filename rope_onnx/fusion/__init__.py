"""The RoPE fusion pass: find, prove and rewrite RoPE sites (docs/op-contract.md).

``fuse_model`` works on a loaded model in memory; ``fuse_file`` is the whole ``rope-onnx fuse``
command (load, fuse, optionally verify, report, write).
"""

from rope_onnx.fusion.api import fuse_model
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.fusion.result import FuseResult, Site, Skip

__all__ = ["FuseResult", "Site", "Skip", "fuse_file", "fuse_model"]
