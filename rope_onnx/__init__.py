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
Runtime: verification imports it when it runs.  ``rope_onnx.ir.RopeFusionPass`` runs the pass
inside an onnx_ir / onnxscript pass pipeline (the ``ir`` extra); ``rope_onnx.schemas`` holds the
JSON Schemas of the reports (docs/reports.md).
"""

__version__ = "0.1.0"

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rope_onnx.errors import CheckFailed, InputError, RopeOnnxError
    from rope_onnx.fusion import FuseResult, Site, Skip, fuse_model
    from rope_onnx.fusion.pipeline import fuse_file
    from rope_onnx.io.load import LoadedModel, load_model
    from rope_onnx.op.contract import RopeAttributes
    from rope_onnx.op.decomposition import runnable_copy
    from rope_onnx.op.reference import rope
    from rope_onnx.verify import Comparison, Tolerance, VerifyOptions, VerifyResult, verify_models

#: Where each public name lives.  Imported on first use (PEP 562): ``python -m rope_onnx`` loads
#: this package first, and a ``fuse`` run should not pay for the verifier it does not call.
_HOMES = {
    **dict.fromkeys(("CheckFailed", "InputError", "RopeOnnxError"), "rope_onnx.errors"),
    **dict.fromkeys(("FuseResult", "Site", "Skip", "fuse_model"), "rope_onnx.fusion"),
    "fuse_file": "rope_onnx.fusion.pipeline",
    **dict.fromkeys(("LoadedModel", "load_model"), "rope_onnx.io.load"),
    "RopeAttributes": "rope_onnx.op.contract",
    "runnable_copy": "rope_onnx.op.decomposition",
    "rope": "rope_onnx.op.reference",
    **dict.fromkeys(
        ("Comparison", "Tolerance", "VerifyOptions", "VerifyResult", "verify_models"), "rope_onnx.verify"
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rope_onnx' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


# The library logs (progress of long steps, details at debug level) and never prints; the command
# line routes the records (rope_onnx/cli/logs.py).  A library caller sees them once it configures
# logging, e.g. logging.basicConfig(level=logging.INFO).
logging.getLogger(__name__).addHandler(logging.NullHandler())

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
