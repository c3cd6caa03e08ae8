"""The Kafka audit sink: one ``CommandRecorded`` event per command on ``<prefix>.audit``.

It is built on the kernel's ``EventProducer`` with the Avro serde (``omium.kernel.serde``) and the
event envelope factory (``omium.kernel.events.new_event``). Those two modules come from the serde
work; they are imported when the sink is built, so the rest of the gateway works without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from gateway._audit import AuditEntry, BaseAuditSink, audit_payload
from omium.kernel.errors import ConfigurationError
from omium.kernel.kafka import EventProducer
from omium.kernel.settings import OmiumSettings

EVENT_TYPE = "CommandRecorded"

EventFactory = Callable[..., Mapping[str, Any]]


class KafkaAuditSink(BaseAuditSink):
    """Publishes each entry and waits for Kafka's acknowledgement before returning."""

    def __init__(
        self, producer: EventProducer, *, new_event: EventFactory, flush_timeout_s: float = 5.0
    ) -> None:
        self._producer = producer
        self._new_event = new_event
        self._flush_timeout_s = flush_timeout_s

    @classmethod
    def from_settings(cls, settings: OmiumSettings) -> KafkaAuditSink:
        """A sink on a new idempotent producer for the configured cluster.

        Raises:
            ConfigurationError: The kernel serde or event factory is not available.
        """
        try:
            from omium.kernel.events import new_event
            from omium.kernel.serde import AvroSerde, SchemaCatalog
        except ImportError as exc:
            raise ConfigurationError(
                "the Kafka audit sink needs omium.kernel.serde and omium.kernel.events; "
                "set OMIUM_GATEWAY__AUDIT_SINK=log until they exist"
            ) from exc
        serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
        return cls(EventProducer(settings.kafka, serde), new_event=new_event)

    def event_for(self, entry: AuditEntry) -> Mapping[str, Any]:
        """The ``CommandRecorded`` event of an entry, keyed by its target."""
        return self._new_event(
            EVENT_TYPE,
            tenant_id=entry.principal.tenant_id,
            aggregate_id=entry.target,
            payload=audit_payload(entry),
            correlation_id=entry.request_id,
        )

    async def _write(self, entry: AuditEntry) -> None:
        event = self.event_for(entry)
        # ``flush`` blocks until Kafka acknowledges (or raises DeliveryError): off the loop.
        await asyncio.to_thread(self._publish, event)

    def _publish(self, event: Mapping[str, Any]) -> None:
        self._producer.publish(event)
        self._producer.flush(self._flush_timeout_s)

    async def close(self) -> None:
        """Flush what is pending and release the producer."""
        await asyncio.to_thread(self._producer.close, self._flush_timeout_s)
