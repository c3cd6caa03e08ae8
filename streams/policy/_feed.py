"""Every instance reads all published policies (a broadcast input, outside the group)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from omium.kernel.errors import OmiumError
from omium.kernel.kafka import topic_name
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.streams.errors import StreamsError
from omium.streams.policy._mapping import policy_of
from omium.streams.policy._registry import PolicyRegistry

log = structlog.get_logger(__name__)


class PolicyFeed:
    """Keeps a :class:`PolicyRegistry` up to date from ``<prefix>.policies``.

    The first :meth:`poll` reads the topic from the beginning up to its end, so no event is
    judged before the policies published until then are loaded; later polls pick up new
    versions without waiting (hot reload).

    Args:
        kafka: Where the policies topic is.
        serde: Decodes ``PolicyPublished``.
        registry: The registry to fill (a new one by default).
    """

    def __init__(
        self, kafka: KafkaSettings, serde: AvroSerde, *, registry: PolicyRegistry | None = None
    ) -> None:
        """Prepare the feed; it connects on the first poll."""
        self.registry = registry or PolicyRegistry()
        self._kafka = kafka
        self._serde = serde
        self._topic = topic_name(kafka, "policies")
        self._consumer: Consumer | None = None

    def poll(self) -> int:
        """Apply newly published policies; return how many versions were loaded."""
        if self._consumer is None:
            return self._catch_up()
        return self._apply(self._consumer.consume(500, 0))

    def close(self) -> None:
        """Disconnect."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _catch_up(self) -> int:
        consumer = Consumer(
            {
                **self._kafka.client_config(),
                "group.id": f"policy-feed-{uuid.uuid4()}",  # never commits: assign only
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        metadata = consumer.list_topics(self._topic, timeout=30).topics[self._topic]
        partitions = [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        consumer.assign(partitions)
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=30)[1] for p in partitions}
        loaded, deadline = 0, time.monotonic() + 120
        while time.monotonic() < deadline:
            loaded += self._apply(consumer.consume(500, 0.2))
            positions = consumer.position([TopicPartition(self._topic, p) for p in ends])
            if all(tp.offset >= ends[tp.partition] for tp in positions if ends[tp.partition] > 0):
                self._consumer = consumer
                return loaded
        consumer.close()
        raise StreamsError(f"could not read {self._topic} to its end")

    def _apply(self, messages: list[Any]) -> int:
        loaded = 0
        for message in messages:
            if message.error() is not None:
                continue
            try:
                event = self._serde.decode(message.value() or b"")
            except OmiumError:
                continue  # not ours to dead-letter: the topic's owners do that
            if event["event_type"] != "PolicyPublished":
                continue
            policy = policy_of(event)
            if self.registry.publish(policy):
                loaded += 1
                log.info("policy_feed.loaded", policy_id=policy.policy_id, version=policy.version)
        return loaded
