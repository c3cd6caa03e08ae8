"""Outbox relay: lag from stored to on Kafka at a fixed command rate, and maximum events/s.

Lag: commands run at a fixed offered rate against the real event store (one event each) while
``omium relay`` runs as its own process; a read-committed consumer in this process notes when
each event arrives. Lag = arrival time minus the time the command's transaction returned, both
taken in this process.

Maximum rate: a burst of stored events (relay stopped) is then drained by ``OutboxRelay.run(once)``
in-process; events/s = events / drain time (Kafka transaction commits and PostgreSQL position
writes included). Its peer, in the same run: the messages the relay committed, produced again as
they are by a plain idempotent producer (``relay_vs_kafka_produce``).

Run: ``.venv/bin/python -m bench.relay_lag [--rate 500 --drivers 4 --seconds 30 --burst 20000]``
with the local stack up.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from bench.kafka_baseline import produce_rate, read_messages
from omium.commands import CommandApplications, event_store_env
from omium.commands.executions import Execution
from omium.commands.relay import OutboxRelay, RelayOptions, event_id_for
from omium.kernel.kafka import (
    TopicSpec,
    admin_client,
    consumer_config,
    ensure_topics,
    topic_specs,
)
from omium.kernel.settings import OmiumSettings, load_settings

console = Console()
OMIUM = Path(sys.executable).with_name("omium")
BATCH_SIZE = 500


@contextmanager
def scratch(settings: OmiumSettings, name: str) -> Iterator[tuple[OmiumSettings, str]]:
    """A fresh topic prefix and event store schema, removed afterwards."""
    run_id = uuid.uuid4().hex[:8]
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"bench-{name}-{run_id}"})
    schema = f"bench_{name}_{run_id}"
    ensure_topics(kafka)
    try:
        yield settings.model_copy(update={"kafka": kafka}), schema
    finally:
        admin_client(kafka).delete_topics([s.name for s in topic_specs(kafka)])
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class Arrivals:
    """A read-committed consumer of the executions topic noting when each event id arrives."""

    def __init__(self, settings: OmiumSettings) -> None:
        """Assign every partition from the beginning and start reading in a thread."""
        topic = f"{settings.kafka.topic_prefix}.executions"
        self._consumer = Consumer(consumer_config(settings.kafka, f"bench-{uuid.uuid4().hex}"))
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.seen: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            message = self._consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            arrived = time.time()
            event_id = dict(message.headers() or []).get("event_id")
            if isinstance(event_id, bytes):
                self.seen.setdefault(event_id.decode(), arrived)

    def wait_for(self, event_ids: set[str], timeout_s: float) -> None:
        """Block until every id arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        while not event_ids <= self.seen.keys() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop reading."""
        self._done.set()
        self._thread.join(timeout=5)
        self._consumer.close()


def start_relay(settings: OmiumSettings, schema: str, log: Path) -> subprocess.Popen[bytes]:
    """``omium relay`` on the scratch schema and prefix, as its own process."""
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "OMIUM_RELAY__SCHEMA": schema,
        "OMIUM_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [str(OMIUM), "relay", "--batch-size", str(BATCH_SIZE), "--progress-every", "5"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def drive_commands(apps: CommandApplications, rate: float, seconds: float) -> dict[str, float]:
    """Issue commands at ``rate``/s; return event id → when its transaction returned.

    One run in four is new; the others advance the newest run through schedule, start and
    complete of its next step, so every command stores exactly one event.
    """
    committed: dict[str, float] = {}
    ex, run, step, phase = apps.executions, None, 0, 0
    started, total = time.monotonic(), int(rate * seconds)
    for index in range(total):
        pause = started + index / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if run is None or index % 4 == 0:
            result = ex.start_execution("bench", workflow_id=uuid.uuid4(), workflow_version=1)
            run, step, phase = result.aggregate_id, 0, 0
        else:
            step_id = f"s{step}"
            if phase == 0:
                result = ex.schedule_step("bench", run, step_id=step_id)
            elif phase == 1:
                result = ex.start_step("bench", run, step_id=step_id)
            else:
                result = ex.complete_step("bench", run, step_id=step_id, output={"n": step})
                step += 1
            phase = (phase + 1) % 3
        committed[str(event_id_for(result.aggregate_id, result.version))] = time.time()
    return committed


def drive_in_threads(
    apps: CommandApplications, rate: int, seconds: float, drivers: int
) -> dict[str, float]:
    """``drivers`` threads of :func:`drive_commands`, ``rate / drivers`` commands/s each."""
    results: list[dict[str, float]] = []

    def drive() -> None:
        results.append(drive_commands(apps, rate / drivers, seconds))

    threads = [threading.Thread(target=drive) for _ in range(drivers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {k: v for found in results for k, v in found.items()}


def measure_lag(
    settings: OmiumSettings, rate: int, seconds: float, drivers: int, log_dir: Path
) -> dict[str, Any]:
    """Commands at a fixed rate with the relay running; lag percentiles in milliseconds."""
    with scratch(settings, "lag") as (bench, schema):
        env = event_store_env(bench, schema=schema, pool_size=drivers, max_overflow=2)
        with CommandApplications.create(env) as apps:
            warmup = drive_commands(apps, 10, 0.1)
            relay = start_relay(bench, schema, log_dir / "relay_lag.log")
            arrivals = Arrivals(bench)
            try:
                arrivals.wait_for(set(warmup), 60)
                started = time.monotonic()
                committed = drive_in_threads(apps, rate, seconds, drivers)
                elapsed = time.monotonic() - started
                arrivals.wait_for(set(committed), 60)
            finally:
                relay.send_signal(signal.SIGTERM)
                relay.wait(timeout=30)
                arrivals.close()
    lags = [(arrivals.seen[e] - t) * 1000 for e, t in committed.items() if e in arrivals.seen]
    return {
        "offered_commands_per_s": rate,
        "driver_threads": drivers,
        "achieved_commands_per_s": round(len(committed) / elapsed, 1),
        "events": len(committed),
        "arrived": len(lags),
        "p50_ms": round(percentile(lags, 0.50), 1),
        "p95_ms": round(percentile(lags, 0.95), 1),
        "p99_ms": round(percentile(lags, 0.99), 1),
        "max_ms": round(max(lags, default=float("nan")), 1),
    }


def store_burst(apps: CommandApplications, events: int) -> int:
    """Store about ``events`` events as runs of 25 events (one transaction per run)."""
    stored = 0
    while stored < events:
        run = Execution.start(tenant_id="bench", workflow_id=uuid.uuid4(), workflow_version=1)
        for index in range(8):
            run.schedule_step(f"s{index}", agent="agents.bench:run")
            run.start_step(f"s{index}")
            run.complete_step(f"s{index}", output={"n": index})
        apps.executions.save(run)
        stored += run.version
    return stored


def measure_throughput(settings: OmiumSettings, events: int) -> dict[str, Any]:
    """Drain a stored burst with the relay in this process; then produce the same messages raw.

    The drain is timed from the relay's first batch to its return (its start, once per process,
    is reported apart).

    The peer: every message the relay committed on the executions topic, read back and produced
    again as it is (same keys, values and headers) to a fresh topic by a plain idempotent
    producer (acks=all, lz4, linger 5 ms), in the same run; the fastest of three such produces.
    """
    with scratch(settings, "burst") as (bench, schema):
        with CommandApplications.create(event_store_env(bench, schema=schema)) as apps:
            stored = store_burst(apps, events)
        options = RelayOptions(batch_size=BATCH_SIZE, progress_interval_s=3600)
        with OutboxRelay.create(bench, schema=schema, options=options) as relay:
            first_batch: list[float] = []
            relay_batch = relay.relay_batch

            def timed_batch() -> bool:
                if not first_batch:
                    first_batch.append(time.perf_counter())
                return relay_batch()

            # The drain is timed from its first batch: taking the lead, init_transactions and
            # reading the last position record happen once per start (~1 s here).
            setattr(relay, "relay_batch", timed_batch)  # noqa: B010 - measurement only
            started = time.perf_counter()
            progress = relay.run(once=True)
            elapsed = time.perf_counter() - first_batch[0]
        topic = f"{bench.kafka.topic_prefix}.executions"
        copied = read_messages(bench.kafka, [topic])
        raw_topic = f"{bench.kafka.topic_prefix}.raw"
        kafka = bench.kafka
        ensure_topics(
            kafka, specs=[TopicSpec(raw_topic, kafka.partitions, kafka.replication_factor)]
        )
        same = [(raw_topic, k, v, h) for _, k, v, h in copied]
        # The best of three: one produce of ~1 s varied 20-47k msg/s between runs, and the
        # fastest is the strictest peer.
        raw = max((produce_rate(kafka, same) for _ in range(3)), key=lambda r: r["msgs_per_s"])
        admin_client(kafka).delete_topics([raw_topic])
    return {
        "events": stored,
        "relayed": progress.relayed,
        "batches": progress.batches,
        "seconds": round(elapsed, 2),
        "start_seconds": round(first_batch[0] - started, 2),
        "events_per_s": round(progress.relayed / elapsed),
        "raw_produce": raw,
    }


def run(rate: int, seconds: float, drivers: int, burst: int, log_dir: Path) -> dict[str, Any]:
    """Both measurements on scratch schemas and topics; the results document."""
    settings = load_settings()
    load_before = round(os.getloadavg()[0], 1)
    lag = measure_lag(settings, rate, seconds, drivers, log_dir)
    throughput = measure_throughput(settings, burst)
    load_after = round(os.getloadavg()[0], 1)
    return {
        "benchmark": "relay_lag",
        "machine": {
            **describe_machine(["confluent-kafka", "fastavro", "psycopg", "eventsourcing"]),
            "load_average_1m_before": load_before,
            "load_average_1m_after": load_after,
        },
        "relay": {
            "batch_size": BATCH_SIZE,
            "partitions": settings.kafka.partitions,
            "producer": "idempotent, transactional (one transaction per batch), acks=all, lz4",
            "wake_up": "LISTEN/NOTIFY, 1 s polling fallback",
        },
        "lag": lag,
        "throughput": throughput,
        "ratios": {
            "relay_vs_kafka_produce": round(
                throughput["events_per_s"] / throughput["raw_produce"]["msgs_per_s"], 3
            ),
            f"relay_lag_p99_ms_at_{rate}_commands_per_s": lag["p99_ms"],
        },
        "goals": {
            "relay_vs_kafka_produce": ">= 0.3",
            "relay_lag_p99_ms_at_500_commands_per_s": "<= 50",
        },
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, lag, tp = results["machine"], results["lag"], results["throughput"]
    return "\n".join(
        [
            "## Outbox relay (`python -m bench.relay_lag`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, Python {machine['python']} (1-min load average "
            f"{machine['load_average_1m_before']} before, "
            f"{machine['load_average_1m_after']} after); PostgreSQL event store and "
            f"Kafka of the local stack, {results['relay']['partitions']} partitions; relay batch "
            f"{results['relay']['batch_size']}, {results['relay']['producer']}, "
            f"{results['relay']['wake_up']}. Lag = arrival at a read-committed consumer minus the "
            "return of the command's transaction; the relay runs as its own process.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| lag at {lag['offered_commands_per_s']} commands/s offered "
            f"({lag['achieved_commands_per_s']} achieved, {lag['events']} events) | "
            f"p50 {lag['p50_ms']} ms · p95 {lag['p95_ms']} ms · p99 {lag['p99_ms']} ms · "
            f"max {lag['max_ms']} ms |",
            f"| maximum relay rate (drain of {tp['events']} stored events, {tp['batches']} "
            f"transactions, timed from the first batch) | {tp['events_per_s']} events/s "
            f"({tp['seconds']} s; the relay's start before it: {tp.get('start_seconds', '-')} s) |",
            f"| raw produce of the same {tp['raw_produce']['messages']} messages, same run "
            "(fastest of three) | "
            f"{tp['raw_produce']['msgs_per_s']} msg/s |",
            f"| relay_vs_kafka_produce (goal ≥ 0.3) | "
            f"**{results['ratios']['relay_vs_kafka_produce']}** |",
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/relay_lag.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500, help="offered commands/s for the lag")
    parser.add_argument("--drivers", type=int, default=4, help="threads issuing the commands")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the lag run")
    parser.add_argument("--burst", type=int, default=20_000, help="events for the maximum rate")
    parser.add_argument("--logs", type=Path, default=Path(".omium/logs"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    results = run(args.rate, args.seconds, args.drivers, args.burst, args.logs)
    path = write_results("relay_lag", results)
    update_doc_section("relay_lag", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
