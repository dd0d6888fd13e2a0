"""Per-output tolerances in Polygraphy's syntax: ``--atol logits:1e-2 --atol 1e-4``.

Each value is ``[NAME:]NUMBER``; without a name it applies to every comparison no named value covers
(Polygraphy's ``polygraphy run --atol`` / ``--rtol``; names split at the LAST colon, so a tensor name
may itself contain ':').  Here a named value must name a compared tensor — a model output or a fused
site's output — because a typo that silently fell back to the default would loosen nothing and
tighten nothing while the user believes otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from rope_onnx.errors import InputError

DEFAULT_KEY = ""  # the value that applies to every tensor without its own


def parse_tolerance_options(values: Iterable[str] | None, flag: str) -> dict[str, float]:
    """``["logits:1e-2", "1e-4"]`` → ``{"logits": 0.01, "": 0.0001}``; InputError (exit 2) otherwise."""
    table: dict[str, float] = {}
    for raw in values or ():
        name, sep, number = raw.rpartition(":")
        if not sep:
            name, number = DEFAULT_KEY, raw
        elif not name:
            raise InputError(f"--{flag} {raw!r}: write NAME:VALUE or VALUE (no empty name)")
        try:
            value = float(number)
        except ValueError:
            raise InputError(
                f"--{flag} {raw!r}: {number!r} is not a number; write VALUE or NAME:VALUE "
                "(Polygraphy syntax, e.g. logits:1e-2)"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"--{flag} {raw!r}: a tolerance must be a finite number >= 0")
        if name in table and table[name] != value:
            what = f"'{name}'" if name else "the default"
            raise InputError(f"--{flag}: {what} is given twice ({table[name]:g} and {value:g})")
        table[name] = value
    return table


def normalise(value: float | Mapping[str, float] | None, flag: str) -> dict[str, float]:
    """A library value (None, one number, or a name → number mapping) as a checked table."""
    if value is None:
        return {}
    items = list(value.items()) if isinstance(value, Mapping) else [(DEFAULT_KEY, value)]
    table: dict[str, float] = {}
    for name, number in items:
        if not isinstance(name, str):
            raise InputError(f"--{flag}: tensor names are strings, got {name!r}")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not number >= 0:
            raise InputError(f"--{flag} {number}: a tolerance must be a number >= 0")
        if not math.isfinite(number):
            raise InputError(f"--{flag} {number}: a tolerance must be finite")
        table[name] = float(number)
    return table


def lookup(table: Mapping[str, float], name: str) -> float | None:
    """The tolerance for tensor ``name``: its own, else the default, else None (per-dtype default)."""
    if name in table:
        return table[name]
    return table.get(DEFAULT_KEY)


def check_names(tables: Mapping[str, Mapping[str, float]], compared: Iterable[str]) -> None:
    """Every named tolerance must name a compared tensor (InputError listing some that are)."""
    known = list(dict.fromkeys(compared))
    for flag, table in tables.items():
        unknown = sorted(n for n in table if n != DEFAULT_KEY and n not in known)
        if unknown:
            shown = ", ".join(known[:6]) + (" …" if len(known) > 6 else "")
            raise InputError(f"--{flag} {unknown[0]}:…: no compared tensor has that name (compared: {shown})")
