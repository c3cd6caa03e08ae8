"""Crash safety: ``kill -9`` of the relay loses, reorders and duplicates nothing.

One test kills it at a random moment of a burst; the parametrized one kills it at each point of a
batch (``crashing_relay.py``) while writers keep storing events.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from confluent_kafka import Message
from psycopg import sql

from omium.commands import CommandApplications
from omium.commands.relay import POSITIONS_TABLE, event_id_for
from omium.kernel.events import verify_chain
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from tests.commands.relay.crashing_relay import POINTS
from tests.commands.relay.fixtures import key_of, value_of
from tests.commands.relay.scenario import store_burst

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERDE = AvroSerde(default_catalog())
RUNS, STEPS = 200, 8  # 200 runs x 25 events = 5,000 events


@contextmanager
def position_probe(settings: OmiumSettings, schema: str) -> Iterator[Callable[[], int]]:
    """Reads the relay's stored position in the executions log (0 before it has one)."""
    query = sql.SQL("SELECT notification_id FROM {} WHERE application = 'Executions'").format(
        sql.Identifier(schema, POSITIONS_TABLE)
    )
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:

        def position() -> int:
            try:
                row = conn.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
            return 0 if row is None else int(row[0])

        yield position


def check_partition_order(
    messages: list[Message], expected: dict[UUID, int]
) -> tuple[list[dict[str, Any]], int]:
    """Check every key's messages, in partition order; return the deduplicated events.

    Raises AssertionError unless, per aggregate, the first copy of each event comes in version
    order 1..n, and every message that goes back in version re-sends an earlier event byte for
    byte. Returns the events without duplicates and how many duplicates there were.
    """
    by_key: dict[str, list[Message]] = {}
    for message in messages:
        by_key.setdefault(key_of(message), []).append(message)
    assert set(by_key) == {str(a) for a in expected}
    unique: list[dict[str, Any]] = []
    duplicates = 0
    for key, in_order in by_key.items():
        first_copy: dict[Any, bytes] = {}
        versions = []
        for message in in_order:
            value = value_of(message)
            event = SERDE.decode(value)
            if event["event_id"] in first_copy:
                assert first_copy[event["event_id"]] == value, "re-send differs"
                duplicates += 1
                continue
            first_copy[event["event_id"]] = value
            versions.append(event["aggregate_version"])
            unique.append(event)
        assert versions == list(range(1, expected[UUID(key)] + 1)), key
    return unique, duplicates


def test_kill_9_mid_publish_then_restart_loses_nothing_and_keeps_order(
    relay_apps: CommandApplications,
    relay_process_factory: Callable[..., Any],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Callable[..., list[Message]],
) -> None:
    expected = store_burst(relay_apps, "burst", aggregates=RUNS, steps=STEPS)
    total = sum(expected.values())
    assert total == 5_000
    last_id = relay_apps.executions.recorder.max_notification_id() or 0

    relay = relay_process_factory("--batch-size", "50", "--poll-interval", "0.2")
    with position_probe(relay_settings, relay_schema) as position:
        deadline = time.monotonic() + 60
        while position() < 500:
            assert time.monotonic() < deadline, "the relay published nothing within 60s"
            assert relay.poll() is None, "the relay exited early"
            time.sleep(0.005)
        # A batch takes tens of milliseconds; a random pause lands the kill anywhere in the next
        # one: reading, encoding, producing or committing.
        time.sleep(random.uniform(0.0, 0.06))
        relay.send_signal(signal.SIGKILL)
        relay.wait(timeout=30)
        at_kill = position()
    on_kafka_at_kill = len(topic_reader(["executions"]))
    assert 0 < at_kill < last_id, "killed after it finished: nothing was tested"
    assert 0 < on_kafka_at_kill < total

    restarted = relay_process_factory("--once")
    assert restarted.wait(timeout=180) == 0

    messages = topic_reader(["executions"], timeout_s=60)
    on_kafka = {SERDE.decode(value_of(m))["event_id"] for m in messages}
    stored = {event_id_for(a, v) for a, n in expected.items() for v in range(1, n + 1)}
    assert stored <= on_kafka
    unique, duplicates = check_partition_order(messages, expected)
    assert len(unique) == total
    verify_chain(sorted(unique, key=lambda e: (e["aggregate_id"], e["aggregate_version"])))
    written = len(topic_reader(["executions"], committed_only=False))
    print(
        f"killed at position {at_kill}/{last_id} with {on_kafka_at_kill} events on Kafka; "
        f"{len(messages)} committed messages after restart ({duplicates} duplicates), "
        f"{written} written including aborted transactions"
    )


def _offsets(messages: list[Message]) -> set[tuple[str | None, int | None, int | None]]:
    """Where each message is: topic, partition, offset."""
    return {(m.topic(), m.partition(), m.offset()) for m in messages}


class Load:
    """Writer threads storing runs (10 events each, one transaction per run) until stopped."""

    def __init__(self, apps: CommandApplications, threads: int = 2) -> None:
        """Start the writers."""
        self.expected: dict[UUID, int] = {}
        self._apps = apps
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._write, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _write(self) -> None:
        try:
            while not self._stop.wait(0.01):
                self.expected.update(store_burst(self._apps, "load", aggregates=1, steps=3))
        except BaseException as exc:  # reported by stop()
            self._errors.append(exc)

    def stop(self) -> dict[UUID, int]:
        """Stop the writers; return the events stored per run."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not self._errors, self._errors
        return dict(self.expected)


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_each_point_of_a_batch_under_load_publishes_every_event_exactly_once(
    point: str,
    relay_apps: CommandApplications,
    crashing_relay_factory: Callable[..., Any],
    relay_process_factory: Callable[..., Any],
    topic_reader: Callable[..., list[Message]],
) -> None:
    """The relay is killed at ``point`` of its 4th batch while two writers keep storing events.

    At the crash, the part of the batch already on the broker (in its open transaction) is seen
    by a read_uncommitted reader and by no read_committed one, before and after the restart.

    A restarted relay (same transactional id) then drains the store: every stored event is on
    Kafka exactly once (no duplicate, whatever the point), each run's events in version order on
    their partition, every hash chain valid.
    """
    load = Load(relay_apps)
    try:
        relay, log = crashing_relay_factory(point, 4, 50)
        relay.wait(timeout=120)
        time.sleep(0.3)  # writers go on storing after the crash
    finally:
        expected = load.stop()
    output = log.read_text()
    assert relay.returncode == -signal.SIGKILL, output
    died = re.search(rf"SIGKILL at {point} after (\d+) of (\d+) messages", output)
    assert died is not None, output
    produced, size = int(died[1]), int(died[2])
    committed_at_crash = topic_reader(["executions"])
    stored_at_crash = len(committed_at_crash)
    # The killed relay's open transaction: what a read_uncommitted reader sees beyond what a
    # read_committed one does. Its events come first in the batch, its position record (on the
    # position log's topic) last.
    in_flight = _offsets(topic_reader(["executions"], committed_only=False)) - _offsets(
        committed_at_crash
    )
    sent_uncommitted = {"mid_produce": produced, "before_commit": size - 1}.get(point, 0)
    assert len(in_flight) == sent_uncommitted, (point, produced, size)

    restarted = relay_process_factory("--once", "--batch-size", "50")
    assert restarted.wait(timeout=180) == 0

    messages = topic_reader(["executions"], timeout_s=60)
    # Aborted by the restarted relay's init_transactions: never visible to read_committed, still
    # in the log for read_uncommitted.
    assert _offsets(messages).isdisjoint(in_flight)
    assert in_flight <= _offsets(topic_reader(["executions"], committed_only=False))
    counts = Counter(SERDE.decode(value_of(m))["event_id"] for m in messages)
    stored = {event_id_for(a, v) for a, n in expected.items() for v in range(1, n + 1)}
    assert set(counts) == stored
    assert [e for e, n in counts.items() if n > 1] == []  # exactly once: no duplicate at all
    unique, duplicates = check_partition_order(messages, expected)
    assert duplicates == 0
    verify_chain(sorted(unique, key=lambda e: (e["aggregate_id"], e["aggregate_version"])))
    print(
        f"{point}: {stored_at_crash} events on Kafka at the crash ({len(in_flight)} more in the "
        f"killed relay's open transaction), {len(messages)} after the "
        f"restart, {len(stored)} stored by the writers"
    )
