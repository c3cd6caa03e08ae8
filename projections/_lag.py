"""How far each projection is behind: its resume point versus the end of every partition."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from omium.kernel.errors import PersistenceError
from omium.kernel.kafka import consumer_config
from omium.kernel.settings import OmiumSettings
from omium.projections._registry import KINDS, group_id, open_projection, topics_of
from omium.projections.base.errors import TopicPartition as TP
from omium.projections.base.errors import UnknownProjectionError


@dataclass(frozen=True)
class PartitionLag:
    """One partition of one projection.

    Attributes:
        topic: The topic.
        partition: The partition.
        position: Where the projection resumes (-1: nothing applied yet).
        end: The partition's end offset (last stable offset).
    """

    topic: str
    partition: int
    position: int
    end: int

    @property
    def lag(self) -> int:
        """Messages not yet applied (transaction markers count too)."""
        return max(0, self.end - max(self.position, 0))


def projection_lag(
    name: str, settings: OmiumSettings, *, timeout_s: float = 10.0
) -> list[PartitionLag]:
    """Per partition: the projection's resume point (its store's offsets where it keeps them,
    else its group's committed offsets) and the end offset.

    Raises:
        PersistenceError: Kafka or the store cannot be read.
    """
    kind = KINDS.get(name)
    if kind is None:
        raise UnknownProjectionError(name, sorted(KINDS))
    topics = topics_of(kind, settings.kafka)
    stored = _stored(name, settings) if kind.keeps_offsets else None
    # A throwaway reader that only asks: it never joins the projection's group.
    probe = Consumer(consumer_config(settings.kafka, f"lag-probe-{uuid.uuid4().hex[:8]}"))
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(probe.list_topics(t, timeout=timeout_s).topics[t].partitions)
        ]
        if not partitions:
            return []  # the topics do not exist yet: nothing to be behind on
        ends = probe.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, -1) for tp in partitions], timeout=timeout_s
        )
        positions = (
            stored if stored is not None else _committed(settings, name, partitions, timeout_s)
        )
    except KafkaException as exc:
        raise PersistenceError(f"cannot read offsets: {exc}") from exc
    finally:
        probe.close()
    return [
        PartitionLag(tp.topic, tp.partition, positions.get((tp.topic, tp.partition), -1), tp.offset)
        for tp in ends
    ]


def _stored(name: str, settings: OmiumSettings) -> dict[TP, int]:
    projection = open_projection(name, settings)
    try:
        return projection.stored_offsets()
    finally:
        projection.close()


def _committed(
    settings: OmiumSettings, name: str, partitions: list[TopicPartition], timeout_s: float
) -> dict[TP, int]:
    # Asking for committed offsets with the group's id does not join the group.
    reader = Consumer(consumer_config(settings.kafka, group_id(settings.kafka, name)))
    try:
        found = reader.committed(partitions, timeout=timeout_s)
    finally:
        reader.close()
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}
