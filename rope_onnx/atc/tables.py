"""Typed access to the tables of a TOML file, with errors that name the file and the key.

The profile reader (:mod:`rope_onnx.atc.profile`) is built on these: an unknown key, a missing
required one or a value of the wrong kind is an :class:`~rope_onnx.errors.InputError` saying
exactly where, so a typo in a profile never silently drops a setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NoReturn, overload

from rope_onnx.errors import InputError


class Reader:
    """Typed access to one TOML table with errors that name the file and the key."""

    def __init__(self, path: Path, where: str, table: dict, allowed: set[str]) -> None:
        self.path, self.where, self.table = path, where, table
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def fail(self, key: str, problem: str) -> NoReturn:
        raise InputError(f"{self.path}: {self.where}.{key}: {problem}")

    @overload
    def string(self, key: str, *, required: Literal[True] = ..., choices: tuple[str, ...] = ()) -> str: ...

    @overload
    def string(self, key: str, *, required: bool, choices: tuple[str, ...] = ()) -> str | None: ...

    def string(self, key: str, *, required: bool = True, choices: tuple[str, ...] = ()) -> str | None:
        """The string at ``key``; a required one is never None (missing raises)."""
        if key not in self.table:
            if required:
                self.fail(key, "missing (required)")
            return None
        value = self.table[key]
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            self.fail(key, f"'{value}' is not one of: {', '.join(choices)}")
        return value


def section(path: Path, data: dict, key: str, *, required: bool = True) -> dict:
    value = data.get(key, {} if not required else None)
    if value is None:
        raise InputError(f"{path}: [{key}]: missing section (required)")
    if not isinstance(value, dict):
        raise InputError(f"{path}: [{key}]: expected a table")
    return value
