"""``VerifyOptions``: what a verification may be told, checked where it is made.

The command line and library callers build the same object, so an unusable value (a negative
tolerance, a dimension that is not a positive integer, ``--sites`` with real feeds) is refused
with the same :class:`~rope_onnx.errors.InputError` (exit 2) whichever way it came in; the CLI only
turns argv into these fields (:func:`rope_onnx.verify.dims.parse_dim_options` for ``--dim``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rope_onnx.errors import InputError


@dataclass
class VerifyOptions:
    """How ``verify_models`` compares two models (see ``rope-onnx verify --help`` for each field)."""

    atol: float | None = None  # None: the per-dtype default (compare.OUTPUT_/SITE_TOLERANCES)
    rtol: float | None = None
    seed: int = 0
    dims: dict[str, int] = field(default_factory=dict)  # symbol -> value (--dim NAME=VALUE)
    inputs: Path | None = None  # real feeds (.npz) for the full run
    sites: bool = False  # per-site local proof only (no weights needed)

    def __post_init__(self) -> None:
        if isinstance(self.inputs, (str, os.PathLike)):
            self.inputs = Path(self.inputs)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` for a value no verification can use; called again before each run."""
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InputError(f"--{name} {value}: a tolerance must be a number >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed {self.seed!r}: the seed must be an integer >= 0")
        for symbol, value in self.dims.items():
            if not isinstance(symbol, str) or not symbol.strip():
                raise InputError(f"--dim {symbol!r}: a dimension needs a non-empty name")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--dim {symbol}={value!r}: the value must be a positive integer")
        if self.sites and self.inputs:
            raise InputError(
                "--inputs feeds a full run; --sites proves each site on random tensors: choose one"
            )
