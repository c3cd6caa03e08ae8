"""The DLQ index behind ``/api/v1/dlq``: dead letters read from ``<prefix>.dlq`` into PostgreSQL.

Every part that cannot decode or handle a message writes it to ``<prefix>.dlq`` with the
``dlq.*`` headers (reason, error type, source topic/partition/offset, consumer group, time) and
its original key, value and headers. Kafka cannot list a tenant's dead letters page by page, so
the gateway keeps an index in PostgreSQL (schema ``<prefix>_dlq``): before answering a list it
reads whatever the DLQ topic gained since its stored positions (``read_committed``, a bounded
number per request) and inserts it, keyed by the letter's DLQ partition and offset, so two
gateways indexing at once insert each letter once.

Each letter is attributed to a tenant from its original ``tenant_id`` header (every event the
relay and the producers publish carries one), else from the decoded Avro envelope, else from a
``tenant_id`` in a JSON body; a letter none of these name (undecodable bytes) belongs to no
tenant, and no tenant's list shows it.

The index also records re-drives: who put a letter back on its source topic, when, and where
it landed; a letter is re-driven at most once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from omium.kernel.kafka import Area, topic_name
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings

# The headers every dead letter carries (``omium.kernel.kafka.DeadLetter.headers``).
REASON = "dlq.reason"
ERROR_TYPE = "dlq.error_type"
SOURCE_TOPIC = "dlq.source_topic"
SOURCE_PARTITION = "dlq.source_partition"
SOURCE_OFFSET = "dlq.source_offset"
CONSUMER_GROUP = "dlq.consumer_group"
FAILED_AT = "dlq.failed_at"
REDRIVEN_FROM = "dlq.redriven_from"
"""Added to a re-driven message: ``<dlq partition>-<offset>`` of the letter it came from."""

PREVIEW_BYTES = 4096
"""Longest payload preview kept per letter (the full payload is kept too)."""
MAX_INDEX_PER_REQUEST = 2000
"""Most new dead letters indexed while answering one request (the next request goes on)."""

_DLQ_HEADERS = frozenset(
    {REASON, ERROR_TYPE, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, CONSUMER_GROUP, FAILED_AT}
)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def dlq_schema(topic_prefix: str) -> str:
    """The PostgreSQL schema of a deployment's DLQ index (``omium`` → ``omium_dlq``)."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", topic_prefix.lower())
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"p_{cleaned}"
    name = f"{cleaned[:50]}_dlq"
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def migrations(schema: str) -> list[str]:
    """The DDL of the index (idempotent)."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"""CREATE TABLE IF NOT EXISTS {schema}.dead_letters (
            dlq_partition integer NOT NULL,
            dlq_offset bigint NOT NULL,
            tenant_id text,
            reason text NOT NULL,
            error_type text NOT NULL,
            source_topic text NOT NULL,
            source_partition integer NOT NULL,
            source_offset bigint NOT NULL,
            consumer_group text NOT NULL,
            failed_at timestamptz NOT NULL,
            event_type text,
            event_id text,
            message_key bytea,
            payload bytea NOT NULL,
            payload_size integer NOT NULL,
            preview text NOT NULL,
            preview_kind text NOT NULL,
            headers jsonb NOT NULL,
            indexed_at timestamptz NOT NULL DEFAULT now(),
            redriven_at timestamptz,
            redriven_by text,
            redrive_request_id text,
            redrive_partition integer,
            redrive_offset bigint,
            PRIMARY KEY (dlq_partition, dlq_offset)
        )""",
        f"CREATE INDEX IF NOT EXISTS dead_letters_tenant_failed "
        f"ON {schema}.dead_letters (tenant_id, failed_at DESC, dlq_partition, dlq_offset)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.positions (
            dlq_partition integer PRIMARY KEY,
            next_offset bigint NOT NULL
        )""",
    ]


@dataclass(frozen=True)
class IndexedLetter:
    """One dead letter as the index stores it."""

    dlq_partition: int
    dlq_offset: int
    tenant_id: str | None
    reason: str
    error_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    consumer_group: str
    failed_at: datetime
    event_type: str | None
    event_id: str | None
    message_key: bytes | None
    payload: bytes
    preview: str
    preview_kind: str
    headers: list[tuple[str, str]]

    def row(self) -> dict[str, Any]:
        """Parameters of the insert."""
        return {
            **{k: v for k, v in self.__dict__.items() if k != "headers"},
            "payload_size": len(self.payload),
            "headers": json.dumps(self.headers),
        }


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", errors="replace")


def _int(value: str, default: int = -1) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def _json_default(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def describe(
    serde: AvroSerde,
    *,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    timestamp_ms: int | None = None,
) -> IndexedLetter:
    """A dead letter's index row: its ``dlq.*`` headers, tenant, event and payload preview."""
    pairs = [(name, _text(raw)) for name, raw in headers]
    dlq = {name: text for name, text in pairs if name in _DLQ_HEADERS}
    original = {name: text for name, text in pairs if name not in _DLQ_HEADERS}
    payload = value or b""
    tenant = original.get("tenant_id") or None
    event_type = original.get("event_type") or None
    event_id = original.get("event_id") or None
    preview_kind, body = "binary", None
    try:
        event = serde.decode(payload)
        preview_kind, body = "avro", event
    except Exception:  # not an Omium event: JSON, text or bytes
        try:
            body = json.loads(payload)
            preview_kind = "json"
        except ValueError:
            body = None
    if isinstance(body, dict):
        nested = body.get("state")
        state: dict[str, Any] = nested if isinstance(nested, dict) else {}
        tenant = tenant or _str_or_none(body.get("tenant_id") or state.get("tenant_id"))
        event_type = event_type or _str_or_none(body.get("event_type"))
        event_id = event_id or _str_or_none(body.get("event_id"))
    if body is not None:
        preview = json.dumps(body, indent=2, sort_keys=True, default=_json_default)
    else:
        text = payload.decode("utf-8", errors="strict") if _is_text(payload) else None
        preview_kind = "text" if text is not None else "binary"
        preview = text if text is not None else payload[: PREVIEW_BYTES // 2].hex(" ")
    failed_at = _time(dlq.get(FAILED_AT), timestamp_ms)
    return IndexedLetter(
        dlq_partition=partition,
        dlq_offset=offset,
        tenant_id=tenant,
        reason=dlq.get(REASON, "") or "(no reason given)",
        error_type=dlq.get(ERROR_TYPE, ""),
        source_topic=dlq.get(SOURCE_TOPIC, ""),
        source_partition=_int(dlq.get(SOURCE_PARTITION, "")),
        source_offset=_int(dlq.get(SOURCE_OFFSET, "")),
        consumer_group=dlq.get(CONSUMER_GROUP, ""),
        failed_at=failed_at,
        event_type=event_type,
        event_id=event_id,
        message_key=key,
        payload=payload,
        preview=preview[:PREVIEW_BYTES],
        preview_kind=preview_kind,
        headers=list(original.items()),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _is_text(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text[:PREVIEW_BYTES])


def _time(header: str | None, timestamp_ms: int | None) -> datetime:
    if header:
        try:
            moment = datetime.fromisoformat(header)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    if timestamp_ms is not None and timestamp_ms > 0:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return datetime.now(UTC)


def read_new_letters(
    kafka: KafkaSettings,
    serde: AvroSerde,
    positions: dict[int, int],
    *,
    limit: int = MAX_INDEX_PER_REQUEST,
    timeout_s: float = 5.0,
) -> tuple[list[IndexedLetter], dict[int, int]]:
    """Dead letters after ``positions`` (partition → next offset), at most ``limit``.

    Returns:
        The letters read, and the new next offset of each partition read.

    Raises:
        KafkaException: The DLQ topic cannot be read.
    """
    topic = topic_name(kafka, Area.DLQ)
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{kafka.topic_prefix}.gateway.dlq-index",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "log_level": 3,
        }
    )
    letters: list[IndexedLetter] = []
    moved: dict[int, int] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return [], {}
        wanted: list[TopicPartition] = []
        ends: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            start = max(positions.get(partition, 0), low)
            if start < high:
                wanted.append(TopicPartition(topic, partition, start))
                ends[partition] = high
        if not wanted:
            return [], {}
        consumer.assign(wanted)
        deadline = time.monotonic() + timeout_s
        empty_polls = 0
        while ends and len(letters) < limit and time.monotonic() < deadline and empty_polls < 3:
            batch = consumer.consume(min(500, limit - len(letters)), 0.5)
            if not batch:
                empty_polls += 1
            for message in batch:
                if message.error() is not None:
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                _, ts = message.timestamp()
                letters.append(
                    describe(
                        serde,
                        partition=partition,
                        offset=offset,
                        key=message.key(),
                        value=message.value(),
                        headers=_headers(message.headers()),
                        timestamp_ms=ts,
                    )
                )
                moved[partition] = offset + 1
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
    finally:
        consumer.close()
    return letters, moved


def _headers(raw: Any) -> list[tuple[str, bytes | None]]:
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return [
        (str(name), value if isinstance(value, bytes | None) else str(value).encode())
        for name, value in pairs
    ]
