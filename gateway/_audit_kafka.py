"""The Kafka audit sink: one ``CommandRecorded`` event per command on ``<prefix>.audit``.

Each entry is its own one-event history (``aggregate_version`` 1, genesis ``prev_hash``, a fresh
``aggregate_id``): gateway replicas record concurrently and cannot extend a shared hash chain, yet
every audit event still verifies on its own. The Kafka *key* is the command's target, so the
audit entries about one run stay ordered in one partition, like the run's own events.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message

from omium.gateway._audit import AuditEntry, BaseAuditSink, audit_payload
from omium.kernel.errors import PersistenceError
from omium.kernel.events import GENESIS_HASH, new_event
from omium.kernel.kafka import DeliveryCallback, EventProducer
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings

EVENT_TYPE = "CommandRecorded"


class KafkaAuditSink(BaseAuditSink):
    """Publishes each entry and waits for Kafka's acknowledgement before returning.

    The wait is an asyncio future settled by the delivery callback, which a daemon thread
    serves for the producer: no thread hop and no flush of other requests' messages per entry.
    """

    def __init__(
        self, producer: EventProducer, serde: AvroSerde, *, flush_timeout_s: float = 5.0
    ) -> None:
        self._producer = producer
        self._serde = serde
        self._flush_timeout_s = flush_timeout_s
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="audit-kafka", daemon=True)
        self._poller.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    @classmethod
    def from_settings(cls, settings: OmiumSettings) -> KafkaAuditSink:
        """A sink on a new idempotent producer for the configured cluster and schemas."""
        serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
        # A request waits for its entry's acknowledgement: don't hold it back to fill a batch
        # (the default 5 ms linger was most of a command's latency, bench.command_latency).
        return cls(EventProducer(settings.kafka, serde, **{"linger.ms": 0}), serde)

    async def _write(self, entry: AuditEntry) -> None:
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            loop.call_soon_threadsafe(_settle, acknowledged, error)

        self._publish(command_recorded(entry, self._serde.catalog), entry.target, delivered)
        try:
            await asyncio.wait_for(acknowledged, self._flush_timeout_s)
        except TimeoutError:
            raise PersistenceError(
                f"Kafka did not acknowledge the audit entry within {self._flush_timeout_s}s"
            ) from None

    def _publish(self, event: Mapping[str, Any], key: str, on_delivery: DeliveryCallback) -> None:
        headers = [
            ("event_id", str(event["event_id"]).encode()),
            ("event_type", EVENT_TYPE.encode()),
            ("tenant_id", str(event["tenant_id"]).encode()),
        ]
        self._producer.send(
            self._producer.topic_for(EVENT_TYPE),
            key=key,
            value=self._serde.encode(event),
            headers=headers,
            on_delivery=on_delivery,
        )

    async def close(self) -> None:
        """Flush what is pending and release the producer."""
        self._closing.set()
        await asyncio.to_thread(self._poller.join)
        await asyncio.to_thread(self._producer.close, self._flush_timeout_s)


def command_recorded(entry: AuditEntry, catalog: SchemaCatalog) -> dict[str, Any]:
    """The ``CommandRecorded`` event of an entry: a one-event history of its own."""
    return new_event(
        EVENT_TYPE,
        tenant_id=entry.principal.tenant_id,
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        prev_hash=GENESIS_HASH,
        payload=audit_payload(entry),
        correlation_id=entry.request_id,
        occurred_at=entry.occurred_at,
        catalog=catalog,
    )


def _settle(acknowledged: asyncio.Future[None], error: KafkaError | None) -> None:
    if acknowledged.done():
        return
    if error is None:
        acknowledged.set_result(None)
    else:
        acknowledged.set_exception(PersistenceError(f"audit entry not delivered: {error}"))
