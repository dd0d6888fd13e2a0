"""The repository's shape stays what README and pyproject.toml say it is.

README's Layout table is checked against the tree (a new sub-package or folder must be described there,
a described path must exist), modules stay small enough to read in one sitting, every sub-package says
in its docstring what it is for, the repository cites only its own docs, and pyproject.toml ships every
file the package reads at run time and depends only on what the package imports.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from rope_onnx.kernel.native import SOURCES

PACKAGE = ROOT / "rope_onnx"
MAX_MODULE_LINES = 300
#: Pointers to documents outside the repository (spelled in pieces so this file does not match itself).
OUTSIDE_REFERENCES = ("../" + "shared", "SPEC" + ".md", "SPEC" + " §")


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def _layout_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "README.md has no '## Layout' section"
    rows = []
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and line.startswith("|") and not set(cells[0]) <= set("-: "):
            rows.append((cells[0], cells[1]))
    return rows[1:]  # the header row


def _table_paths() -> list[str]:
    """The first cell of each row: the path the row describes, without backticks."""
    return [re.sub(r"`", "", path).strip() for path, _ in _layout_rows()]


def _subpackages() -> list[Path]:
    return sorted(
        p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE and "__pycache__" not in p.parts
    )


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_files():
        data = path.read_bytes()
        offenders += [f"{path.relative_to(ROOT)}: {r}" for r in OUTSIDE_REFERENCES if r.encode() in data]
    assert not offenders, "cite docs/ instead:\n" + "\n".join(offenders)


def test_every_subpackage_is_in_the_layout_table() -> None:
    paths = {p.rstrip("/") for p in _table_paths()}
    missing = [str(p.relative_to(ROOT)) for p in _subpackages() if str(p.relative_to(ROOT)) not in paths]
    assert not missing, f"README's Layout table does not describe {missing}"


def test_every_top_level_folder_is_in_the_layout_table() -> None:
    folders = {p.relative_to(ROOT).parts[0] for p in _tracked_files() if len(p.relative_to(ROOT).parts) > 1}
    described = {p.split("/")[0] for p in _table_paths()}
    missing = sorted(folders - described)
    assert not missing, f"README's Layout table does not describe the folders {missing}"


def test_every_path_the_layout_table_names_exists() -> None:
    named = [p for row in _layout_rows() for cell in row for p in re.findall(r"`([^`\s]+/[^`\s]*)`", cell)]
    assert named, "the Layout table names no path"
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"README's Layout table names paths that do not exist: {missing}"


def test_modules_stay_small() -> None:
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {too_long}"


def test_every_subpackage_says_what_it_is_for() -> None:
    """A docstring that only repeats the package's name says nothing: at least a sentence is needed."""
    vague = []
    for folder in _subpackages():
        dotted = ".".join(folder.relative_to(ROOT).parts)
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))) or ""
        words = re.sub(r"[`.:]", " ", doc.replace(dotted, "")).split()
        if len(words) < 3:
            vague.append(dotted)
    assert not vague, f"sub-packages without a module docstring saying what they are for: {vague}"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_package_data_lists_every_non_python_file() -> None:
    shipped = set(_pyproject()["tool"]["setuptools"]["package-data"]["rope_onnx"])
    needed = {
        str(p.relative_to(PACKAGE))
        for p in _tracked_files()
        if PACKAGE in p.parents and p.suffix not in (".py", ".pyc")
    }
    assert needed <= shipped, f"add to [tool.setuptools.package-data]: {sorted(needed - shipped)}"


def test_data_files_are_the_kernel_sim_sources() -> None:
    """``kernel-sim`` compiles these after ``pip install``; a missing one breaks it only when installed."""
    data_files = _pyproject()["tool"]["setuptools"]["data-files"]
    prefix = "share/rope-onnx/custom_op/"
    installed = {
        f"{folder.removeprefix(prefix)}/{Path(f).name}" for folder, files in data_files.items() for f in files
    }
    assert installed == set(SOURCES)
    for files in data_files.values():
        assert all((ROOT / f).is_file() for f in files)


def test_runtime_dependencies_are_imported() -> None:
    """A pinned runtime dependency that nothing imports only costs every user an install."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    unused = []
    for requirement in _pyproject()["project"]["dependencies"]:
        module = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].replace("-", "_")
        if not re.search(rf"^\s*(import|from) {module}\b", code, flags=re.M):
            unused.append(requirement)
    assert not unused, f"runtime dependencies nothing in rope_onnx imports: {unused}"


def test_one_version_string() -> None:
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rope_onnx.__version__"}
