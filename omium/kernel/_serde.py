"""Schema-walking helpers behind :mod:`omium.kernel.serde`: validation detail and canonical form.

Everything here works on parsed fastavro schemas and plain data, and reports problems as
``(field path, message)`` pairs; the public module turns them into typed errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
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


# ------------------------------------------------------------------------------------ compiled

Check = Callable[[Any], bool]
"""A compiled check: ``True`` when a datum certainly fits (see :func:`compile_check`)."""

_INT_RANGE = {"int": 2**31, "long": 2**63}


def compile_check(schema: Any, *, allow_unknown_keys: bool = False) -> Check:
    """A check built once per schema that answers, per datum, "certainly fits".

    Validating an event walks its schema; done per event in Python (the shape rules, then
    fastavro's own validation) it was most of the relay's and the processors' time. This
    builds the walk once: a tree of closures, no paths, no error messages. It is *conservative*:
    it may answer ``False`` for a datum the full validation would accept (an ``int`` for a
    timestamp, a wider union), never ``True`` for one it would refuse; a ``False`` sends the
    caller to the full validation, which then names the problem or accepts.
    """
    named: Mapping[str, Any] = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    compiled: dict[str, Check] = {}
    return _compile(schema, named, compiled, allow_unknown_keys)


def _compile(schema: Any, named: Mapping[str, Any], done: dict[str, Check], loose: bool) -> Check:
    if isinstance(schema, str):
        return _compile_name(schema, named, done, loose)
    if isinstance(schema, list):
        return _compile_union(schema, named, done, loose)
    kind, logical = schema["type"], schema.get("logicalType")
    if kind == "record":
        return _compile_record(schema, named, done, loose)
    if kind == "array":
        item = _compile(schema["items"], named, done, loose)
        return lambda d: isinstance(d, list | tuple) and all(item(x) for x in d)
    if kind == "map":
        value = _compile(schema["values"], named, done, loose)
        return lambda d: (
            isinstance(d, dict) and all(type(k) is str and value(v) for k, v in d.items())
        )
    if kind == "enum":
        symbols = frozenset(schema["symbols"])
        return lambda d: type(d) is str and d in symbols
    if logical == "uuid":
        return lambda d: isinstance(d, uuid.UUID) or (type(d) is str and _is_canonical_uuid(d))
    if logical is not None and str(logical).startswith("timestamp"):
        return lambda d: isinstance(d, datetime) and d.utcoffset() is not None
    if logical is not None:
        return lambda d: False  # other logical types: always the full validation
    return _compile_name(kind, named, done, loose)


def _compile_name(
    name: str, named: Mapping[str, Any], done: dict[str, Check], loose: bool
) -> Check:
    primitive = _PRIMITIVES.get(name)
    if primitive is not None:
        return primitive
    if name in done:
        return lambda d: done[name](d)  # a recursive reference, bound once compiled
    target = named.get(name)
    if target is None:
        return lambda d: False
    done[name] = lambda d: False  # placeholder while the record compiles
    done[name] = _compile(target, named, done, loose)
    return done[name]


def _compile_union(
    schema: list[Any], named: Mapping[str, Any], done: dict[str, Check], loose: bool
) -> Check:
    branches = [b for b in schema if b != "null"]
    nullable = len(branches) < len(schema)
    if len(branches) != 1:
        return lambda d: False  # wider unions: the full validation decides
    branch = _compile(branches[0], named, done, loose)
    if nullable:
        return lambda d: d is None or branch(d)
    return branch


def _compile_record(
    schema: dict[str, Any], named: Mapping[str, Any], done: dict[str, Check], loose: bool
) -> Check:
    names = frozenset(f["name"] for f in schema["fields"])
    fields = [
        (f["name"], "default" in f, _compile(f["type"], named, done, loose))
        for f in schema["fields"]
    ]

    def check(datum: Any) -> bool:
        if not isinstance(datum, dict):
            return False
        if not loose and not datum.keys() <= names:
            return False
        for name, has_default, field_check in fields:
            if name in datum:
                if not field_check(datum[name]):
                    return False
            elif not has_default:
                return False
        return True

    return check


def _integer(bound: int) -> Check:
    return lambda d: type(d) is int and -bound <= d < bound


_PRIMITIVES: dict[str, Check] = {
    "null": lambda d: d is None,
    "boolean": lambda d: type(d) is bool,
    "int": _integer(_INT_RANGE["int"]),
    "long": _integer(_INT_RANGE["long"]),
    "float": lambda d: type(d) is float or type(d) is int,
    "double": lambda d: type(d) is float or type(d) is int,
    "string": lambda d: type(d) is str,
    "bytes": lambda d: type(d) is bytes,
}


def has_maps(schema: Any) -> bool:
    """Whether an Avro map occurs anywhere in a schema (else its canonical form is itself)."""
    named: Mapping[str, Any] = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    return _has_maps(schema, named, set())


def _has_maps(schema: Any, named: Mapping[str, Any], seen: set[str]) -> bool:
    if isinstance(schema, str):
        if schema in seen or schema not in named:
            return False
        seen.add(schema)
        return _has_maps(named[schema], named, seen)
    if isinstance(schema, list):
        return any(_has_maps(branch, named, seen) for branch in schema)
    kind = schema["type"]
    if kind == "map":
        return True
    if kind == "array":
        return _has_maps(schema["items"], named, seen)
    if kind == "record":
        return any(_has_maps(f["type"], named, seen) for f in schema["fields"])
    return False
