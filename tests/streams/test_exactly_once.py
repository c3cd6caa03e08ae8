"""Exactly once under kill -9: every decision appears once, none is missing.

A consensus worker process decides thousands of rounds while the votes are still arriving; it is
killed with SIGKILL mid-stream and restarted (or, in the rebalance test, a second instance sharing
the partitions is killed and the survivor takes its partitions over).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, TopicPartition

from omium.kernel.kafka import EventProducer, admin_client, consumer_config
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from tests.streams.conftest import member_client_id
from tests.streams.events import failure, round_opened, vote

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = TypeVar("T")
ROUNDS = 1500  # 1,500 opens + 4,500 votes in flight


def _publish_paced(
    kafka: KafkaSettings, serde: AvroSerde, batches: list[list[dict[str, Any]]], go: threading.Event
) -> threading.Thread:
    """Publishes the first batch, waits for ``go``, then the rest over a few seconds."""

    def run() -> None:
        with EventProducer(kafka, serde) as producer:
            for index, batch in enumerate(batches):
                for event in batch:
                    producer.publish(event)
                producer.flush()
                if index == 0:
                    go.wait(120)  # the worker is up and deciding: now keep events coming
                time.sleep(0.15)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _round_batches(rounds: list[uuid.UUID], chunk: int = 100) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    for start in range(0, len(rounds), chunk):
        batch = []
        for round_id in rounds[start : start + chunk]:
            batch.append(round_opened(round_id, ["a", "b", "c"]))
            batch += [vote(round_id, voter, "yes") for voter in ("a", "b", "c")]
        batches.append(batch)
    return batches


def _kill_mid_stream(
    process: subprocess.Popen[bytes], publisher: threading.Thread, go: threading.Event
) -> None:
    go.set()
    time.sleep(0.5)
    assert publisher.is_alive(), "the kill must land while events are still arriving"
    process.kill()  # SIGKILL: no clean shutdown, a transaction may be open
    process.wait(10)


def wait_until(condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """The first true answer of ``condition``, asked every 0.05 s for up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class GroupProbe:
    """Reads a processor's consumer group from the outside: who owns which partitions, and how
    many input events wait on them (end offset minus the group's committed offset)."""

    def __init__(self, kafka: KafkaSettings, app_id: str) -> None:
        """Open an admin client and a consumer that never joins the group."""
        self._kafka = kafka
        self._group = f"{kafka.topic_prefix}.streams.{app_id}"
        self._admin = admin_client(kafka)
        self._offsets = Consumer(consumer_config(kafka, self._group))

    def owned(self, instance_id: str) -> list[TopicPartition]:
        """The partitions the instance's member is assigned now (empty if not a member)."""
        [future] = self._admin.describe_consumer_groups([self._group]).values()
        prefix = member_client_id(self._kafka, instance_id)
        return [
            TopicPartition(tp.topic, tp.partition)
            for member in future.result(timeout=10).members
            if member.client_id.startswith(prefix)
            for tp in member.assignment.topic_partitions
        ]

    def in_flight(self, instance_id: str) -> dict[str, int] | None:
        """Uncommitted input per owned partition, if some of its partitions hold a backlog.

        The input topics also carry the processors' own transactional output, whose commit
        markers take an offset each: a backlog counts only beyond a few of them.
        """
        owned = self.owned(instance_id)
        if not owned:
            return None
        waiting: dict[str, int] = {}
        for tp in self._offsets.committed(owned, timeout=10):
            _, end = self._offsets.get_watermark_offsets(tp, timeout=10)
            waiting[f"{tp.topic}[{tp.partition}]"] = end - max(tp.offset, 0)
        return waiting if max(waiting.values()) > _MARKER_SLACK else None

    def close(self) -> None:
        """Close the offsets consumer."""
        self._offsets.close()


_MARKER_SLACK = 5


def _wait_for_some(read_events: Callable[..., list[dict[str, Any]]], count: int) -> None:
    found = read_events(
        "consensus",
        count=count,
        timeout_s=60,
        where=lambda e: e["event_type"] == "ConsensusReached",
    )
    assert len(found) >= count, "the worker decided nothing before the kill"


def _check_exactly_once(
    read_events: Callable[..., list[dict[str, Any]]], rounds: list[uuid.UUID]
) -> None:
    outputs = read_events(
        "consensus",
        count=2 * len(rounds),
        timeout_s=120,
        settle_s=3.0,
        where=lambda e: e["event_type"] in ("ConsensusReached", "VoteRejected"),
    )
    decided = Counter(
        str(e["correlation_id"]) for e in outputs if e["event_type"] == "ConsensusReached"
    )
    rejected = Counter(
        str(e["correlation_id"]) for e in outputs if e["event_type"] == "VoteRejected"
    )
    missing = {str(r) for r in rounds} - set(decided)
    assert not missing, f"{len(missing)} rounds never decided"
    assert max(decided.values()) == 1, "a round was decided twice"
    assert len(decided) == len(rounds)
    # The third vote of every round came after the decision: refused exactly once.
    assert len(rejected) == len(rounds) and max(rejected.values()) == 1
    commands = read_events("commands", count=len(rounds), timeout_s=60, settle_s=2.0)
    assert Counter(str(c["payload"]["target_id"]) for c in commands) == Counter(
        {str(r): 1 for r in rounds}
    )


def test_kill_9_mid_stream_then_restart_decides_every_round_once(
    kafka: KafkaSettings,
    serde: AvroSerde,
    worker_process_factory: Callable[..., subprocess.Popen[bytes]],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    rounds = [uuid.uuid4() for _ in range(ROUNDS)]
    worker = worker_process_factory("consensus", instance_id="solo")
    go = threading.Event()
    publisher = _publish_paced(kafka, serde, _round_batches(rounds), go)

    _wait_for_some(read_events, 50)
    _kill_mid_stream(worker, publisher, go)
    worker_process_factory("consensus", instance_id="solo")
    publisher.join(120)

    _check_exactly_once(read_events, rounds)


def test_kill_9_of_one_of_two_instances_hands_its_partitions_to_the_other(
    kafka: KafkaSettings,
    serde: AvroSerde,
    worker_process_factory: Callable[..., subprocess.Popen[bytes]],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    """The victim is killed only once it owns partitions (per the consumer group, as Kafka
    sees it) and events it has not committed yet wait on them, while more keep arriving."""
    rounds = [uuid.uuid4() for _ in range(ROUNDS)]
    survivor = worker_process_factory("consensus", instance_id="left")
    victim = worker_process_factory("consensus", instance_id="right")
    group = GroupProbe(kafka, "consensus")
    # Both joined and the partitions are shared.
    wait_until(lambda: group.owned("left") and group.owned("right"), 60, "both to own partitions")
    go = threading.Event()
    publisher = _publish_paced(kafka, serde, _round_batches(rounds), go)

    _wait_for_some(read_events, 50)
    go.set()
    owned = wait_until(lambda: group.in_flight("right"), 60, "work in flight on the victim")
    assert publisher.is_alive(), "the kill must land while events are still arriving"
    victim.kill()  # SIGKILL: no clean shutdown, a transaction may be open
    victim.wait(10)
    group.close()
    publisher.join(120)

    _check_exactly_once(read_events, rounds)
    assert survivor.poll() is None, "the surviving instance died"
    print(f"killed owning {owned}")


def test_kill_9_of_the_recovery_worker_never_resets_or_double_counts_attempts(
    kafka: KafkaSettings,
    serde: AvroSerde,
    worker_process_factory: Callable[..., subprocess.Popen[bytes]],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    runs = [uuid.uuid4() for _ in range(400)]  # 1,200 failures in flight, three per run

    batches = [
        [
            failure(run, message=f"socket closed after {attempt}s")
            for run in runs[start : start + 50]
        ]
        for attempt in range(3)
        for start in range(0, len(runs), 50)
    ]
    worker = worker_process_factory("recovery", instance_id="rec")
    go = threading.Event()
    publisher = _publish_paced(kafka, serde, batches, go)
    read_events(
        "failures", count=25, timeout_s=60, where=lambda e: e["event_type"] == "RecoveryPlanned"
    )
    _kill_mid_stream(worker, publisher, go)
    worker_process_factory("recovery", instance_id="rec")
    publisher.join(120)

    plans = read_events(
        "failures",
        count=3 * len(runs),
        timeout_s=120,
        settle_s=3.0,
        where=lambda e: e["event_type"] == "RecoveryPlanned",
    )
    assert len(plans) == 3 * len(runs), "a failure was planned twice or not at all"
    attempts: dict[str, list[int]] = {}
    for plan in plans:
        attempts.setdefault(str(plan["payload"]["execution_id"]), []).append(
            plan["payload"]["attempt"]
        )
    assert all(sorted(found) == [2, 3, 4] for found in attempts.values())
    assert len(attempts) == len(runs)
