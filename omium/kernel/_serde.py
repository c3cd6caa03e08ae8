"""Schema-walking helpers behind :mod:`omium.kernel.serde`: validation detail and canonical form.

Everything here works on parsed fastavro schemas and plain data, and reports problems as
``(field path, message)`` pairs; the public module turns them into typed errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fastavro.validation import ValidationError, validate

NAMESPACE = "io.omium.events"

Problem = tuple[str, str]
"""A validation problem: dotted path of the field, and what is wrong with it."""


def join(path: str, name: str) -> str:
    """Append a field name to a dotted path."""
    return f"{path}.{name}" if path else name


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of a value, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


# --------------------------------------------------------------------------------------- paths


def record_paths(
    schema: Any, path: str = "", found: dict[str, str] | None = None
) -> dict[str, str]:
    """Map each record's full name in ``schema`` to its dotted path in the event (top: ``""``)."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            record_paths(branch, path, found)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record" and schema["name"] not in found:
            found[schema["name"]] = path
            for field in schema["fields"]:
                record_paths(field["type"], join(path, field["name"]), found)
        elif kind == "array":
            record_paths(schema["items"], f"{path}[]", found)
        elif kind == "map":
            record_paths(schema["values"], f"{path}{{}}", found)
    return found


# --------------------------------------------------------------------------------------- fastavro


def fastavro_problem(datum: Any, schema: Any, paths: Mapping[str, str]) -> Problem | None:
    """The first type error fastavro's validation finds, with the field named by its path."""
    try:
        validate(datum, schema, raise_errors=True, strict=True)
    except ValidationError as exc:
        return _describe(exc, paths)
    return None


def _describe(exc: ValidationError, paths: Mapping[str, str]) -> Problem:
    # fastavro reports one error per union branch tried, all for the same field.
    errors = [error for error in exc.errors if error is not None]
    if not errors:
        return "<event>", str(exc)
    first = errors[0]
    record, _, name = first.field.rpartition(".")
    prefix = paths.get(record)
    field = join(prefix, name) if prefix is not None else (first.field or "<event>")
    same_field = (error.schema for error in errors if error.field == first.field)
    expected = " or ".join(dict.fromkeys(type_name(schema) for schema in same_field))
    return field, f"expects {expected}, got {type(first.datum).__name__} {short(first.datum)}"


def type_name(schema: Any) -> str:
    """A short human name for a schema, e.g. ``long``, ``uuid``, ``one of ['a', 'b']``."""
    if isinstance(schema, list):
        return " or ".join(type_name(branch) for branch in schema)
    if isinstance(schema, str):
        return schema.removeprefix(f"{NAMESPACE}.")
    if schema["type"] == "enum":
        return f"one of {schema['symbols']}"
    if schema["type"] == "record":
        return f"record {schema['name'].removeprefix(f'{NAMESPACE}.')}"
    return str(schema.get("logicalType") or schema["type"])


# --------------------------------------------------------------------------------------- shape


def shape_problem(datum: Any, schema: Any, *, allow_unknown_keys: bool = False) -> Problem | None:
    """The first problem fastavro's validation lets through.

    fastavro ignores unknown keys (a misspelt field would vanish silently), accepts any string
    for a UUID (which its reader then fails to parse) and writes naive datetimes as UTC (they
    would not compare equal after a round trip). Missing fields without a default are reported
    here too, so the message can say so plainly.
    """
    return _shape(datum, schema, "", allow_unknown_keys)


def _shape(datum: Any, schema: Any, path: str, allow_unknown: bool) -> Problem | None:
    if isinstance(schema, list):
        if datum is None:
            return None
        problems = [_shape(datum, b, path, allow_unknown) for b in schema if b != "null"]
        return None if not problems or None in problems else problems[0]
    if not isinstance(schema, dict):
        return None
    kind = schema["type"]
    if kind == "record" and isinstance(datum, Mapping):
        return _record_shape(datum, schema, path, allow_unknown)
    if kind == "array" and isinstance(datum, list | tuple):
        items = schema["items"]
        return _first(
            _shape(item, items, f"{path}[{i}]", allow_unknown) for i, item in enumerate(datum)
        )
    if kind == "map" and isinstance(datum, Mapping):
        values = schema["values"]
        return _first(
            _shape(value, values, f"{path}[{key!r}]", allow_unknown) for key, value in datum.items()
        )
    return _logical_problem(datum, schema.get("logicalType"), path)


def _record_shape(
    datum: Mapping[str, Any], schema: dict[str, Any], path: str, allow_unknown: bool
) -> Problem | None:
    names = {field["name"] for field in schema["fields"]}
    unknown = sorted(str(key) for key in datum if key not in names)
    if unknown and not allow_unknown:
        return join(path, unknown[0]), "is not in the schema"
    for field in schema["fields"]:
        name, field_path = field["name"], join(path, field["name"])
        if name not in datum:
            if "default" not in field:
                return field_path, "is missing (it has no default)"
            continue
        problem = _shape(datum[name], field["type"], field_path, allow_unknown)
        if problem is not None:
            return problem
    return None


def _logical_problem(datum: Any, logical_type: str | None, path: str) -> Problem | None:
    if logical_type == "uuid" and isinstance(datum, str) and not _is_canonical_uuid(datum):
        return path, f"must be a UUID in canonical lowercase form, got {short(datum)}"
    is_timestamp = bool(logical_type) and str(logical_type).startswith("timestamp")
    if is_timestamp and isinstance(datum, datetime) and datum.utcoffset() is None:
        return path, f"must be a timezone-aware datetime, got naive {datum.isoformat()}"
    return None


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _first(problems: Iterable[Problem | None]) -> Problem | None:
    return next((problem for problem in problems if problem is not None), None)


# --------------------------------------------------------------------------------------- canonical


def canonical(datum: Any, schema: Any, named: Mapping[str, Any]) -> Any:
    """A copy of ``datum`` with every Avro map's entries sorted by key.

    Avro writes map entries in iteration order, so two equal events can encode differently once a
    store (JSONB, for one) has reordered a map; sorting makes the encoding a function of the
    content. Records keep only their schema's fields, as the Avro writer would.
    """
    if isinstance(schema, str):
        target = named.get(schema)
        return datum if target is None else canonical(datum, target, named)
    if isinstance(schema, list):
        return _canonical_union(datum, schema, named)
    kind = schema["type"]
    if kind == "record" and isinstance(datum, Mapping):
        fields = (f for f in schema["fields"] if f["name"] in datum)
        return {f["name"]: canonical(datum[f["name"]], f["type"], named) for f in fields}
    if kind == "map" and isinstance(datum, Mapping):
        values = schema["values"]
        return {key: canonical(datum[key], values, named) for key in sorted(datum)}
    if kind == "array" and isinstance(datum, list | tuple):
        return [canonical(item, schema["items"], named) for item in datum]
    return datum


def _canonical_union(datum: Any, schema: list[Any], named: Mapping[str, Any]) -> Any:
    branches = [branch for branch in schema if branch != "null"]
    # Omium's unions are ["null", T]; a wider union is written as given.
    if datum is None or len(branches) != 1:
        return datum
    return canonical(datum, branches[0], named)
