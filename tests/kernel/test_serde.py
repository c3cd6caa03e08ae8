"""AvroSerde and SchemaCatalog: single-object encoding, decoding, typed errors, catalog loading."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from omium.kernel.errors import ConfigurationError, OmiumError
from omium.kernel.serde import (
    DEFAULT_SCHEMAS_DIR,
    HEADER_SIZE,
    MARKER,
    AvroSerde,
    CorruptMessageError,
    SchemaCatalog,
    SchemaFileError,
    SchemaValidationError,
    SerdeError,
    UnknownSchemaError,
    default_catalog,
)
from omium.testing.samples import sample_event

CATALOG = default_catalog()
ALL_VERSIONS = [(t, v) for t in CATALOG.event_types() for v in CATALOG.versions(t)]

# Published schema versions are frozen: editing one changes its fingerprint and strands every
# message already written with it. Add a new version instead (and a line here).
FROZEN_FINGERPRINTS = {
    ("CheckpointCreated", 1): "f9b841a16c70aa35",
    ("CheckpointsPruned", 1): "0dc1ec7b33db59cd",
    ("CommandRecorded", 1): "ac8ec41830c46ab1",
    ("CommandIssued", 1): "3b26558ac4ba283a",
    ("ConcurrencyLimitsSet", 1): "9cd4c01112876d73",
    ("ConsensusFailed", 1): "46f8619e7eff2657",
    ("ConsensusReached", 1): "3201f62eab89722c",
    ("ConsensusRoundOpened", 1): "4eee4e578240f730",
    ("ExecutionCancelled", 1): "a62a7f2931137ad8",
    ("ExecutionCompleted", 1): "96749c84e4038a3c",
    ("ExecutionFailed", 1): "d30cbdaf5a652f2c",
    ("ExecutionHalted", 1): "2ed6dc333d30afbd",
    ("ExecutionRolledBack", 1): "107022b157f30f0c",
    ("ExecutionStarted", 1): "5a18b4ae2f737fa7",
    ("ExecutionStarted", 2): "cb3abf018ecfd193",
    ("FailureDetected", 1): "973c32443e77796f",
    ("HumanApprovalGranted", 1): "1e8449027a5392d5",
    ("HumanApprovalRejected", 1): "389be4cef537f18f",
    ("HumanApprovalEscalated", 1): "60816ca8bb90f807",
    ("HumanApprovalRequested", 1): "8f2a4d08fb44bc8e",
    ("HumanApprovalRequested", 2): "9b9cd83c39c477bb",
    ("MetricRecorded", 1): "b3f79d89fdfaa9fa",
    ("PolicyEvaluationError", 1): "7314133bc4804c6c",
    ("PolicyPublished", 1): "a3e46578fdf226e6",
    ("PolicyViolated", 1): "6bc066d4f7849df3",
    ("RecoveryPlanned", 1): "56fa486c599b0438",
    ("RecoveryPlanned", 2): "5916cb42d84183bf",
    ("RecoverySuggested", 1): "f0eb5708092278f1",
    ("RecoverySuggestionApproved", 1): "226d208adfd05500",
    ("RecoverySuggestionRejected", 1): "442c289a43edf2e2",
    ("SpanRecorded", 1): "dfa30a38d53dd976",
    ("SpanRecorded", 2): "bc47a1fa7a5c1032",
    ("StepCompleted", 1): "75a905d1a525058a",
    ("StepCompleted", 2): "235fc902aad1da2c",
    ("StepFailed", 1): "b4079dacc6e1e364",
    ("StepScheduled", 1): "c9ce5c2e647f973b",
    ("StepStarted", 1): "01a1d493f82f21d8",
    ("VoteCast", 1): "0737c530c6e2e5ec",
    ("VoteRejected", 1): "748be513d6861fb0",
    ("WorkflowRegistered", 1): "f995e8f4b5eaf96f",
    ("WorkflowVersionPublished", 1): "3b912ada438734f7",
}


@pytest.fixture(scope="module")
def serde() -> AvroSerde:
    """The serde over the shipped schemas (shadows the Kafka tests' session fixture)."""
    return AvroSerde(CATALOG)


@pytest.fixture
def schemas_dir_factory(tmp_path: Path) -> Callable[[], Path]:
    """Copies the shipped schemas to a scratch folder that a test may break."""

    def build() -> Path:
        target = tmp_path / "avro"
        shutil.copytree(DEFAULT_SCHEMAS_DIR, target)
        return target

    return build


# ---- round trip


@pytest.mark.parametrize(("event_type", "version"), ALL_VERSIONS)
def test_every_event_version_round_trips(serde: AvroSerde, event_type: str, version: int) -> None:
    event = sample_event(event_type, schema_version=version)

    data = serde.encode(event)
    decoded = serde.decode(data)

    assert data[:2] == MARKER
    assert data[2:HEADER_SIZE] == CATALOG.fingerprint_of(event_type, version)
    if version == CATALOG.latest_version(event_type):
        assert decoded == event
    else:
        assert {k: decoded["payload"][k] for k in event["payload"]} == event["payload"]


def test_decoded_events_hold_uuid_and_aware_datetime_values(serde: AvroSerde) -> None:
    event = sample_event("CheckpointCreated")
    event["event_id"] = str(event["event_id"])  # canonical strings are accepted too

    decoded = serde.decode(serde.encode(event))

    assert isinstance(decoded["event_id"], uuid.UUID)
    assert str(decoded["event_id"]) == event["event_id"]
    assert isinstance(decoded["occurred_at"], datetime)
    assert decoded["occurred_at"].utcoffset() is not None
    assert decoded["payload"]["inline_state"] == event["payload"]["inline_state"]


def test_an_old_version_is_read_in_the_latest_shape_keeping_the_writers_version(
    serde: AvroSerde,
) -> None:
    event = sample_event("SpanRecorded", schema_version=1)

    decoded = serde.decode(serde.encode(event))

    assert decoded["schema_version"] == 1
    assert decoded["payload"]["cache_hit"] is False
    assert serde.writer_of(serde.encode(event)).version == 1


def test_the_serde_answers_the_kafka_codec_questions(serde: AvroSerde) -> None:
    assert serde.area_of("VoteCast") == "consensus"
    assert serde.fingerprint_of("SpanRecorded", 1) != serde.fingerprint_of("SpanRecorded")
    assert serde.writer_of(serde.encode(sample_event("VoteCast"))).event_type == "VoteCast"


# ---- fingerprints


def test_the_header_fingerprint_is_little_endian_crc64_avro_as_java_writes_it() -> None:
    # Avro Java's SchemaNormalization.parsingFingerprint64 of "null" is 7195948357588979594.
    java = (7195948357588979594).to_bytes(8, "little", signed=True)

    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == java


@pytest.mark.parametrize(("event_type", "version"), ALL_VERSIONS)
def test_fingerprints_are_of_the_parsing_canonical_form(event_type: str, version: int) -> None:
    canonical = to_parsing_canonical_form(CATALOG.schema(event_type, version))

    expected = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    assert CATALOG.fingerprint_of(event_type, version) == expected
    assert CATALOG.resolve(expected).event_type == event_type


def test_fingerprints_are_distinct_and_frozen() -> None:
    found = {ref: CATALOG.fingerprint_of(*ref).hex() for ref in ALL_VERSIONS}

    assert len(set(found.values())) == len(found)
    assert found == FROZEN_FINGERPRINTS


# ---- decode errors


def test_an_unknown_fingerprint_is_an_unknown_schema_error_naming_it(serde: AvroSerde) -> None:
    data = serde.encode(sample_event("StepStarted"))
    forged = MARKER + bytes.fromhex("0123456789abcdef") + data[HEADER_SIZE:]

    with pytest.raises(UnknownSchemaError, match="0123456789abcdef") as caught:
        serde.decode(forged)
    assert caught.value.fingerprint == bytes.fromhex("0123456789abcdef")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"\xc3", "marker"),
        (b"\x00\x01" + bytes(20), "marker c3 01 \\(starts with 00 01\\)"),
        (b'{"event_type": "StepStarted"}', "marker"),
        (MARKER + b"\x01\x02\x03", "header truncated: 5 of 10 bytes"),
    ],
)
def test_a_bad_header_is_a_corrupt_message_error(
    serde: AvroSerde, data: bytes, problem: str
) -> None:
    with pytest.raises(CorruptMessageError, match=problem):
        serde.decode(data)


def test_a_missing_value_is_a_corrupt_message_error(serde: AvroSerde) -> None:
    with pytest.raises(CorruptMessageError, match="NoneType, not bytes"):
        serde.decode(None)  # type: ignore[arg-type]  # a Kafka tombstone


def test_every_truncation_is_a_corrupt_message_error(serde: AvroSerde) -> None:
    data = serde.encode(sample_event("ConsensusRoundOpened"))

    for length in range(len(data)):
        with pytest.raises(CorruptMessageError):
            serde.decode(data[:length])


def test_bytes_after_the_body_are_a_corrupt_message_error(serde: AvroSerde) -> None:
    data = serde.encode(sample_event("VoteCast"))

    with pytest.raises(CorruptMessageError, match="3 bytes left over after the VoteCast v1 body"):
        serde.decode(data + b"abc")


@pytest.mark.parametrize("seed", range(50))
def test_random_garbage_is_a_corrupt_message_error(serde: AvroSerde, seed: int) -> None:
    rng = random.Random(seed)
    garbage = rng.randbytes(rng.randrange(1, 300))
    header = MARKER + CATALOG.fingerprint_of(rng.choice(CATALOG.event_types()))

    with pytest.raises(CorruptMessageError):
        serde.decode(b"\x00" + garbage)
    with pytest.raises(CorruptMessageError, match=r"body is not a valid|left over"):
        serde.decode(header + garbage)


def test_a_body_that_contradicts_its_header_is_a_corrupt_message_error(serde: AvroSerde) -> None:
    data = serde.encode(sample_event("StepCompleted", schema_version=1))
    tampered = data.replace(b"StepCompleted", b"StepCompletex", 1)

    with pytest.raises(CorruptMessageError, match="header names StepCompleted v1 but the body"):
        serde.decode(tampered)


def test_serde_errors_are_omium_errors_and_value_errors() -> None:
    for error in (UnknownSchemaError, CorruptMessageError, SchemaValidationError):
        assert issubclass(error, SerdeError)
    assert issubclass(SerdeError, OmiumError)
    assert issubclass(SerdeError, ValueError)


# ---- encode errors


def _invalid(serde: AvroSerde, event: dict[str, Any]) -> SchemaValidationError:
    with pytest.raises(SchemaValidationError) as caught:
        serde.encode(event)
    return caught.value


def test_a_wrongly_typed_payload_field_is_named(serde: AvroSerde) -> None:
    event = sample_event("SpanRecorded")
    event["payload"]["tokens_in"] = "812"

    error = _invalid(serde, event)

    assert (error.event_type, error.version, error.field) == (
        "SpanRecorded",
        2,
        "payload.tokens_in",
    )
    assert str(error) == (
        "cannot encode SpanRecorded v2: field 'payload.tokens_in' expects long, got str '812'"
    )


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"cost_usd": "0.1"}, "payload.cost_usd", "expects double, got str"),
        ({"tokens_in": 1.5}, "payload.tokens_in", "expects long, got float"),
        ({"kind": "sql"}, "payload.kind", "expects one of ['execution', 'step'"),
        ({"model": 4}, "payload.model", "expects null or string, got int 4"),
        ({"attributes": {"a": 1}}, "payload.attributes", "expects string, got int 1"),
        ({"tokens": 3}, "payload.tokens", "is not in the schema"),
        ({"execution_id": "E1"}, "payload.execution_id", "must be a UUID"),
        ({"start_time": datetime(2025, 1, 1)}, "payload.start_time", "timezone-aware"),
    ],
)
def test_encode_names_the_offending_field(
    serde: AvroSerde, change: dict[str, Any], field: str, problem: str
) -> None:
    event = sample_event("SpanRecorded")
    event["payload"].update(change)

    error = _invalid(serde, event)

    assert error.field == field
    assert problem in error.problem


def test_a_missing_field_without_default_is_named(serde: AvroSerde) -> None:
    event = sample_event("VoteCast")
    del event["payload"]["voter"]
    del event["tenant_id"]

    assert _invalid(serde, event).field == "tenant_id"
    event["tenant_id"] = "t"
    assert _invalid(serde, event).problem == "is missing (it has no default)"


def test_fields_with_defaults_may_be_left_out(serde: AvroSerde) -> None:
    event = sample_event("SpanRecorded")
    for name in ("cache_hit", "attributes", "model"):
        del event["payload"][name]
    del event["causation_id"]

    decoded = serde.decode(serde.encode(event))

    assert decoded["payload"]["cache_hit"] is False
    assert decoded["payload"]["attributes"] == {}
    assert decoded["causation_id"] is None


def test_a_non_canonical_event_id_is_refused(serde: AvroSerde) -> None:
    # Decoding would give a UUID whose string differs, so the hash would no longer match.
    event = sample_event("VoteCast")
    event["event_id"] = str(event["event_id"]).upper()

    assert _invalid(serde, event).field == "event_id"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"event_type": None}, "event_type", "is missing"),
        ({"event_type": "VoteCasted"}, "event_type", "unknown event type 'VoteCasted'"),
        ({"schema_version": None}, "schema_version", "is missing"),
        ({"schema_version": "1"}, "schema_version", "must be an int"),
        ({"schema_version": 9}, "schema_version", "has no schema version 9 (known: 1)"),
    ],
)
def test_the_writer_schema_must_be_named_exactly(
    serde: AvroSerde, change: dict[str, Any], field: str, problem: str
) -> None:
    event = sample_event("VoteCast") | change

    error = _invalid(serde, event)

    assert error.field == field
    assert problem in str(error)


def test_a_non_mapping_is_refused(serde: AvroSerde) -> None:
    assert _invalid(serde, ["not", "an", "event"]).field == "<event>"  # type: ignore[arg-type]


# ---- catalog


def test_the_catalog_indexes_versions_and_areas() -> None:
    assert CATALOG.versions("StepCompleted") == [1, 2]
    assert CATALOG.latest_version("StepCompleted") == 2
    assert CATALOG.area_of("StepCompleted") == "executions"
    assert CATALOG.get("StepCompleted").version == 2
    assert CATALOG.schema("StepCompleted", 1)["name"] == "io.omium.events.StepCompleted"
    assert CATALOG.envelope_fields[-1] == "payload"


def test_unknown_names_are_unknown_schema_errors() -> None:
    with pytest.raises(UnknownSchemaError, match="unknown event type 'Nope'"):
        CATALOG.area_of("Nope")
    with pytest.raises(UnknownSchemaError, match="has no schema version 3"):
        CATALOG.schema("SpanRecorded", 3)


def _write(path: Path, schema: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema), encoding="utf-8")


def _payload(name: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    fields = fields if fields is not None else [{"name": "x", "type": "string"}]
    return {"type": "record", "name": name, "namespace": "io.omium.events", "fields": fields}


@pytest.mark.parametrize(
    ("relative", "schema", "problem"),
    [
        ("audit/Thing.v2.avsc", _payload("ThingPayload"), r"versions \[2\], not 1..N"),
        ("audit/Thing.avsc", _payload("ThingPayload"), "must be named"),
        ("Thing.v1.avsc", _payload("ThingPayload"), "must be named"),
        ("audit/Thing.v1.avsc", _payload("Thing"), "record must be io.omium.events.ThingPayload"),
        ("metrics/VoteCast.v2.avsc", _payload("VoteCastPayload"), "also in area 'consensus'"),
        (
            "audit/Thing.v1.avsc",
            _payload("ThingPayload", [{"name": "x", "type": "strin"}]),
            "invalid Avro schema",
        ),
    ],
)
def test_a_broken_schemas_folder_is_a_schema_file_error(
    schemas_dir_factory: Callable[[], Path], relative: str, schema: dict[str, Any], problem: str
) -> None:
    root = schemas_dir_factory()
    _write(root / relative, schema)

    with pytest.raises(SchemaFileError, match=problem) as caught:
        SchemaCatalog.from_directory(root)
    assert isinstance(caught.value, ConfigurationError)


def test_a_version_identical_to_another_is_refused(schemas_dir_factory: Callable[[], Path]) -> None:
    root = schemas_dir_factory()
    shutil.copy(root / "consensus/VoteCast.v1.avsc", root / "consensus/VoteCast.v2.avsc")

    with pytest.raises(SchemaFileError, match="same canonical schema"):
        SchemaCatalog.from_directory(root)


def test_a_folder_without_envelope_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaFileError, match=r"envelope\.avsc: file not found"):
        SchemaCatalog.from_directory(tmp_path)


def test_a_new_version_file_is_picked_up_and_read_by_the_latest(
    schemas_dir_factory: Callable[[], Path],
) -> None:
    root = schemas_dir_factory()
    v1 = json.loads((root / "consensus/VoteCast.v1.avsc").read_text(encoding="utf-8"))
    v1["fields"].append({"name": "round_seq", "type": "int", "default": 0, "doc": "x"})
    _write(root / "consensus/VoteCast.v2.avsc", v1)
    catalog = SchemaCatalog.from_directory(root)
    old = sample_event("VoteCast")

    decoded = AvroSerde(catalog).decode(AvroSerde(CATALOG).encode(old))

    assert catalog.latest_version("VoteCast") == 2
    assert decoded["payload"] == old["payload"] | {"round_seq": 0}
