"""rope-onnx: find, prove and fuse rotary position embedding (RoPE) in ONNX models.

The library API (the command line is a thin layer over the same calls)::

    import onnx
    from rope_onnx import fuse_model, verify_models, VerifyOptions

    model = onnx.load("model.onnx", load_external_data=False)
    result = fuse_model(model)                     # rewrites ``model`` in place; result.sites, .skips
    report = verify_models("model.onnx", model)    # ONNX Runtime CPU, weights read from disk
    assert report.passed

``fuse_file`` is the whole ``rope-onnx fuse`` command (load, fuse, optionally verify, write
atomically).  Every deliberate failure is a :class:`RopeOnnxError` carrying its exit code;
:func:`rope` is the op's semantics in NumPy.  Importing this package does not import ONNX
Runtime: verification imports it when it runs.
"""

__version__ = "0.1.0"

from rope_onnx.errors import CheckFailed, InputError, RopeOnnxError
from rope_onnx.fusion import FuseResult, Site, Skip, fuse_model
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.io.load import LoadedModel, load_model
from rope_onnx.op.contract import RopeAttributes
from rope_onnx.op.decomposition import runnable_copy
from rope_onnx.op.reference import rope
from rope_onnx.verify import Comparison, Tolerance, VerifyOptions, VerifyResult, verify_models

__all__ = [
    "CheckFailed",
    "Comparison",
    "FuseResult",
    "InputError",
    "LoadedModel",
    "RopeAttributes",
    "RopeOnnxError",
    "Site",
    "Skip",
    "Tolerance",
    "VerifyOptions",
    "VerifyResult",
    "__version__",
    "fuse_file",
    "fuse_model",
    "load_model",
    "rope",
    "runnable_copy",
    "verify_models",
]
