"""The .avsc files in schemas/avro: layout, namespace, envelope, and evolution between versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from omium.kernel.serde import (
    DEFAULT_SCHEMAS_DIR,
    ENVELOPE_FILE,
    NAMESPACE,
    AvroSerde,
    SchemaCatalog,
    default_catalog,
)
from omium.testing.samples import example_datum

AVSC_FILES = sorted(DEFAULT_SCHEMAS_DIR.rglob("*.avsc"))

ENVELOPE = [
    ("event_id", {"type": "string", "logicalType": "uuid"}),
    ("event_type", "string"),
    ("schema_version", "int"),
    ("tenant_id", "string"),
    ("aggregate_id", "string"),
    ("aggregate_version", "long"),
    ("occurred_at", {"type": "long", "logicalType": "timestamp-micros"}),
    ("causation_id", ["null", "string"]),
    ("correlation_id", ["null", "string"]),
    ("prev_hash", "string"),
    ("hash", "string"),
    ("payload", "null"),
]

EVENT_TYPES = {
    "workflows": ["WorkflowRegistered", "WorkflowVersionPublished", "ConcurrencyLimitsSet"],
    "executions": [
        "ExecutionStarted",
        "StepScheduled",
        "StepStarted",
        "StepCompleted",
        "StepFailed",
        "CheckpointCreated",
        "CheckpointsPruned",
        "ExecutionRolledBack",
        "HumanApprovalRequested",
        "HumanApprovalEscalated",
        "HumanApprovalGranted",
        "HumanApprovalRejected",
        "ExecutionCompleted",
        "ExecutionFailed",
        "ExecutionHalted",
        "ExecutionCancelled",
        "RecoverySuggested",
        "RecoverySuggestionApproved",
        "RecoverySuggestionRejected",
    ],
    "failures": ["FailureDetected", "RecoveryPlanned"],
    "consensus": [
        "ConsensusRoundOpened",
        "VoteCast",
        "VoteRejected",
        "ConsensusReached",
        "ConsensusFailed",
    ],
    "policies": ["PolicyPublished", "PolicyViolated", "PolicyEvaluationError"],
    "traces": ["SpanRecorded"],
    "metrics": ["MetricRecorded"],
    "audit": ["CommandRecorded"],
    "commands": ["CommandIssued"],
}

CATALOG = default_catalog()
EVOLVED = [(t, v) for t in CATALOG.event_types() for v in CATALOG.versions(t)[:-1]]


def _id(path: Path) -> str:
    return str(path.relative_to(DEFAULT_SCHEMAS_DIR))


def _payload_fields(event_type: str, version: int) -> dict[str, dict[str, Any]]:
    schema = CATALOG.schema(event_type, version)
    payload = next(f["type"] for f in schema["fields"] if f["name"] == "payload")
    return {field["name"]: field for field in payload["fields"]}


@pytest.mark.parametrize("path", AVSC_FILES, ids=_id)
def test_every_schema_file_parses_as_avro_in_the_omium_namespace(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))

    fastavro.parse_schema(schema)
    assert schema["type"] == "record"
    assert schema["namespace"] == NAMESPACE
    assert schema.get("doc"), "every record says what it is"
    for field in schema["fields"]:
        assert field.get("doc"), f"{field['name']} has no doc"


@pytest.mark.parametrize("path", AVSC_FILES, ids=_id)
def test_optional_fields_are_nullable_unions_defaulting_to_null(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))

    for field in schema["fields"]:
        if isinstance(field["type"], list):
            assert field["type"][0] == "null", field["name"]
            assert "default" in field and field["default"] is None, field["name"]


def test_the_envelope_lists_every_envelope_field_in_order() -> None:
    envelope = json.loads((DEFAULT_SCHEMAS_DIR / ENVELOPE_FILE).read_text(encoding="utf-8"))

    assert envelope["name"] == "Envelope"
    assert [(f["name"], f["type"]) for f in envelope["fields"]] == ENVELOPE
    optional = {f["name"]: f.get("default", "absent") for f in envelope["fields"]}
    assert optional["causation_id"] is None and optional["correlation_id"] is None


def test_every_event_type_of_the_design_is_in_its_area() -> None:
    expected = {event_type: area for area, types in EVENT_TYPES.items() for event_type in types}

    assert {t: CATALOG.area_of(t) for t in CATALOG.event_types()} == expected
    assert CATALOG.areas() == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", CATALOG.event_types())
def test_every_composed_schema_has_every_envelope_field(event_type: str) -> None:
    for version in CATALOG.versions(event_type):
        schema = CATALOG.schema(event_type, version)
        payload = schema["fields"][-1]["type"]

        assert schema["name"] == f"{NAMESPACE}.{event_type}"
        assert [f["name"] for f in schema["fields"]] == [name for name, _ in ENVELOPE]
        assert payload["name"] == f"{NAMESPACE}.{event_type}Payload"


def test_some_event_types_have_a_second_version() -> None:
    evolved = {event_type for event_type, _ in EVOLVED}

    assert {"SpanRecorded", "StepCompleted", "RecoveryPlanned"} <= evolved
    assert "cache_hit" in _payload_fields("SpanRecorded", 2)
    assert "cost_usd" in _payload_fields("StepCompleted", 2)
    assert "statistics" in _payload_fields("RecoveryPlanned", 2)


@pytest.mark.parametrize(("event_type", "version"), EVOLVED)
def test_a_new_version_only_adds_fields_and_every_added_field_has_a_default(
    event_type: str, version: int
) -> None:
    # The hash chain re-encodes old events under their writer schema, which needs every old
    # field to survive into the reader's shape.
    old = _payload_fields(event_type, version)
    new = _payload_fields(event_type, version + 1)

    assert set(old) <= set(new), f"fields removed: {sorted(set(old) - set(new))}"
    for name in set(new) - set(old):
        assert "default" in new[name], f"{event_type} v{version + 1}.{name} has no default"


@pytest.mark.parametrize(("event_type", "version"), EVOLVED)
def test_the_latest_version_reads_every_older_version(event_type: str, version: int) -> None:
    serde = AvroSerde(CATALOG)
    writer = CATALOG.schema(event_type, version)
    event = example_datum(writer, writer["__named_schemas"])
    event |= {"event_type": event_type, "schema_version": version}

    decoded = serde.decode(serde.encode(event))

    latest = _payload_fields(event_type, CATALOG.latest_version(event_type))
    assert decoded["schema_version"] == version
    assert {k: v for k, v in decoded.items() if k != "payload"} == {
        k: v for k, v in event.items() if k != "payload"
    }
    for name, field in latest.items():
        expected = event["payload"][name] if name in event["payload"] else field["default"]
        assert decoded["payload"][name] == expected, name


def test_a_catalog_loaded_twice_has_the_same_fingerprints() -> None:
    again = SchemaCatalog.from_directory(DEFAULT_SCHEMAS_DIR)

    for event_type in CATALOG.event_types():
        for version in CATALOG.versions(event_type):
            assert again.fingerprint_of(event_type, version) == CATALOG.fingerprint_of(
                event_type, version
            )
