"""The Kafka audit sink: one ``CommandRecorded`` event per command on ``<prefix>.audit``.

Each entry is its own one-event history (``aggregate_version`` 1, genesis ``prev_hash``, a fresh
``aggregate_id``): gateway replicas record concurrently and cannot extend a shared hash chain, yet
every audit event still verifies on its own. The Kafka *key* is the command's target, so the
audit entries about one run stay ordered in one partition, like the run's own events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from gateway._audit import AuditEntry, BaseAuditSink, audit_payload
from omium.kernel.events import GENESIS_HASH, new_event
from omium.kernel.kafka import EventProducer
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings

EVENT_TYPE = "CommandRecorded"


class KafkaAuditSink(BaseAuditSink):
    """Publishes each entry and waits for Kafka's acknowledgement before returning."""

    def __init__(
        self, producer: EventProducer, serde: AvroSerde, *, flush_timeout_s: float = 5.0
    ) -> None:
        self._producer = producer
        self._serde = serde
        self._flush_timeout_s = flush_timeout_s

    @classmethod
    def from_settings(cls, settings: OmiumSettings) -> KafkaAuditSink:
        """A sink on a new idempotent producer for the configured cluster and schemas."""
        serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
        return cls(EventProducer(settings.kafka, serde), serde)

    def event_for(self, entry: AuditEntry) -> dict[str, Any]:
        """The ``CommandRecorded`` event of an entry."""
        return new_event(
            EVENT_TYPE,
            tenant_id=entry.principal.tenant_id,
            aggregate_id=uuid.uuid4(),
            aggregate_version=1,
            prev_hash=GENESIS_HASH,
            payload=audit_payload(entry),
            correlation_id=entry.request_id,
            occurred_at=entry.occurred_at,
            catalog=self._serde.catalog,
        )

    async def _write(self, entry: AuditEntry) -> None:
        event = self.event_for(entry)
        # ``flush`` blocks until Kafka acknowledges (or raises DeliveryError): off the loop.
        await asyncio.to_thread(self._publish, event, entry.target)

    def _publish(self, event: Mapping[str, Any], key: str) -> None:
        headers = [
            ("event_id", str(event["event_id"]).encode()),
            ("event_type", EVENT_TYPE.encode()),
            ("tenant_id", str(event["tenant_id"]).encode()),
        ]
        self._producer.send(self._producer.topic_for(EVENT_TYPE), key=key,
                            value=self._serde.encode(event), headers=headers)
        self._producer.flush(self._flush_timeout_s)

    async def close(self) -> None:
        """Flush what is pending and release the producer."""
        await asyncio.to_thread(self._producer.close, self._flush_timeout_s)
