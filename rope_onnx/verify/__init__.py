"""``rope-onnx verify``: does a fused model compute what the original computes?

Modules, one job each: :mod:`.dims` (values for symbolic dims), :mod:`.feeds` (inputs from the
model's own specs, or real ones from .npz), :mod:`.runner` (ONNX Runtime CPU sessions, bfloat16
upcast), :mod:`.sites` (per-site cuts needing no weights), :mod:`.compare` (Polygraphy-style
tolerances and error statistics), :mod:`.report` (table and JSON), :mod:`.options` (``VerifyOptions``,
checked where made), :mod:`.api` (``verify_models``).
"""

from rope_onnx.verify.api import verify_models
from rope_onnx.verify.compare import OUTPUT_TOLERANCES, SITE_TOLERANCES, Comparison, Tolerance
from rope_onnx.verify.options import VerifyOptions
from rope_onnx.verify.report import VerifyResult

__all__ = [
    "OUTPUT_TOLERANCES",
    "SITE_TOLERANCES",
    "Comparison",
    "Tolerance",
    "VerifyOptions",
    "VerifyResult",
    "verify_models",
]
