"""A small JSON Schema (2020-12) validator for the subset rope_onnx/schemas/ uses — no new dependency.

Supported: ``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items``, ``minimum``, ``anyOf``, ``$ref`` to ``#/$defs/…``;
annotations (``title``, ``description``, ``$schema``, ``$id``, ``$comment``, ``$defs``) are ignored.  Any
other keyword is an error, so a schema can never rely on a rule this validator would silently skip.
"""

from __future__ import annotations

from typing import Any

ANNOTATIONS = {"$schema", "$id", "$comment", "$defs", "title", "description"}
RULES = {"type", "enum", "const", "properties", "required", "additionalProperties", "items", "minimum"}
RULES |= {"anyOf", "$ref"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, at: str = "$"
) -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``path: what`` lines (empty: valid)."""
    root = root if root is not None else schema
    unknown = set(schema) - ANNOTATIONS - RULES
    if unknown:
        raise ValueError(f"{at}: schema keywords this validator does not implement: {sorted(unknown)}")
    found: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"{at}: only local $ref to #/$defs/ is supported, got {ref}")
        found += errors(value, root["$defs"][ref.removeprefix("#/$defs/")], root, at)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            return [*found, f"{at}: {value!r} is not of type {' or '.join(types)}"]
    if "enum" in schema and not any(value == e and type(value) is type(e) for e in schema["enum"]):
        found.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{at}: {value!r} is not {schema['const']!r}")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        found.append(f"{at}: {value!r} is below the minimum {schema['minimum']}")
    if "anyOf" in schema and all(errors(value, s, root, at) for s in schema["anyOf"]):
        found.append(f"{at}: {value!r} matches none of anyOf")
    if isinstance(value, dict):
        found += [f"{at}: missing required key '{k}'" for k in schema.get("required", []) if k not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], root, f"{at}.{key}")
            elif extra is False:
                found.append(f"{at}: key '{key}' is not allowed")
            elif isinstance(extra, dict):
                found += errors(item, extra, root, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += errors(item, schema["items"], root, f"{at}[{i}]")
    return found
