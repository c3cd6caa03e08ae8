"""Turning one batch of notifications into Kafka messages, chaining hashes per aggregate.

Pure apart from reading an aggregate's history when its chain head is missing or stale, so the
same notifications and heads always give the same messages: the property crash recovery rests on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from eventsourcing.persistence import Notification, StoredEvent

from omium.commands.relay._mapping import EncodedEvent, EventEncoder
from omium.commands.relay._publisher import OutgoingMessage
from omium.commands.relay._sources import LogSource, Position, RelayNotification
from omium.commands.relay._store import ChainLink
from omium.commands.relay.errors import UnmappableEventError
from omium.kernel.events import GENESIS_HASH
from omium.kernel.kafka import DeadLetter

log = structlog.get_logger(__name__)

RELAY_GROUP = "omium-relay"
"""``dlq.consumer_group`` of the relay's dead letters."""


@dataclass
class EncodedBatch:
    """What one batch becomes.

    Attributes:
        messages: Events and dead letters, in notification order.
        heads: The new chain head of every aggregate in the batch.
        positions: The position after the last notification of each application in the batch.
        relayed: How many events were encoded.
        dead_lettered: How many stored events went to the DLQ instead.
        newest_at: ``occurred_at`` of the last relayed event, for the lag report.
    """

    messages: list[OutgoingMessage] = field(default_factory=list)
    heads: dict[str, ChainLink] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    relayed: int = 0
    dead_lettered: int = 0
    newest_at: datetime | None = None


class BatchEncoder:
    """Encodes batches for one Kafka topic prefix and one event store schema.

    Args:
        encoder: Maps and encodes single events.
        topic_prefix: Kafka topic prefix (``omium``).
        schema: Event store schema (named in dead letters).
    """

    def __init__(self, encoder: EventEncoder, *, topic_prefix: str, schema: str) -> None:
        """Remember where messages go."""
        self._encoder = encoder
        self._prefix = topic_prefix
        self._schema = schema

    def encode(
        self,
        batch: Sequence[tuple[LogSource, Sequence[Notification]]],
        heads: Mapping[str, ChainLink],
    ) -> EncodedBatch:
        """Encode every notification of a batch, in order, continuing the stored chains.

        Args:
            batch: Each application's notifications, in log order.
            heads: Stored chain heads of the aggregates in the batch.

        Returns:
            The messages, the new heads and positions.
        """
        out = EncodedBatch()
        current = dict(heads)
        for source, notifications in batch:
            for notification in notifications:
                self._encode_one(source, notification, current, out)
            if notifications:
                out.positions[source.name] = _position_of(notifications[-1])
        return out

    def _encode_one(
        self,
        source: LogSource,
        notification: Notification,
        heads: dict[str, ChainLink],
        out: EncodedBatch,
    ) -> None:
        aggregate_id = str(notification.originator_id)
        version = notification.originator_version
        link = heads.get(aggregate_id)
        if not _continues(link, version):
            link = self._rebuild_link(source, notification, link)
        prev_hash = GENESIS_HASH if link is None else link.hash
        try:
            encoded = self.encode_stored(source, notification, prev_hash)
        except UnmappableEventError as exc:
            out.messages.append(self._dead_letter(source, notification, exc))
            out.dead_lettered += 1
            # The chain skips this version: the next event links to the last published hash,
            # and verify_chain reports the gap, which the DLQ entry explains.
            heads[aggregate_id] = ChainLink(version, prev_hash)
        else:
            out.messages.append(self._message(aggregate_id, encoded))
            out.relayed += 1
            out.newest_at = encoded.event["occurred_at"]
            heads[aggregate_id] = ChainLink(version, encoded.hash)
        out.heads[aggregate_id] = heads[aggregate_id]

    def encode_stored(self, source: LogSource, stored: StoredEvent, prev_hash: str) -> EncodedEvent:
        """Decode a stored event with its application's mapper, then map and encode it.

        Raises:
            UnmappableEventError: It cannot be decoded, mapped or encoded.
        """
        aggregate_id, version = str(stored.originator_id), stored.originator_version
        try:
            domain_event = source.decode(stored)
        except Exception as exc:  # undecodable stored state is a bug: dead-letter it
            raise UnmappableEventError(
                f"cannot decode: {type(exc).__name__}: {exc}",
                topic=stored.topic,
                aggregate_id=aggregate_id,
                aggregate_version=version,
            ) from exc
        return self._encoder.encode(domain_event, topic=stored.topic, prev_hash=prev_hash)

    def _rebuild_link(
        self, source: LogSource, notification: Notification, stale: ChainLink | None
    ) -> ChainLink | None:
        """Recompute an aggregate's chain up to the version before ``notification``.

        Needed only when the stored head does not end right before this event (heads lost or
        positions rewound by an operator); the chain is a pure function of the stored events,
        so the result is what the first relay computed.
        """
        version = notification.originator_version
        if version == 1:
            return None
        log.warning(
            "relay.chain_rebuilt",
            aggregate_id=str(notification.originator_id),
            version=version,
            stored_head=None if stale is None else stale.aggregate_version,
        )
        prev_hash = GENESIS_HASH
        for stored in source.history(notification.originator_id, up_to=version - 1):
            try:
                prev_hash = self.encode_stored(source, stored, prev_hash).hash
            except UnmappableEventError:
                continue  # skipped exactly as when it was dead-lettered
        return ChainLink(version - 1, prev_hash)

    def _message(self, aggregate_id: str, encoded: EncodedEvent) -> OutgoingMessage:
        event = encoded.event
        return OutgoingMessage(
            topic=f"{self._prefix}.{encoded.area}",
            key=aggregate_id,
            value=encoded.value,
            headers=(
                ("event_id", str(event["event_id"]).encode()),
                ("event_type", str(event["event_type"]).encode()),
                ("tenant_id", str(event["tenant_id"]).encode()),
            ),
        )

    def _dead_letter(
        self, source: LogSource, notification: Notification, exc: UnmappableEventError
    ) -> OutgoingMessage:
        log.error(
            "relay.dead_lettered",
            application=source.name,
            notification_id=notification.id,
            aggregate_id=exc.aggregate_id,
            aggregate_version=exc.aggregate_version,
            topic=exc.topic,
            reason=str(exc),
        )
        value = stored_event_json(source.name, notification)
        cause = exc.__cause__ or exc
        letter = DeadLetter(
            reason=str(exc),
            error_type=type(cause).__name__,
            source_topic=f"{self._schema}.{source.table}",
            source_partition=0,
            source_offset=notification.id,
            key=str(notification.originator_id).encode(),
            value=value,
            consumer_group=RELAY_GROUP,
        )
        return OutgoingMessage(
            topic=f"{self._prefix}.dlq",
            key=str(notification.originator_id),
            value=value,
            headers=tuple(letter.headers()),
        )


def _continues(link: ChainLink | None, version: int) -> bool:
    """Whether the stored head ends right before ``version``."""
    if link is None:
        return version == 1
    return link.aggregate_version == version - 1


def stored_event_json(application: str, notification: Notification) -> bytes:
    """The dead letter's value: the stored event as JSON, its state embedded as stored.

    The state is embedded as parsed JSON when it parses, else as text, so nothing is lost.
    """
    text = notification.state.decode("utf-8", errors="replace")
    state: Any
    try:
        state = json.loads(text)
        key = "state"
    except ValueError:
        state, key = text, "state_text"
    document = {
        "application": application,
        "notification_id": notification.id,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "topic": notification.topic,
        key: state,
    }
    return json.dumps(document, sort_keys=True).encode()


def _position_of(notification: Notification) -> Position:
    tx_id = notification.tx_id if isinstance(notification, RelayNotification) else 0
    return Position(tx_id, notification.id)
