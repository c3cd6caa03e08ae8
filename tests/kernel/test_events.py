"""The event envelope (new_event) and the hash chain (compute_hash, verify_chain)."""

from __future__ import annotations

import hashlib
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from omium.kernel.events import (
    GENESIS_HASH,
    ChainBrokenError,
    ChainFault,
    compute_hash,
    new_event,
    verify_chain,
)
from omium.kernel.serde import AvroSerde, SchemaValidationError, UnknownSchemaError, default_catalog
from omium.testing.samples import sample_chain, sample_event, sample_payload

SERDE = AvroSerde(default_catalog())
RUN = ["ExecutionStarted", "StepScheduled", "StepStarted", "StepCompleted", "ExecutionCompleted"]


def _broken(events: list[dict[str, Any]]) -> ChainBrokenError:
    with pytest.raises(ChainBrokenError) as caught:
        verify_chain(events)
    return caught.value


# ---- new_event


def test_new_event_fills_the_envelope() -> None:
    before = datetime.now(UTC)

    event = new_event(
        "VoteCast",
        tenant_id="acme",
        aggregate_id=uuid.UUID(int=7),
        aggregate_version=1,
        payload=sample_payload("VoteCast"),
        prev_hash=GENESIS_HASH,
        causation_id=uuid.UUID(int=8),
    )

    assert isinstance(event["event_id"], uuid.UUID) and event["event_id"].version == 4
    assert before <= event["occurred_at"] <= datetime.now(UTC)
    assert event["schema_version"] == default_catalog().latest_version("VoteCast")
    assert event["aggregate_id"] == str(uuid.UUID(int=7))
    assert event["causation_id"] == str(uuid.UUID(int=8))
    assert event["correlation_id"] is None
    assert event["hash"] == compute_hash(event)
    assert len(event["hash"]) == 64 and int(event["hash"], 16) >= 0


def test_new_event_writes_an_older_version_on_request() -> None:
    payload = sample_payload("StepCompleted", schema_version=1)

    event = new_event(
        "StepCompleted",
        tenant_id="acme",
        aggregate_id="run-1",
        aggregate_version=3,
        payload=payload,
        prev_hash="ab" * 32,
        schema_version=1,
    )

    assert event["schema_version"] == 1
    assert SERDE.writer_of(SERDE.encode(event)).version == 1


def test_new_event_refuses_a_payload_that_does_not_fit() -> None:
    payload = sample_payload("VoteCast") | {"weight": "heavy"}

    with pytest.raises(SchemaValidationError, match=r"'payload\.weight' expects double"):
        new_event(
            "VoteCast",
            tenant_id="acme",
            aggregate_id="round-1",
            aggregate_version=1,
            payload=payload,
            prev_hash=GENESIS_HASH,
        )


def test_new_event_refuses_an_unknown_event_type() -> None:
    with pytest.raises(UnknownSchemaError, match="VoteCasted"):
        new_event(
            "VoteCasted",
            tenant_id="acme",
            aggregate_id="round-1",
            aggregate_version=1,
            payload={},
            prev_hash=GENESIS_HASH,
        )


# ---- the hash


def test_the_hash_is_sha256_of_prev_hash_and_the_body_with_an_empty_hash() -> None:
    event = sample_event("StepStarted", prev_hash="cd" * 32)

    body = SERDE.canonical_body(event | {"hash": ""})

    assert event["hash"] == hashlib.sha256(("cd" * 32).encode() + body).hexdigest()


def test_the_hash_of_a_pinned_event_never_changes() -> None:
    # Stored chains must keep verifying across releases, so the hashing is pinned.
    event = new_event(
        "MetricRecorded",
        tenant_id="acme",
        aggregate_id="metrics",
        aggregate_version=1,
        payload={
            "name": "step.duration",
            "value": 12.5,
            "unit": "ms",
            "kind": "gauge",
            "execution_id": uuid.UUID(int=2),
            "dimensions": {"step": "draft", "agent": "writer"},
        },
        prev_hash=GENESIS_HASH,
        event_id=uuid.UUID(int=1),
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        schema_version=1,
    )

    assert event["hash"] == "ac5b10dc455f8ebf3966ff16b819490be760872e9d75954fda249eb030eff830"
    # The same bytes, written out by hand from the Avro spec: hash blank, map keys sorted.
    micros = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    envelope = [_s(str(uuid.UUID(int=1))), _s("MetricRecorded"), _long(1), _s("acme")]
    envelope += [_s("metrics"), _long(1), _long(micros), _long(0), _long(0), _s(""), _s("")]
    payload = [_s("step.duration"), struct.pack("<d", 12.5), _s("ms"), _long(1)]
    payload += [_long(1), _s(str(uuid.UUID(int=2))), _long(2), _s("agent"), _s("writer")]
    payload += [_s("step"), _s("draft"), _long(0)]
    assert SERDE.canonical_body(event | {"hash": ""}) == b"".join(envelope + payload)


def _long(value: int) -> bytes:
    """Avro int/long: zig-zag, then base-128 varint."""
    value, out = (value << 1) ^ (value >> 63), b""
    while value > 0x7F:
        out, value = out + bytes([(value & 0x7F) | 0x80]), value >> 7
    return out + bytes([value])


def _s(text: str) -> bytes:
    """Avro string: length, then UTF-8 bytes."""
    return _long(len(text.encode())) + text.encode()


@pytest.mark.parametrize("field", ["tenant_id", "aggregate_version", "prev_hash"])
def test_the_hash_covers_the_envelope(field: str) -> None:
    event = sample_event("StepStarted")
    changed = event | {field: {"tenant_id": "other", "aggregate_version": 2}.get(field, "ff")}

    assert compute_hash(changed) != event["hash"]


def test_the_hash_covers_the_payload() -> None:
    event = sample_event("StepStarted")
    event["payload"]["worker_id"] = "worker-evil"

    assert compute_hash(event) != event["hash"]


def test_the_hash_does_not_depend_on_map_order() -> None:
    event = sample_event("ConsensusRoundOpened")
    weights = event["payload"]["weights"]
    event["payload"]["weights"] = dict(reversed(list(weights.items())))

    assert compute_hash(event) == event["hash"]


@pytest.mark.parametrize("event_type", default_catalog().event_types())
def test_the_hash_survives_the_wire(event_type: str) -> None:
    for version in default_catalog().versions(event_type):
        event = sample_event(event_type, schema_version=version)

        decoded = SERDE.decode(SERDE.encode(event))

        assert compute_hash(decoded) == event["hash"]


# ---- verify_chain


def test_an_untouched_history_verifies() -> None:
    events = sample_chain(RUN)

    report = verify_chain(events)

    head = report.heads[events[0]["aggregate_id"]]
    assert report.events == len(RUN)
    assert (head.aggregate_version, head.hash, head.events) == (len(RUN), events[-1]["hash"], 5)


def test_a_history_read_back_from_the_wire_verifies() -> None:
    events = sample_chain(RUN)
    events[3] = sample_event(
        "StepCompleted",
        schema_version=1,
        aggregate_id=events[0]["aggregate_id"],
        aggregate_version=4,
        prev_hash=events[2]["hash"],
    )
    events[4] = sample_event(
        "ExecutionCompleted",
        aggregate_id=events[0]["aggregate_id"],
        aggregate_version=5,
        prev_hash=events[3]["hash"],
    )

    decoded = [SERDE.decode(SERDE.encode(event)) for event in events]

    assert verify_chain(decoded).events == 5


def test_interleaved_aggregates_verify_separately() -> None:
    first, second = sample_chain(RUN[:3]), sample_chain(RUN[:2])
    mixed = [first[0], second[0], first[1], second[1], first[2]]

    report = verify_chain(mixed)

    assert report.events == 5
    assert sorted(h.events for h in report.heads.values()) == [2, 3]


def test_an_empty_history_verifies() -> None:
    assert verify_chain([]).events == 0


def test_an_edited_event_is_a_hash_mismatch_at_its_position() -> None:
    events = sample_chain(RUN)
    events[3]["payload"]["tokens_out"] = 1

    error = _broken(events)

    assert (error.fault, error.position, error.aggregate_version) == (
        ChainFault.HASH_MISMATCH,
        3,
        4,
    )
    assert error.found == events[3]["hash"]
    assert "hash_mismatch" in str(error) and "position 3" in str(error)


def test_a_missing_event_is_a_version_gap() -> None:
    events = sample_chain(RUN)
    del events[2]

    error = _broken(events)

    assert (error.fault, error.position, error.expected, error.found) == (
        ChainFault.VERSION_GAP,
        2,
        "3",
        "4",
    )


def test_a_missing_first_event_is_a_version_gap() -> None:
    error = _broken(sample_chain(RUN)[1:])

    assert (error.fault, error.position, error.expected) == (ChainFault.VERSION_GAP, 0, "1")


def test_swapped_events_are_a_version_gap() -> None:
    events = sample_chain(RUN)
    events[1], events[2] = events[2], events[1]

    assert _broken(events).fault is ChainFault.VERSION_GAP


def test_an_edited_and_rehashed_event_breaks_the_next_link() -> None:
    events = sample_chain(RUN)
    events[1]["payload"]["agent"] = "agents.evil:run"
    events[1]["hash"] = compute_hash(events[1])

    error = _broken(events)

    assert (error.fault, error.position) == (ChainFault.BROKEN_LINK, 2)
    assert (error.expected, error.found) == (events[1]["hash"], events[2]["prev_hash"])


def test_a_relinked_event_is_a_broken_link() -> None:
    events = sample_chain(RUN)
    events[4]["prev_hash"] = events[2]["hash"]
    events[4]["hash"] = compute_hash(events[4])

    error = _broken(events)

    assert (error.fault, error.position, error.aggregate_id) == (
        ChainFault.BROKEN_LINK,
        4,
        events[0]["aggregate_id"],
    )


def test_a_first_event_must_not_point_anywhere() -> None:
    events = sample_chain(RUN[:1])
    events[0]["prev_hash"] = "00" * 32
    events[0]["hash"] = compute_hash(events[0])

    error = _broken(events)

    assert error.fault is ChainFault.BROKEN_LINK
    assert "first event has an empty prev_hash" in str(error)
