"""The runtime recovers in process when its transactional producer is fenced.

Two ways a live instance loses its producer, both on the real Kafka of the local stack: another
producer registers the same transactional id (what a zombie's successor does), and the process is
paused (``SIGSTOP``) past its transaction timeout, so the broker aborts its transaction and bumps
the producer's epoch. Either way the instance must go on (a new producer, state restored, resumed
from the committed offsets) and every decision must still appear exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.streams.base import ProcessorConfig
from tests.streams.conftest import RunningRuntime
from tests.streams.events import failure
from tests.streams.test_runtime import CountingPlanner, _failure, _plans

pytestmark = pytest.mark.integration


def test_a_fenced_producer_is_replaced_and_no_decision_is_lost_or_repeated(
    kafka: KafkaSettings,
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    execution = uuid.uuid4()
    config = config_factory("counting")
    running = runtime_factory(CountingPlanner(), config)
    publish(_failure(execution), _failure(execution))
    assert _plans(read_events, 2) == [1, 2]

    # A second producer with the instance's transactional id fences the instance's producer.
    zombie_successor = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "transactional.id": config.transactional_id}
    )
    zombie_successor.init_transactions(30)

    publish(_failure(execution), _failure(execution))

    assert _plans(read_events, 4) == [1, 2, 3, 4]
    publish(_failure(execution))
    assert _plans(read_events, 5) == [1, 2, 3, 4, 5]
    running.stop()  # raises what the runtime's thread raised, if it died
    assert running.runtime.stats["producer_rebuilds"] >= 1
    # The replaced producer fenced the intruder in turn.
    with pytest.raises(KafkaException, match=r"(?i)fenc|epoch"):
        zombie_successor.begin_transaction()
        zombie_successor.produce(f"{kafka.topic_prefix}.failures", value=b"x")
        zombie_successor.commit_transaction(10)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_worker_paused_past_its_transaction_timeout_carries_on(
    serde: AvroSerde,
    worker_process_factory: Callable[..., subprocess.Popen[bytes]],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    runs = [uuid.uuid4() for _ in range(600)]
    failures = [failure(run, message=f"socket closed after {n}s") for n in range(3) for run in runs]
    worker = worker_process_factory("recovery", instance_id="paused")
    publish(*failures)
    log = tmp_path / "recovery-paused-0.log"

    # Stopped while it works through the backlog, for longer than its 10 s session and
    # transaction timeouts plus the broker's clean-up interval (10 s). When a transaction was
    # open, its offsets are refused (the group moved on: abort and go again) or, when the broker
    # already aborted it, the producer is fenced (replace it). A pause that lands between
    # transactions (nothing in the log) is tried again.
    for pause in range(1, 4):
        read_events(
            "failures",
            count=25 * pause,
            timeout_s=90,
            where=lambda e: e["event_type"] == "RecoveryPlanned",
        )
        worker.send_signal(signal.SIGSTOP)
        try:
            time.sleep(25)
        finally:
            worker.send_signal(signal.SIGCONT)
        if _log_says(log, ("runtime.transaction_aborting", "runtime.producer_recreating"), 20):
            break
    else:
        pytest.fail("no pause landed inside a transaction")  # the test proved nothing

    plans = read_events(
        "failures",
        count=len(failures),
        timeout_s=180,
        settle_s=3.0,
        where=lambda e: e["event_type"] == "RecoveryPlanned",
    )
    assert worker.poll() is None, "the worker exited after the pause"
    per_failure = Counter(str(p["payload"]["failure_id"]) for p in plans)
    assert len(per_failure) == len(failures), "a failure was never planned"
    assert max(per_failure.values()) == 1, "a failure was planned twice"
    attempts: dict[str, list[int]] = {}
    for plan in plans:
        attempts.setdefault(str(plan["payload"]["execution_id"]), []).append(
            plan["payload"]["attempt"]
        )
    # Attempts count on from the restored state: consecutive numbers per run, none repeated.
    for found in attempts.values():
        ordered = sorted(found)
        assert ordered == list(range(ordered[0], ordered[0] + 3)), found


def _log_says(log: Path, texts: tuple[str, ...], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if any(text in content for text in texts):
            return True
        time.sleep(0.5)
    return False
