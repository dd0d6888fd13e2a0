"""``VerifyOptions``: what a verification may be told, checked where it is made.

The command line and library callers build the same object, so an unusable value (a negative
tolerance, a dimension that is not a positive integer, ``--sites`` with real feeds) is refused
with the same :class:`~rope_onnx.errors.InputError` (exit 2) whichever way it came in; the CLI only
turns argv into these fields (:func:`rope_onnx.verify.dims.parse_dim_options` for ``--dim``,
:func:`rope_onnx.verify.tolerances.parse_tolerance_options` for ``--atol``/``--rtol``).

``atol``/``rtol`` are one number for every comparison or, in Polygraphy's per-output form, a mapping
tensor name → number with ``""`` for the rest.  ``save_inputs``/``save_outputs`` are folders that get
one ``<name>.npy`` per input / per output of the ORIGINAL (``save_bin``: raw ``.bin`` next to each).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rope_onnx.errors import InputError
from rope_onnx.verify.tolerances import lookup, normalise


@dataclass
class VerifyOptions:
    """How ``verify_models`` compares two models (see ``rope-onnx verify --help`` for each field)."""

    # None: the per-dtype default (compare.OUTPUT_/SITE_TOLERANCES); a mapping: per tensor, "" = the rest
    atol: float | Mapping[str, float] | None = None
    rtol: float | Mapping[str, float] | None = None
    seed: int = 0
    dims: dict[str, int] = field(default_factory=dict)  # symbol -> value (--dim NAME=VALUE)
    inputs: Path | None = None  # real feeds for the full run: .npz, a folder of .npy, Polygraphy JSON
    sites: bool = False  # per-site local proof only (no weights needed)
    save_inputs: Path | None = None  # write the feeds used, one <name>.npy per input
    save_outputs: Path | None = None  # write the original's outputs, one <name>.npy per output
    save_bin: bool = False  # also <name>.bin (raw bytes, the layout ais_bench reads)

    def __post_init__(self) -> None:
        for name in ("inputs", "save_inputs", "save_outputs"):
            if isinstance(getattr(self, name), (str, os.PathLike)):
                setattr(self, name, Path(getattr(self, name)))
        self.validate()

    def tolerance_tables(self) -> dict[str, dict[str, float]]:
        """``{"atol": {name: value}, "rtol": {...}}``, ``""`` keying the value for every other tensor."""
        return {"atol": normalise(self.atol, "atol"), "rtol": normalise(self.rtol, "rtol")}

    def tolerances_for(self, name: str) -> tuple[float | None, float | None]:
        """The user's atol and rtol for tensor ``name`` (None: the per-dtype default)."""
        tables = self.tolerance_tables()
        return lookup(tables["atol"], name), lookup(tables["rtol"], name)

    @property
    def all_defaults_overridden(self) -> bool:
        tables = self.tolerance_tables()
        return all("" in t for t in tables.values())

    def validate(self) -> None:
        """Raise :class:`InputError` for a value no verification can use; called again before each run."""
        self.tolerance_tables()  # raises for a negative, non-finite or non-number tolerance
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
        for name in ("save_inputs", "save_outputs"):
            flag = "--" + name.replace("_", "-")
            folder = getattr(self, name)
            if folder is not None and self.sites:
                raise InputError(f"{flag} saves the tensors of a full run; --sites runs none: drop one")
            if folder is not None and folder.exists() and not folder.is_dir():
                raise InputError(f"{flag} {folder}: exists and is not a folder")
        if self.save_bin and not (self.save_inputs or self.save_outputs):
            raise InputError("--bin writes .bin next to the saved .npy: add --save-inputs or --save-outputs")
        read, write = self.inputs, self.save_inputs
        if read is not None and write is not None and read.resolve() == write.resolve():
            raise InputError(f"--save-inputs {self.save_inputs} would overwrite the --inputs it reads")
