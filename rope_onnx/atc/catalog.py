"""Where profiles are found: a path, or a shipped profile by name from any folder.

The profiles live in the repository's top-level ``atc_configs/`` folder and ship in the wheel as
``rope_onnx/profiles/`` (pyproject maps that package directory onto ``atc_configs/``), so after
``pip install`` ``--profile tiny-llama_ascend910b3`` works from any folder.  In a checkout or an
editable install the package has no ``profiles/`` folder of its own; ``atc_configs/`` next to it is
used.  A value that names an existing file, ends in ``.toml`` or contains a path separator is a path,
exactly as before.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rope_onnx.errors import InputError

_PACKAGE = Path(__file__).resolve().parents[1]  # rope_onnx/


def profile_dirs() -> list[Path]:
    """The folders holding the shipped profiles, in lookup order (only those that exist)."""
    candidates = [_PACKAGE / "profiles", _PACKAGE.parent / "atc_configs"]
    return [d for d in candidates if d.is_dir()]


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".toml") or any(sep in spec for sep in ("/", os.sep, os.altsep or "/"))


@dataclass(frozen=True)
class ShippedProfile:
    name: str
    path: Path
    soc_version: str
    description: str


def shipped_profiles() -> list[ShippedProfile]:
    """Every shipped profile, by name (the first folder wins when two hold the same name)."""
    found: dict[str, ShippedProfile] = {}
    for folder in profile_dirs():
        for path in sorted(folder.glob("*.toml")):
            if path.stem in found:
                continue
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                data = {}
            target, profile = data.get("target", {}), data.get("profile", {})
            found[path.stem] = ShippedProfile(
                path.stem,
                path,
                str(target.get("soc_version", "?")) if isinstance(target, dict) else "?",
                str(profile.get("description", "")) if isinstance(profile, dict) else "",
            )
    return list(found.values())


def resolve_profile(spec: str | os.PathLike) -> Path:
    """The profile file ``spec`` names: a path as given, or a shipped profile's name."""
    if not isinstance(spec, str):
        return Path(spec)
    path = Path(spec)
    if path.is_file() or _looks_like_path(spec):
        return path
    for folder in profile_dirs():
        candidate = folder / f"{spec}.toml"
        if candidate.is_file():
            return candidate
    names = [p.name for p in shipped_profiles()]
    close = [n for n in names if spec.lower() in n.lower() or n.lower() in spec.lower()]
    hint = f"; did you mean {', '.join(close[:3])}?" if close else ""
    raise InputError(
        f"--profile {spec}: no such file and no shipped profile of that name{hint} "
        f"(shipped: {', '.join(names) or 'none found'}; rope-onnx atc --list-profiles)"
    )


def render_list() -> str:
    """The ``--list-profiles`` table: name, chip, description, and where they were found."""
    profiles = shipped_profiles()
    if not profiles:
        return "no shipped profiles found (looked in: rope_onnx/profiles, atc_configs/)"
    width = max(len(p.name) for p in profiles)
    chip = max(len(p.soc_version) for p in profiles)
    lines = [f"{p.name.ljust(width)}  {p.soc_version.ljust(chip)}  {p.description}" for p in profiles]
    folders = ", ".join(str(d) for d in profile_dirs())
    lines.append(f"({len(profiles)} profiles in {folders}; use --profile NAME or --profile PATH.toml)")
    return "\n".join(lines)
