"""ATC profiles: one TOML file per deployment (model class × chip), read and validated strictly.

A profile holds what users otherwise get wrong on the ATC command line: the exact chip, the input
shapes of the prefill and decode graphs, the precision mode that keeps RoPECustomer in the model's
dtype, the log level, the output name and the custom op vendor.  Every key is documented in
``atc_configs/README.md``.  Unknown keys are errors (a typo must not silently drop a setting), and
each error names the file and the key.  ``--set KEY=VALUE`` overrides are applied to the TOML table
before validation (:mod:`.overrides`), so they meet the same checks; a shipped profile is found by name
(:mod:`.catalog`); inputs given by role and sizes left to the graph are bound by :mod:`.fit`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rope_onnx.atc import shapes
from rope_onnx.atc.catalog import resolve_profile
from rope_onnx.atc.fit import ROLES, InputEntry, fit
from rope_onnx.atc.options import (
    BF16_ONLY,
    IMPL_MODES,
    KEEP_DTYPE_LINE,
    KEEPS_ORIGIN,
    LOG_LEVELS,
    OLD_GEAR_WIDTH_LIMIT,
    PRECISION_MODES,
    PRECISION_MODES_V2,
    VARIANTS,
)
from rope_onnx.atc.overrides import apply_overrides, parse_set_options
from rope_onnx.atc.soc import family_of
from rope_onnx.atc.tables import Reader, section
from rope_onnx.errors import InputError

_SECTIONS = {
    "profile": {"name", "description"},
    "target": {"soc_version"},
    "precision": {"precision_mode", "precision_mode_v2", "keep_dtype", "op_select_implmode"},
    "log": {"level"},
    "output": {"name"},
    "custom_op": {"vendor", "install_path"},
}
_VARIANT_KEYS = {"description", "mode", "dims", "inputs"}
_INPUT_KEYS = {"name", "role", "shape", "repeat", "optional"}
#: Characters ATC's --input_shape / --dynamic_dims syntax splits on ("name:dims;name:dims", "1,2").
ATC_SEPARATORS = ":,;"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    mode: str
    inputs: list[shapes.InputShape]  # complete once fitted to the graph (atc.fit; plan() does it)
    entries: tuple[InputEntry, ...] = ()  # the inputs as the profile writes them

    @property
    def input_shape(self) -> str:
        return shapes.render_input_shape(self.inputs)

    @property
    def dynamic_dims(self) -> str | None:
        return shapes.render_dynamic_dims(self.inputs) if self.mode == "dynamic_dims" else None


@dataclass(frozen=True)
class Profile:
    path: Path
    name: str
    description: str
    soc_version: str
    family: str
    model: dict[str, int]
    precision_key: str  # "precision_mode" or "precision_mode_v2"
    precision_value: str
    keep_dtype: Path | None
    op_select_implmode: str | None
    log_level: str
    output_name: str
    vendor: str
    install_path: Path | None
    variants: dict[str, Variant]
    warnings: list[str] = field(default_factory=list)


def _read_model(path: Path, table: dict) -> dict[str, int]:
    model = {}
    for key, value in table.items():
        if not _IDENT.match(key):
            raise InputError(f"{path}: [model].{key}: symbol names are identifiers (letters, digits, _)")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{path}: [model].{key}: expected a positive integer, got {value!r}")
        model[key] = value
    return model


def _read_variant(path: Path, name: str, table: dict, model: dict[str, int]) -> tuple[Variant, list[str]]:
    where = f"[variants.{name}]"
    reader = Reader(path, where, table, _VARIANT_KEYS)
    mode = reader.string("mode", choices=shapes.MODES)
    raw_dims = table.get("dims", {})
    if not isinstance(raw_dims, dict):
        reader.fail("dims", "expected a table of symbol = value")
    symbols = {k: shapes.DimValue(fixed=v) for k, v in model.items()}
    for key, raw in raw_dims.items():
        if not _IDENT.match(key):
            reader.fail(f"dims.{key}", "symbol names are identifiers")
        if key in model:
            reader.fail(f"dims.{key}", f"'{key}' is already defined in [model]")
        try:
            symbols[key] = shapes.parse_dim_value(raw, mode, f"dims.{key}")
        except ValueError as exc:
            raise InputError(f"{path}: {where}.{exc}") from exc
    raw_inputs = table.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        reader.fail("inputs", "expected a non-empty array of { name, shape } tables")
    entries: list[InputEntry] = []
    for index, item in enumerate(raw_inputs):
        item_where = f"{where}.inputs[{index}]"
        if not isinstance(item, dict):
            raise InputError(f"{path}: {item_where}: expected a table {{ name = ..., shape = [...] }}")
        item_reader = Reader(path, item_where, item, _INPUT_KEYS)
        pattern = item_reader.string("name", required=False)
        role = item_reader.string("role", required=False, choices=ROLES)
        if (pattern is None) == (role is None):
            item_reader.fail("name", "give exactly one of name (the graph input) and role (matched by name)")
        bad = sorted(set(pattern or "") & set(ATC_SEPARATORS))
        if bad:  # ATC splits --input_shape on these: the name would become another input
            item_reader.fail(
                "name", f"holds {', '.join(map(repr, bad))}, which ATC's --input_shape splits on"
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not shape:
            item_reader.fail("shape", "expected a non-empty list of dimensions")
        repeat = item_reader.string("repeat", required=False)
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            item_reader.fail("optional", f"expected true or false, got {optional!r}")
        if role is not None and (repeat is not None or (optional and role in ("ids", "mask"))):
            item_reader.fail("repeat" if repeat else "optional", f"not allowed with role = '{role}'")
        if optional and pattern is not None:
            item_reader.fail("optional", "only a role entry may be optional (a name is always required)")
        if repeat is not None and repeat not in model and repeat != "num_layers":
            item_reader.fail("repeat", f"'{repeat}' is not a key of [model]")
        if pattern is not None and (repeat is None) == ("{i}" in pattern):
            item_reader.fail("name", "use '{i}' in the name exactly when 'repeat' is given")
        try:
            dims = tuple(shapes.resolve_dim(d, symbols, f"shape[{k}]") for k, d in enumerate(shape))
        except ValueError as exc:
            raise InputError(f"{path}: {item_where}.{exc}") from exc
        entries.append(InputEntry(pattern, role, dims, repeat, optional))
    seen: set[str] = set()
    for entry in entries:
        key = entry.name or f"role {entry.role}"
        if key in seen:
            raise InputError(f"{path}: {where}.inputs: input '{key}' is listed twice")
        seen.add(key)
    dims_of = [shapes.InputShape(e.name or e.role or "", e.dims) for e in entries]
    variant = Variant(name, "", mode, [], tuple(entries))
    inputs = fit(variant, None, model).variant.inputs
    warnings = []
    try:
        count = shapes.gear_count(dims_of)
    except ValueError as exc:
        raise InputError(f"{path}: {where}.dims: {exc}") from exc
    if mode == "dynamic_dims" and count == 0:
        reader.fail("mode", '"dynamic_dims" needs at least one symbol with a list of gears in dims')
    if mode == "range" and not any(d.free for i in dims_of for d in i.dims):
        reader.fail("mode", '"range" needs at least one dimension given as "lo~hi" or -1')
    width = shapes.placeholder_count(inputs + [d for d, e in zip(dims_of, entries, strict=True) if e.role])
    if mode == "dynamic_dims" and width > OLD_GEAR_WIDTH_LIMIT:
        warnings.append(
            f"{where}: {width} -1 placeholders per --dynamic_dims profile; "
            f"older CANN releases accept at most {OLD_GEAR_WIDTH_LIMIT}"
        )
    description = reader.string("description", required=False) or ""
    return Variant(name, description, mode, inputs, tuple(entries)), warnings


def load_profile(path: str | Path, overrides: Iterable[str] = ()) -> Profile:
    """Read and validate a profile (a path or a shipped profile's name), ``--set KEY=VALUE`` overrides
    applied first; InputError (exit 2) names the file and the wrong key."""
    p = resolve_profile(path)
    if not p.is_file():
        raise InputError(f"{p}: no such profile (rope-onnx atc --list-profiles shows the shipped ones)")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except RecursionError as exc:  # tomllib recurses once per nested array/table level
        raise InputError(f"{p}: nests arrays or tables too deeply to be an ATC profile") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from exc
    data = apply_overrides(data, parse_set_options(overrides), str(p))
    allowed = set(_SECTIONS) | {"model", "variants"}
    for key in data:
        if key not in allowed:
            raise InputError(f"{p}: [{key}]: unknown section (allowed: {', '.join(sorted(allowed))})")
    r: dict[str, Reader] = {}
    for name, keys in _SECTIONS.items():
        r[name] = Reader(p, f"[{name}]", section(p, data, name, required=name != "log"), keys)
    soc = r["target"].string("soc_version")
    family = family_of(soc, where=f"{p}: [target].soc_version")
    prec = r["precision"]
    given = [k for k in ("precision_mode", "precision_mode_v2") if k in prec.table]
    if len(given) != 1:
        prec.fail(
            "precision_mode",
            "set exactly one of precision_mode and precision_mode_v2 (ATC rejects both together)",
        )
    precision_key = given[0]
    choices = PRECISION_MODES if precision_key == "precision_mode" else PRECISION_MODES_V2
    precision_value = prec.string(precision_key, choices=choices)
    if precision_value in BF16_ONLY and family != "ascend910b":
        prec.fail(precision_key, f"'{precision_value}' needs bfloat16, which {soc} does not have")
    keep_dtype = None
    if (keep := prec.string("keep_dtype", required=False)) is not None:
        if precision_value in KEEPS_ORIGIN:
            prec.fail(
                "keep_dtype", f"ATC ignores --keep_dtype under {precision_key}={precision_value}; remove it"
            )
        keep_dtype = p.parent / keep
        if not keep_dtype.is_file():
            prec.fail("keep_dtype", f"file {keep_dtype} does not exist")
        if KEEP_DTYPE_LINE not in keep_dtype.read_text(encoding="utf-8").split():
            prec.fail("keep_dtype", f"{keep_dtype} must contain the line '{KEEP_DTYPE_LINE}'")
    elif precision_value not in KEEPS_ORIGIN:
        prec.fail(
            precision_key,
            f"'{precision_value}' may change RoPECustomer's dtype: use "
            "must_keep_origin_dtype / origin, or add keep_dtype = <file with "
            f"'{KEEP_DTYPE_LINE}'>",
        )
    impl = prec.string("op_select_implmode", required=False, choices=IMPL_MODES)
    output_name = r["output"].string("name")
    if not _SAFE_NAME.match(output_name):
        r["output"].fail("name", "use letters, digits, '_', '-' and '.' only (it is a file name)")
    vendor = r["custom_op"].string("vendor")
    if not _SAFE_NAME.match(vendor):
        r["custom_op"].fail("vendor", "use letters, digits, '_', '-' and '.' only (it is a folder name)")
    install = r["custom_op"].string("install_path", required=False)
    model = _read_model(p, section(p, data, "model", required=False))
    raw_variants = section(p, data, "variants")
    warnings: list[str] = []
    variants: dict[str, Variant] = {}
    for name, table in raw_variants.items():
        if name not in VARIANTS:
            raise InputError(f"{p}: [variants.{name}]: unknown variant (allowed: {', '.join(VARIANTS)})")
        if not isinstance(table, dict):
            raise InputError(f"{p}: [variants.{name}]: expected a table")
        variants[name], notes = _read_variant(p, name, table, model)
        warnings.extend(notes)
    if "prefill" not in variants:
        raise InputError(f"{p}: [variants.prefill]: missing (every profile describes the prefill graph)")
    return Profile(
        path=p,
        name=r["profile"].string("name"),
        description=r["profile"].string("description", required=False) or "",
        soc_version=soc,
        family=family,
        model=model,
        precision_key=precision_key,
        precision_value=precision_value,
        keep_dtype=keep_dtype,
        op_select_implmode=impl,
        log_level=r["log"].string("level", required=False, choices=LOG_LEVELS) or "error",
        output_name=output_name,
        vendor=vendor,
        install_path=Path(install).expanduser() if install else None,
        variants=variants,
        warnings=warnings,
    )
