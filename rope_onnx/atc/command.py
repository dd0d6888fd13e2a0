"""Render the exact ``atc`` command for a model, a profile variant and a chip.

The argument vector is the single source of truth: ``--dry-run`` prints ``shlex.join(argv)`` and a
real run executes ``argv`` itself (no shell), so what the user sees is what runs, and paths with
spaces or shell characters are quoted safely.

Options (CANN ATC reference, "ATC instructions" parameter pages):
``--framework=5`` ONNX; ``--model``; ``--output`` (a path without ``.om``: ATC appends it);
``--soc_version``; ``--input_format=ND`` (required with ``--dynamic_dims``, right for token and KV
tensors in every mode); ``--input_shape``; ``--dynamic_dims``; ``--precision_mode`` or
``--precision_mode_v2``; ``--keep_dtype``; ``--op_select_implmode``; ``--log``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rope_onnx.atc.profile import Profile, Variant

ATC = "atc"
OM_SUFFIX = ".om"


@dataclass(frozen=True)
class AtcCommand:
    argv: list[str]
    output_stem: Path  # what --output gets; ATC writes output_stem + ".om"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)

    @property
    def om_path(self) -> Path:
        return self.output_stem.with_name(self.output_stem.name + OM_SUFFIX)

    @property
    def log_path(self) -> Path:
        return self.output_stem.with_name(self.output_stem.name + ".atc.log")


def output_stem(model: Path, profile: Profile, variant: Variant, output: str | Path | None) -> Path:
    """``--output`` value: the user's path without a trailing ``.om``, or ``<name>_<variant>`` next
    to the model."""
    if output is None:
        return model.parent / f"{profile.output_name}_{variant.name}"
    out = Path(output)
    return out.with_suffix("") if out.suffix == OM_SUFFIX else out


def build_command(
    model: Path, profile: Profile, variant: Variant, soc: str, stem: Path, extra: Sequence[str] = ()
) -> AtcCommand:
    """The argv; ``extra`` (``--atc-arg``, checked by :func:`.overrides.check_atc_args`) goes last."""
    argv = [
        ATC,
        "--framework=5",
        f"--model={model}",
        f"--output={stem}",
        f"--soc_version={soc}",
        "--input_format=ND",
        f"--input_shape={variant.input_shape}",
    ]
    if variant.dynamic_dims is not None:
        argv.append(f"--dynamic_dims={variant.dynamic_dims}")
    argv.append(f"--{profile.precision_key}={profile.precision_value}")
    if profile.keep_dtype is not None:
        argv.append(f"--keep_dtype={profile.keep_dtype}")
    if profile.op_select_implmode is not None:
        argv.append(f"--op_select_implmode={profile.op_select_implmode}")
    argv.append(f"--log={profile.log_level}")
    argv.extend(extra)
    return AtcCommand(argv, stem)
