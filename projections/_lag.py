"""How far each projection is behind: its resume point versus the end of every partition."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from confluent_kafka import Consumer, KafkaException, TopicPartition

from omium.kernel.errors import PersistenceError
from omium.kernel.kafka import consumer_config
from omium.kernel.settings import OmiumSettings
from omium.projections._registry import KINDS, group_id, open_projection, topics_of
from omium.projections.base.errors import TopicPartition as TP
from omium.projections.base.errors import UnknownProjectionError

# Gaps up to this many offsets are read to count their records (commit markers are not).
_COUNT_AT_MOST = 4
_COUNT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class PartitionLag:
    """One partition of one projection.

    Attributes:
        topic: The topic.
        partition: The partition.
        position: Where the projection resumes (-1: nothing applied yet).
        end: The partition's end offset (last stable offset).
        records: The committed records between the two, when they were read (a small gap).
    """

    topic: str
    partition: int
    position: int
    end: int
    records: int | None = None

    @property
    def lag(self) -> int:
        """Messages not yet applied: ``records`` when they were counted, else the offsets
        between the resume point and the end (transaction markers take offsets too)."""
        if self.records is not None:
            return self.records
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
        rows = [
            PartitionLag(
                tp.topic, tp.partition, positions.get((tp.topic, tp.partition), -1), tp.offset
            )
            for tp in ends
        ]
        return _with_records_counted(probe, rows, min(timeout_s, _COUNT_TIMEOUT_S))
    except KafkaException as exc:
        raise PersistenceError(f"cannot read offsets: {exc}") from exc
    finally:
        probe.close()


def _with_records_counted(
    probe: Consumer, rows: list[PartitionLag], timeout_s: float
) -> list[PartitionLag]:
    """Rows whose gap is small, with the committed records in it counted.

    A transactional producer's commit marker takes an offset, so a partition whose last entry is
    a marker ends one past its last record, and a projection that applied everything looked one
    behind. Reading the gap (read_committed skips markers; the position moves past them) tells.
    A partition not read to its end in time keeps the offset estimate.
    """
    small = {(r.topic, r.partition): r for r in rows if 0 < r.lag <= _COUNT_AT_MOST}
    if not small:
        return rows
    probe.assign([TopicPartition(t, p, max(r.position, 0)) for (t, p), r in small.items()])
    counted = dict.fromkeys(small, 0)
    reading = set(small)
    deadline = time.monotonic() + timeout_s
    while reading and time.monotonic() < deadline:
        for message in probe.consume(_COUNT_AT_MOST * len(small), 0.1):
            key = (message.topic() or "", message.partition() or 0)
            if message.error() is None and key in reading:
                counted[key] += (message.offset() or 0) < small[key].end
        for tp in probe.position([TopicPartition(t, p) for t, p in reading]):
            if tp.offset >= small[(tp.topic, tp.partition)].end:
                reading.discard((tp.topic, tp.partition))
    return [
        replace(r, records=counted[key])
        if (key := (r.topic, r.partition)) in small and key not in reading
        else r
        for r in rows
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
