"""Concrete values for a model's symbolic dimensions, consistent across all inputs.

A symbol (ONNX ``dim_param``) gets ONE value wherever it appears, so input_ids, attention_mask,
position_ids and the past key/values always fit together.  Values come, in this order, from
``--dim NAME=VALUE``, from the role the symbol plays in a recognised input (batch, sequence,
past length, total length = past + sequence), from sums such as ``"past_sequence_length + 1"`` or
``"s0 + s1"`` (the dynamo exporter writes those), and last from a small default guessed from the
symbol's name.  Small values keep a CPU run fast; they are > 1 so a broadcast bug cannot hide.
"""

from __future__ import annotations

import re

from rope_onnx.errors import InputError

BATCH, SEQUENCE, PAST = 2, 7, 5
#: Largest --dim value: verify allocates every input on this machine's CPU (2**20 positions of even
#: one fp32 head already take 64 MiB per head), and anything near int64 overflows the feeds' sizes.
MAX_DIM_VALUE = 2**20
#: Fallback for a symbol nothing tells us about.
OTHER = 3

_NAME_DEFAULTS = (
    (re.compile(r"batch"), BATCH),
    (re.compile(r"past|cache|kv"), PAST),
    (re.compile(r"total|all|mask"), PAST + SEQUENCE),
    (re.compile(r"seq|len|token|step|position"), SEQUENCE),
)
_TERM = re.compile(r"^\s*(?:(\d+)|([A-Za-z_][\w.:/]*))\s*$")


def parse_dim_options(items: list[str] | None) -> dict[str, int]:
    """``["batch=1", "seq=16"]`` → ``{"batch": 1, "seq": 16}``; a malformed item is an input error."""
    values: dict[str, int] = {}
    for item in items or []:
        name, sep, text = item.rpartition("=")
        if not sep or not name.strip() or not text.strip().isdigit() or int(text) < 1:
            raise InputError(
                f"--dim {item!r}: expected NAME=VALUE with a positive integer VALUE, e.g. batch=1"
            )
        if int(text) > MAX_DIM_VALUE:
            raise InputError(
                f"--dim {item!r}: {text.strip()} is more than {MAX_DIM_VALUE}; verify runs the models on "
                "this machine's CPU with tensors of that size — choose a small value"
            )
        values[name.strip()] = int(text)
    return values


def default_for(symbol: str) -> int:
    lowered = symbol.lower()
    for pattern, value in _NAME_DEFAULTS:
        if pattern.search(lowered):
            return value
    return OTHER


class DimValues:
    """The value chosen for every symbol; the first assignment wins (overrides come first)."""

    def __init__(self, overrides: dict[str, int] | None = None) -> None:
        self.values: dict[str, int] = dict(overrides or {})
        self.overridden = set(self.values)
        self.guessed: set[str] = set()  # values from default_for(): free to follow a constraint

    def assign(self, symbol: str, value: int) -> None:
        self.values.setdefault(symbol, value)

    def evaluate(self, symbol: str) -> int | None:
        """The value of a symbol, or of a sum of symbols and integers, if every term is known."""
        if symbol in self.values:
            return self.values[symbol]
        terms = symbol.split("+")
        if len(terms) < 2:
            return None
        total = 0
        for term in terms:
            match = _TERM.match(term)
            if not match:
                return None
            if match.group(1):
                total += int(match.group(1))
            elif match.group(2) in self.values:
                total += self.values[match.group(2)]
            else:
                return None
        return total

    def resolve(self, symbol: str) -> int:
        """Value of ``symbol``, choosing (and remembering) a default if nothing fixed it yet."""
        value = self.evaluate(symbol)
        if value is None:
            if "+" in symbol:  # a sum: give its unknown terms their defaults first
                for term in symbol.split("+"):
                    match = _TERM.match(term)
                    if match and match.group(2):
                        self.resolve(match.group(2))
                value = self.evaluate(symbol)
            if value is None:
                value = default_for(symbol)
                self.guessed.add(symbol)
        self.values[symbol] = value
        return value

    def follow(self, symbol: str, value: int) -> bool:
        """Re-value a guessed symbol because a shape constraint fixes it; False if it is not free."""
        if symbol not in self.guessed:
            return False
        self.values[symbol] = value
        self.guessed.discard(symbol)
        return True

    def unused_overrides(self, seen: set[str]) -> list[str]:
        return sorted(self.overridden - seen)
