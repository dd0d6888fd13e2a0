"""``--set KEY=VALUE`` (change one profile value) and ``--atc-arg ARG`` (pass one flag to ATC).

``--set`` edits the profile's TOML table before it is validated, so an override meets exactly the
checks a value written in the file meets (unknown key, wrong kind, a precision mode the chip lacks):
``--set model.num_layers=28``, ``--set 'variants.prefill.dims.seq=[128, 256]'``, ``--set
log.level=info``.  VALUE is read as a TOML value (numbers, arrays, quoted strings); anything that is
not valid TOML is taken as a bare string (``--set target.soc_version=Ascend910B2``).

``--atc-arg`` appends a flag to the rendered command as given (``--atc-arg=--fusion_switch_file=f.cfg``).
A flag the profile already renders is refused, with the profile key to ``--set`` instead: the command
must not carry two values for one option, and the pre-flight checks the profile's value only.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable

from rope_onnx.errors import InputError

#: Flags rendered from the profile or the command line → how to change them instead.
RENDERED_FLAGS = {
    "--framework": "it is always 5 (ONNX)",
    "--model": "it is the model argument",
    "--output": "use --output",
    "--soc_version": "use --soc or --set target.soc_version=…",
    "--input_format": "it is always ND",
    "--input_shape": "use --set variants.<variant>.dims.<symbol>=…",
    "--dynamic_dims": "use --set variants.<variant>.dims.<symbol>=[…]",
    "--precision_mode": "use --set precision.precision_mode=…",
    "--precision_mode_v2": "use --set precision.precision_mode_v2=…",
    "--keep_dtype": "use --set precision.keep_dtype=…",
    "--op_select_implmode": "use --set precision.op_select_implmode=…",
    "--log": "use --set log.level=…",
}
_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_FLAG = re.compile(r"^--[A-Za-z][A-Za-z0-9_]*(=.*)?$", re.DOTALL)


def parse_value(text: str) -> object:
    """A TOML value, or the text itself when it is not one (a bare chip name, a path)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set_options(values: Iterable[str] | None) -> list[tuple[str, object]]:
    """``["model.num_layers=28"]`` → ``[("model.num_layers", 28)]``; InputError (exit 2) otherwise."""
    parsed = []
    for raw in values or ():
        key, sep, text = raw.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise InputError(
                f"--set {raw!r}: write KEY=VALUE with a dotted profile key, e.g. model.num_layers=28"
            )
        if "." not in key:
            raise InputError(f"--set {raw!r}: name the table too, e.g. log.level or model.{key}")
        parsed.append((key, parse_value(text.strip())))
    return parsed


def apply_overrides(data: dict, overrides: Iterable[tuple[str, object]], where: str) -> dict:
    """A copy of the profile table ``data`` with each ``(dotted key, value)`` set (tables made as needed)."""
    result = copy.deepcopy(data)
    for key, value in overrides:
        parts = key.split(".")
        table = result
        for depth, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                walked = ".".join(parts[: depth + 1])
                raise InputError(f"{where}: --set {key}: '{walked}' is a value, not a table")
            table = nxt
        table[parts[-1]] = value
    return result


def check_atc_args(args: Iterable[str] | None) -> list[str]:
    """The pass-through flags, each ``--name`` or ``--name=value``, none of them a rendered one."""
    checked = []
    for arg in args or ():
        if not _FLAG.match(arg) or "\n" in arg:
            raise InputError(
                f"--atc-arg {arg!r}: pass one ATC flag as --name=value, written --atc-arg=--name=value"
            )
        flag = arg.split("=", 1)[0]
        if flag in RENDERED_FLAGS:
            raise InputError(f"--atc-arg {arg}: rope-onnx already renders {flag}; {RENDERED_FLAGS[flag]}")
        checked.append(arg)
    return checked
