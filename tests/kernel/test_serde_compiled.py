"""The compiled schema check never lets through what the full validation refuses.

``AvroSerde.validate`` and ``canonical_body`` ask a check compiled once per schema first and run
the full validation (the shape rules, then fastavro's) only when it says no. So the compiled
check must be conservative: for every catalogued event type and version, every field of a
sample event (envelope and payload, nested ones too) is replaced by values of the wrong kind,
and whenever the compiled check accepts the result, the full validation must accept it too.
"""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from omium.kernel import _serde
from omium.kernel.events import compute_hash
from omium.kernel.serde import AvroSerde, EventSchema, SchemaValidationError, default_catalog
from omium.testing import sample_event

CATALOG = default_catalog()
WRITERS = [CATALOG.get(t, v) for t in CATALOG.event_types() for v in CATALOG.versions(t)]

ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "0F8FAD5B-D9CB-469F-A165-70867728950E",  # a UUID, but not in canonical lowercase form
    str(uuid.uuid4()),
    uuid.uuid4(),
    0,
    -(2**40),
    2**70,
    1.5,
    True,
    b"bytes",
    [],
    ["x"],
    [1],
    {},
    {"x": 1},
    {"x": "y"},
    datetime(2025, 1, 1),  # naive
    datetime(2025, 1, 1, tzinfo=UTC),
]


def full_problem(event: dict[str, Any], writer: EventSchema, *, loose: bool) -> Any:
    problem = _serde.shape_problem(event, writer.schema, allow_unknown_keys=loose)
    if problem is None and not loose:
        problem = _serde.fastavro_problem(event, writer.schema, writer.record_paths)
    return problem


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path into nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def replaced(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copied


def sample_of(writer: EventSchema) -> dict[str, Any]:
    event = sample_event(writer.event_type, tenant_id="t", schema_version=writer.version)
    event["hash"] = ""
    return event


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.label)
def test_every_sample_event_takes_the_compiled_path(writer: EventSchema) -> None:
    event = sample_of(writer)
    assert full_problem(event, writer, loose=False) is None
    assert writer.fits(event)
    assert writer.fits_ignoring_unknown_keys({**event, "unknown": 1})
    assert not writer.fits({**event, "unknown": 1})


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.label)
def test_the_compiled_check_accepts_nothing_the_full_validation_refuses(
    writer: EventSchema,
) -> None:
    event = sample_of(writer)
    tried = 0
    for path in list(paths(event)):
        for value in ODD_VALUES:
            odd = replaced(event, path, value)
            tried += 1
            if writer.fits(odd):
                assert full_problem(odd, writer, loose=False) is None, (path, value)
            if writer.fits_ignoring_unknown_keys(odd):
                assert full_problem(odd, writer, loose=True) is None, (path, value)
        # A missing field: accepted only when the schema gives it a default.
        missing = copy.deepcopy(event)
        target = missing
        for key in path[:-1]:
            target = target[key]
        if isinstance(target, dict):
            del target[path[-1]]
            if writer.fits(missing):
                assert full_problem(missing, writer, loose=False) is None, path
    assert tried > len(ODD_VALUES) * 10


def reversed_maps(value: Any) -> Any:
    """The same data with every dict's entries in reverse order (as a JSONB round trip may)."""
    if isinstance(value, dict):
        return {k: reversed_maps(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_maps(v) for v in value]
    return value


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.label)
def test_the_canonical_body_is_the_full_walks_and_ignores_map_order(writer: EventSchema) -> None:
    serde = AvroSerde(CATALOG)
    event = sample_of(writer)
    named = writer.schema.get("__named_schemas", {})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer.schema, _serde.canonical(event, writer.schema, named))
    assert serde.canonical_body(event) == buffer.getvalue()
    assert serde.canonical_body(reversed_maps(event)) == buffer.getvalue()


def test_a_refused_event_still_names_its_field() -> None:
    serde = AvroSerde(CATALOG)
    event = sample_event("StepCompleted", tenant_id="t")
    event["payload"]["step_id"] = 5
    with pytest.raises(Exception, match="step_id"):
        serde.validate(event)


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.label)
def test_seal_hashes_and_encodes_as_new_event_then_encode_do(writer: EventSchema) -> None:
    serde = AvroSerde(CATALOG)
    built = sample_event(writer.event_type, tenant_id="t", schema_version=writer.version)
    event = {**copy.deepcopy(built), "hash": "stale"}

    message = serde.seal(event)

    assert event["hash"] == built["hash"] == compute_hash(built)
    assert message == serde.encode(built)
    assert serde.decode(message)["hash"] == built["hash"]


def test_seal_refuses_an_event_that_does_not_fit_and_names_the_field() -> None:
    event = sample_event("StepCompleted", tenant_id="t")
    event["payload"]["step_id"] = 5
    with pytest.raises(SchemaValidationError, match="step_id"):
        AvroSerde(CATALOG).seal(event)
