"""The relay's positions on Kafka, written in every batch's transaction: publication exactly once.

Each batch's Kafka transaction also carries one record on ``<prefix>.relay-positions`` (one
partition, compacted, keyed by the event store schema): every application's position after the
batch and the chain heads the batch moved. The batch and its record become visible together or
not at all. PostgreSQL keeps the same positions and heads for reading, written after the Kafka
commit; a relay that died between the two finds, when it next leads (after its
``init_transactions`` aborted anything its predecessor left open), a committed record ahead of
PostgreSQL, stores that instead, and goes on from there: the batch is never sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from omium.commands.relay._publisher import OutgoingMessage
from omium.commands.relay._sources import Position
from omium.commands.relay._store import ChainLink
from omium.commands.relay.errors import PublishError
from omium.kernel.kafka import TopicSpec, consumer_config, ensure_topics
from omium.kernel.settings import KafkaSettings

TOPIC_SUFFIX = "relay-positions"
_READ_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Committed:
    """What the last committed batch of a relay recorded."""

    positions: dict[str, Position]
    heads: dict[str, ChainLink]


class KafkaPositionLog:
    """Reads and writes one relay's position records.

    Args:
        kafka: The cluster and topic prefix.
        key: The event store schema the relay follows (one relay per schema and prefix).
    """

    def __init__(self, kafka: KafkaSettings, *, key: str) -> None:
        """Remember where the records go."""
        self._kafka = kafka
        self._key = key
        self.topic = f"{kafka.topic_prefix}.{TOPIC_SUFFIX}"

    def ensure_topic(self) -> None:
        """Create the compacted, single-partition topic if it is missing."""
        spec = TopicSpec(
            name=self.topic,
            partitions=1,
            replication_factor=self._kafka.replication_factor,
            config={
                "cleanup.policy": "compact",
                "min.insync.replicas": str(min(2, self._kafka.replication_factor)),
            },
        )
        ensure_topics(self._kafka, specs=[spec])

    def record(
        self, positions: Mapping[str, Position], heads: Mapping[str, ChainLink]
    ) -> OutgoingMessage:
        """The record of a batch, to publish in the batch's own transaction."""
        body = {
            "positions": {app: list(p) for app, p in positions.items()},
            "heads": {a: [h.aggregate_version, h.hash] for a, h in heads.items()},
        }
        return OutgoingMessage(self.topic, self._key, json.dumps(body).encode())

    def last(self) -> Committed | None:
        """The newest committed record of this relay, or None if it never published one.

        Raises:
            PublishError: Kafka cannot be read (the relay retries its cycle).
        """
        config = consumer_config(
            self._kafka,
            f"{self._kafka.client_id}-relay-positions",
            # A fetch at the end of the partition is held by the broker up to this long before
            # the end is reported (librdkafka's default 500 ms): every relay start and takeover
            # waited ~1 s here for nothing.
            **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
        )
        consumer = Consumer(config)
        try:
            return self._read_last(consumer)
        except KafkaException as exc:
            raise PublishError(f"cannot read {self.topic}: {exc}", fatal=False) from exc
        finally:
            consumer.close()

    def _read_last(self, consumer: Consumer) -> Committed | None:
        # Asking for the watermarks first finds the partition's leader at once (an assignment
        # alone waited ~0.5 s for it: measured) and answers an empty topic without a fetch.
        low, high = consumer.get_watermark_offsets(
            TopicPartition(self.topic, 0), timeout=_READ_TIMEOUT_S
        )
        if high <= low:
            return None
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        newest: bytes | None = None
        while True:
            message = consumer.poll(_READ_TIMEOUT_S)
            if message is None:
                raise PublishError(f"no answer reading {self.topic}", fatal=False)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's name
                    break
                raise KafkaException(error)
            key = message.key()
            if key is not None and key.decode() == self._key:
                newest = message.value()
        if newest is None:
            return None
        body = json.loads(newest)
        return Committed(
            positions={app: Position(int(p[0]), int(p[1])) for app, p in body["positions"].items()},
            heads={a: ChainLink(int(h[0]), str(h[1])) for a, h in body["heads"].items()},
        )
