"""Exactly once under kill -9: every decision appears once, none is missing.

A consensus worker process decides thousands of rounds while the votes are still arriving; it is
killed with SIGKILL mid-stream and restarted (or, in the rebalance test, a second instance sharing
the partitions is killed and the survivor takes its partitions over).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from omium.kernel.kafka import EventProducer
from tests.streams.events import failure, round_opened, vote

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 1500  # 1,500 opens + 4,500 votes in flight


def _publish_paced(
    kafka, serde, batches: list[list[dict]], go: threading.Event
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


def _round_batches(rounds: list[uuid.UUID], chunk: int = 100) -> list[list[dict]]:
    batches = []
    for start in range(0, len(rounds), chunk):
        batch = []
        for round_id in rounds[start : start + chunk]:
            batch.append(round_opened(round_id, ["a", "b", "c"]))
            batch += [vote(round_id, voter, "yes") for voter in ("a", "b", "c")]
        batches.append(batch)
    return batches


def _kill_mid_stream(process, publisher: threading.Thread, go: threading.Event) -> None:
    go.set()
    time.sleep(0.5)
    assert publisher.is_alive(), "the kill must land while events are still arriving"
    process.kill()  # SIGKILL: no clean shutdown, a transaction may be open
    process.wait(10)


def _wait_for_some(read_events, count: int) -> None:
    found = read_events(
        "consensus",
        count=count,
        timeout_s=60,
        where=lambda e: e["event_type"] == "ConsensusReached",
    )
    assert len(found) >= count, "the worker decided nothing before the kill"


def _check_exactly_once(read_events, rounds: list[uuid.UUID]) -> None:
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
    kafka, serde, worker_process_factory, read_events
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
    kafka, serde, worker_process_factory, read_events
) -> None:
    rounds = [uuid.uuid4() for _ in range(ROUNDS)]
    survivor = worker_process_factory("consensus", instance_id="left")
    victim = worker_process_factory("consensus", instance_id="right")
    time.sleep(3)  # let both join, so the partitions are shared
    go = threading.Event()
    publisher = _publish_paced(kafka, serde, _round_batches(rounds), go)

    _wait_for_some(read_events, 50)
    _kill_mid_stream(victim, publisher, go)
    publisher.join(120)

    _check_exactly_once(read_events, rounds)
    assert survivor.poll() is None, "the surviving instance died"


def test_kill_9_of_the_recovery_worker_never_resets_or_double_counts_attempts(
    kafka, serde, worker_process_factory, read_events
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
