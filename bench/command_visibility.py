"""Command → visible in the PostgreSQL read model, through the whole path, at a fixed rate.

Issue 11's Kafka end-to-end target: a command is visible in the read model within p99 100 ms
at 200 commands/s. Every command takes the production path: HTTP to the gateway (JWT, Redis
rate limiter, the command handler on the PostgreSQL event store, the audit event acknowledged
by Kafka), ``omium relay`` (outbox → Kafka, one transaction per batch), ``omium project
postgres`` (Kafka → the read model's tables). The gateway (uvicorn, one worker, as
``omium gateway``; served like ``bench.command_latency``'s because ``omium gateway`` always
uses the default event store), the relay and the projection run as their own processes on a
fresh event-store schema and topic prefix, removed afterwards.

The command is ``POST /api/v1/executions`` (start a run of a registered one-step workflow): one
``ExecutionStarted`` event, one new row in the read model's ``executions`` table. Commands are
sent open loop on a fixed schedule (``--rate`` commands/s for ``--duration`` s, after a probe
and a ``--warmup`` at the same rate whose rows must all be visible before the clock starts).

Visibility: a thread in this process polls the read model every ``--poll-ms`` with one query
for the rows started since the oldest command not yet seen (index on tenant, started_at). A
row's visible time is the end of the first poll that returned it, so the figure can be late by
at most one poll interval plus one query; both are measured and reported. command → visible
is counted from when this process sent the request, ack → visible from when it read the answer.

Where the time goes, per command, from timestamps read where they are written (one clock: every
process is on this machine): the event's ``occurred_at`` (the gateway's command handler; the
row's ``started_at``), the Kafka record's timestamp (the relay's ``produce`` call), the arrival
at a read-committed consumer in this process (the relay's transaction committed and fetched),
and the row's visible time.

Run: ``.venv/bin/python -m bench.command_visibility [--rate 200 --duration 30]`` with the
local stack up. Writes ``bench/results/command_visibility.json`` and its section in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import ROOT, percentile, update_doc_section, write_results
from bench.command_latency import serve
from omium.gateway import mint_token
from omium.kernel.kafka import admin_client, consumer_config, ensure_topics, topic_specs
from omium.kernel.settings import OmiumSettings, load_settings
from omium.projections.postgres import schema_for

console = Console()
OMIUM = Path(sys.executable).with_name("omium")
TENANT = "bench"
GOAL_P99_MS = 100.0
TARGET_RATE = 200.0
# The load: this many HTTP clients of this many connections each (512 in all), used in turn.
CLIENTS = 16
CONNECTIONS_PER_CLIENT = 32
# A row's started_at is the event's occurred_at, taken in the gateway after the request was
# sent; the margin only covers rounding, so the poll's window never starts after a row's time.
WINDOW_MARGIN_S = 0.1


@dataclass
class Command:
    """One start-run command: when it was due, sent and answered, and which run it started."""

    due_at: float
    sent_at: float = 0.0
    acked_at: float | None = None
    status: int | None = None
    execution_id: str | None = None


@dataclass(frozen=True)
class Record:
    """A run's ExecutionStarted on Kafka: where, its timestamp, when it reached this process."""

    partition: int
    offset: int
    stamped_at: float
    arrived_at: float


# --- the processes ----------------------------------------------------------------------------


@contextmanager
def scratch(base: OmiumSettings) -> Iterator[tuple[OmiumSettings, str]]:
    """A fresh topic prefix and event-store schema; topics and schemas removed afterwards."""
    run_id = uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(update={"topic_prefix": f"bench-cmdvis-{run_id}"})
    event_store = f"bench_cmdvis_{run_id}"
    ensure_topics(kafka)
    try:
        yield base.model_copy(update={"kafka": kafka}), event_store
    finally:
        admin_client(kafka).delete_topics([s.name for s in topic_specs(kafka)])
        with psycopg.connect(base.postgres.dsn(), autocommit=True) as conn:
            for schema in (event_store, schema_for(kafka.topic_prefix)):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@contextmanager
def pipeline(settings: OmiumSettings, event_store: str, logs: Path) -> Iterator[None]:
    """``omium relay`` and ``omium project postgres`` on the scratch schema and prefix."""
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "OMIUM_RELAY__SCHEMA": event_store,
        "OMIUM_LOG_LEVEL": "WARNING",
    }
    commands = {
        "relay": [str(OMIUM), "relay", "--progress-every", "60"],
        "project-postgres": [str(OMIUM), "project", "postgres", "--report-every-s", "60"],
    }
    processes = []
    try:
        for name, argv in commands.items():
            log = (logs / f"command_visibility-{name}.log").open("wb")
            processes.append(
                subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            )
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- watching the path ------------------------------------------------------------------------


class ReadModelWatch:
    """A thread polling the read model: when each run's row appeared, and the projection's
    transactions on the executions topic.

    Each poll is one statement (one snapshot): the rows started since the oldest command not
    yet seen (or not yet answered), so it stays small however many runs the table holds, and
    the projection's stored offsets of the executions topic. An offset row is written in the
    same transaction as the rows of its batch, with ``updated_at = now()``: that
    transaction's start.
    """

    def __init__(self, settings: OmiumSettings, commands: list[Command], interval_s: float):
        """Start polling every ``interval_s`` for the rows of ``commands`` (a list the load
        appends to while this thread reads it)."""
        schema = schema_for(settings.kafka.topic_prefix)
        self._query = sql.SQL(
            "SELECT execution_id, NULL::int, NULL::bigint, NULL::float8 FROM {} "
            "WHERE tenant_id = %s AND started_at >= %s UNION ALL "
            "SELECT NULL, partition, next_offset, extract(epoch FROM updated_at)::float8 "
            "FROM {} WHERE topic = %s"
        ).format(sql.Identifier(schema, "executions"), sql.Identifier(schema, "projection_offsets"))
        self._topic = f"{settings.kafka.topic_prefix}.executions"
        self._dsn = settings.postgres.dsn()
        self._commands, self._interval_s = commands, interval_s
        self._front = 0
        self.seen: dict[str, float] = {}
        # partition → (next offset, start of the transaction that stored it), as they changed
        self.applied: dict[int, list[tuple[int, float]]] = {}
        self.polls: list[tuple[float, float]] = []  # (sent, answered) of each query
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _window_start(self) -> float:
        """The due time of the oldest command that may still bring a row (now if none)."""
        commands = self._commands
        while self._front < len(commands):
            command = commands[self._front]
            answered = command.status is not None
            if not answered or (command.status == 201 and command.execution_id not in self.seen):
                return command.due_at - WINDOW_MARGIN_S
            self._front += 1
        return time.time() - WINDOW_MARGIN_S

    def _run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            query = self._query.as_string(conn)  # composed once, not at every poll
            while not self._done.is_set():
                since = datetime.fromtimestamp(self._window_start(), UTC)
                sent = time.time()
                try:
                    rows = conn.execute(query, (TENANT, since, self._topic)).fetchall()
                except psycopg.errors.UndefinedTable:  # the projection has not migrated yet
                    rows = []
                answered = time.time()
                self.polls.append((sent, answered))
                self._note(rows, answered)
                self._done.wait(max(0.0, self._interval_s - (answered - sent)))

    def _note(self, rows: list[tuple[Any, ...]], answered: float) -> None:
        for execution_id, partition, next_offset, started in rows:
            if execution_id is not None:
                self.seen.setdefault(execution_id, answered)
                continue
            history = self.applied.setdefault(partition, [])
            if not history or history[-1][0] != next_offset:
                history.append((next_offset, started))

    def transaction_start(self, partition: int, offset: int) -> float | None:
        """When the projection's transaction that applied ``offset`` began (None: not seen).

        The first stored next offset past ``offset``; when two transactions committed between
        two polls, the later one's start (too late by less than a poll interval).
        """
        for next_offset, started in self.applied.get(partition, []):
            if next_offset > offset:
                return started
        return None

    def wait_for(self, commands: list[Command], timeout_s: float) -> bool:
        """Block until every accepted command's row was seen; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(c.execution_id in self.seen for c in commands if c.status == 201):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop polling."""
        self._done.set()
        self._thread.join(timeout=10)


class KafkaWatch:
    """A read-committed consumer of the executions topic: each run's ExecutionStarted record.

    Notes the record's timestamp (set by the relay's ``produce``) and when it reached this
    consumer, i.e. after the relay's transaction committed.
    """

    def __init__(self, settings: OmiumSettings) -> None:
        """Assign every partition from the beginning and start reading in a thread."""
        topic = f"{settings.kafka.topic_prefix}.executions"
        self._consumer = Consumer(consumer_config(settings.kafka, f"bench-{uuid.uuid4().hex}"))
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.records: dict[str, Record] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            message = self._consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            arrived = time.time()
            headers = dict(message.headers() or [])
            key = message.key()
            if headers.get("event_type") == b"ExecutionStarted" and isinstance(key, bytes):
                stamped = message.timestamp()[1] / 1000
                record = Record(message.partition() or 0, message.offset() or 0, stamped, arrived)
                self.records.setdefault(key.decode(), record)

    def close(self) -> None:
        """Stop reading."""
        self._done.set()
        self._thread.join(timeout=10)
        self._consumer.close()


# --- the load ---------------------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, workflow_id: str, command: Command) -> None:
    command.sent_at = time.time()
    try:
        response = await client.post(
            "/executions",
            json={"workflow_id": workflow_id, "workflow_version": 1, "input": {"ticket": 42}},
        )
    except httpx.HTTPError:
        command.acked_at, command.status = time.time(), 0
        return
    command.acked_at = time.time()
    if response.status_code == 201:
        command.execution_id = response.json()["execution_id"]
    command.status = response.status_code


async def drive(
    clients: Sequence[httpx.AsyncClient],
    workflow_id: str,
    rate: float,
    duration_s: float,
    into: list[Command],
) -> list[Command]:
    """Send start-run commands at ``rate``/s for ``duration_s`` (open loop); wait for answers.

    Commands take the clients in turn (see ``load`` for why there are several).
    """
    count = max(1, round(rate * duration_s))
    started = time.time()
    batch, tasks = [], []
    for index in range(count):
        command = Command(due_at=started + index / rate)
        delay = command.due_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        into.append(command)
        batch.append(command)
        client = clients[index % len(clients)]
        tasks.append(asyncio.create_task(_send(client, workflow_id, command)))
    await asyncio.gather(*tasks)
    return batch


async def register_workflow(client: httpx.AsyncClient) -> str:
    """A one-step workflow for the runs; its id."""
    created = await client.post(
        "/workflows",
        json={
            "name": f"bench-{uuid.uuid4().hex[:8]}",
            "definition": {"steps": [{"id": "answer", "agent": "agents.answer"}]},
        },
    )
    created.raise_for_status()
    return str(created.json()["workflow_id"])


async def load(
    url: str,
    settings: OmiumSettings,
    watch: ReadModelWatch,
    commands: list[Command],
    args: argparse.Namespace,
) -> list[Command]:
    """Probe, warm up (both visible before going on), then the measured commands.

    Every command is appended to ``commands``, the list ``watch`` follows.
    """
    token = mint_token(settings, subject="bench", tenant_id=TENANT, roles=["developer"])
    headers = {"Authorization": f"Bearer {token}"}
    # Several small pools, not one of 512 connections: httpcore looks at every connection of
    # its pool for each request, and with one big pool that scan was 45% of this process's
    # CPU (py-spy); the load generator then saturated its core at ~50 commands/s while the
    # gateway used a third of one (docs/benchmarks.md).
    limits = httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"{url}/api/v1", headers=headers, limits=limits, timeout=30
                )
            )
            for _ in range(CLIENTS)
        ]
        workflow_id = await register_workflow(clients[0])
        probe = await drive(clients, workflow_id, 1, 1, commands)
        if not await asyncio.to_thread(watch.wait_for, probe, 180):
            raise RuntimeError("the probe's run never showed in the read model (see the logs)")
        warmup = await drive(clients, workflow_id, args.rate, args.warmup, commands)
        if not await asyncio.to_thread(watch.wait_for, warmup, 120):
            raise RuntimeError("the warm-up's runs did not all show in the read model")
        console.print(f"measuring: {args.rate} commands/s for {args.duration} s")
        measured = await drive(clients, workflow_id, args.rate, args.duration, commands)
        if not await asyncio.to_thread(watch.wait_for, measured, 120):
            console.print("[yellow]some runs were not visible 120 s after the last answer[/]")
    return measured


# --- the figures ------------------------------------------------------------------------------


def distribution(values: list[float]) -> dict[str, Any]:
    """Count, mean and p50/p95/p99/max of millisecond values."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean_ms": round(sum(values) / len(values), 2),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
    }


def occurred_at(settings: OmiumSettings, runs: list[str]) -> dict[str, float]:
    """Each run's ``started_at`` in the read model (the event's occurred_at), epoch seconds."""
    table = sql.Identifier(schema_for(settings.kafka.topic_prefix), "executions")
    query = sql.SQL(
        "SELECT execution_id, extract(epoch FROM started_at)::float8 FROM {} "
        "WHERE tenant_id = %s AND execution_id = ANY(%s)"
    ).format(table)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        return {str(run): float(at) for run, at in conn.execute(query, (TENANT, runs))}


def segments(
    visible: list[Command], watch: ReadModelWatch, kafka: KafkaWatch, occurred: dict[str, float]
) -> dict[str, Any]:
    """Each run's path split into consecutive stages (ms), and the relay's commit beside it.

    sent → event created (occurred_at) → Kafka record timestamp → the projection's transaction
    start → visible. ``kafka_record_to_consumer`` (a read-committed consumer in this process)
    is the part of the third stage before the relay's transaction was readable.
    """
    stages: dict[str, list[float]] = {
        "sent_to_event_created": [],
        "event_created_to_kafka_record": [],
        "kafka_record_to_projection_transaction": [],
        "projection_transaction_to_visible": [],
    }
    committed: list[float] = []
    for command in visible:
        run = command.execution_id or ""
        record = kafka.records.get(run)
        applied = watch.transaction_start(record.partition, record.offset) if record else None
        if record is None or applied is None or run not in occurred:
            continue
        points = [command.sent_at, occurred[run], record.stamped_at, applied, watch.seen[run]]
        for name, (start, end) in zip(stages, itertools.pairwise(points), strict=True):
            stages[name].append((end - start) * 1000)
        committed.append((record.arrived_at - record.stamped_at) * 1000)
    return {
        **{name: distribution(values) for name, values in stages.items()},
        "kafka_record_to_consumer": distribution(committed),
    }


def poll_resolution(polls: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """How often the read model was polled during the measured commands, and each query's time."""
    during = [p for p in polls if start <= p[0] <= end]
    gaps = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(during)]
    return {
        "polls": len(during),
        "interval": distribution(gaps),
        "query": distribution([(answered - sent) * 1000 for sent, answered in during]),
    }


def summarize(
    measured: list[Command], watch: ReadModelWatch, kafka: KafkaWatch, settings: OmiumSettings
) -> dict[str, Any]:
    """Rates, errors, the three latency distributions, the stages and the poll resolution."""
    accepted = [c for c in measured if c.status == 201]
    seen = dict(watch.seen)
    visible = [c for c in accepted if c.execution_id in seen]
    first, last = measured[0].due_at, max(c.acked_at or c.sent_at for c in measured)
    statuses = Counter(str(c.status) for c in measured)
    occurred = occurred_at(settings, [c.execution_id or "" for c in visible])
    return {
        "commands": len(measured),
        "accepted": len(accepted),
        "errors": len(measured) - len(accepted),
        "statuses": dict(sorted(statuses.items())),
        "visible": len(visible),
        "not_visible": len(accepted) - len(visible),
        "elapsed_s": round(last - first, 2),
        "achieved_commands_per_s": round(len(accepted) / (last - first), 1),
        "send_lag": distribution([(c.sent_at - c.due_at) * 1000 for c in measured]),
        "send_to_ack": distribution([((c.acked_at or 0) - c.sent_at) * 1000 for c in accepted]),
        "command_to_visible": distribution(
            [(seen[c.execution_id or ""] - c.sent_at) * 1000 for c in visible]
        ),
        "ack_to_visible": distribution(
            [(seen[c.execution_id or ""] - (c.acked_at or 0)) * 1000 for c in visible]
        ),
        "stages": segments(visible, watch, kafka, occurred),
        "poll": poll_resolution(list(watch.polls), first, last),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline on scratch data, the load, the figures; the results document."""
    base = load_settings()
    # Other work on the machine skews every figure: record how busy it was.
    load_before = os.getloadavg()
    with (
        scratch(base) as (settings, event_store),
        serve("bench.command_latency:bench_app", settings, event_store) as url,
        pipeline(settings, event_store, args.logs),
    ):
        kafka = KafkaWatch(settings)
        commands: list[Command] = []
        watch = ReadModelWatch(settings, commands, args.poll_ms / 1000)
        try:
            measured = asyncio.run(load(url, settings, watch, commands, args))
        finally:
            watch.close()
            kafka.close()
        figures = summarize(measured, watch, kafka, settings)
    load_after = os.getloadavg()
    return document(args, settings, figures, load_before, load_after)


def document(
    args: argparse.Namespace,
    settings: OmiumSettings,
    figures: dict[str, Any],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    """The results file's content: machine, setup, load average, figures, ratios and goals."""
    p99 = figures["command_to_visible"].get("p99_ms")
    return {
        "benchmark": "command_visibility",
        "machine": describe_machine(
            ["fastapi", "uvicorn", "eventsourcing", "psycopg", "confluent-kafka", "httpx", "omium"]
        ),
        "setup": {
            "command": "POST /api/v1/executions (start a run of a one-step workflow): one "
            "ExecutionStarted event, one new row in the read model's executions table",
            "path": "gateway (uvicorn, 1 worker; JWT, Redis rate limiter on an unmetered tier, "
            "PostgreSQL event store, audit acknowledged by Kafka) -> omium relay -> Kafka "
            "(read-committed) -> omium project postgres -> read model",
            "load": f"open loop, {CLIENTS} httpx.AsyncClient of {CONNECTIONS_PER_CLIENT} "
            "connections each, used in turn, on the same machine",
            "offered_commands_per_s": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "poll_interval_ms": args.poll_ms,
            "visible_time": "end of the first read-model poll whose answer held the row",
            "partitions": settings.kafka.partitions,
        },
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        **figures,
        "ratios": {
            "command_to_visible_p99_ms_vs_goal": round(p99 / GOAL_P99_MS, 3) if p99 else None,
            "achieved_vs_target_rate": round(figures["achieved_commands_per_s"] / TARGET_RATE, 3),
        },
        "goals": {
            "command_to_visible_p99_ms": f"<= {GOAL_P99_MS:g} at {TARGET_RATE:g} commands/s",
        },
    }


def _cells(d: dict[str, Any]) -> str:
    if not d.get("count"):
        return "— | — | — | — | —"
    return f"{d['p50_ms']} | {d['p95_ms']} | {d['p99_ms']} | {d['max_ms']} | {d['mean_ms']}"


def to_markdown(results: dict[str, Any]) -> str:
    """The docs section for one run."""
    machine, setup, load = results["machine"], results["setup"], results["load_average"]
    stages, poll, ratios = results["stages"], results["poll"], results["ratios"]
    stage_names = {
        "sent_to_event_created": "sent → event created (gateway: HTTP, auth, limiter, handler)",
        "event_created_to_kafka_record": "event created → Kafka record timestamp (commit, "
        "relay wakes, reads, maps, produces)",
        "kafka_record_to_projection_transaction": "Kafka record → projection transaction "
        "start (relay's commit, fetch, decode, map, earlier batches)",
        "kafka_record_to_consumer": "  of which: Kafka record → read-committed consumer "
        "(relay's transaction commit, fetch)",
        "projection_transaction_to_visible": "projection transaction start → visible (write, "
        "commit; + this bench's poll)",
    }
    return "\n".join(
        [
            "## Command → visible in the read model (`python -m bench.command_visibility`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, Python {machine['python']}; load average before "
            f"{load['before']}, after {load['after']}. `POST /api/v1/executions` (one "
            "`ExecutionStarted`, one new `executions` row) sent open loop at "
            f"{setup['offered_commands_per_s']} commands/s for {setup['duration_s']} s after a "
            f"{setup['warmup_s']} s warm-up, through a one-worker uvicorn gateway, `omium relay` "
            "and `omium project postgres` (own processes, fresh schema and topic prefix, "
            f"{setup['partitions']} partitions). Visible = the end of the first read-model poll "
            f"(every {setup['poll_interval_ms']} ms, one query) that returned the row: measured "
            f"poll interval p50 {poll['interval'].get('p50_ms')} ms · p99 "
            f"{poll['interval'].get('p99_ms')} ms, query p50 {poll['query'].get('p50_ms')} ms.",
            "",
            f"**{results['achieved_commands_per_s']} commands/s achieved** "
            f"({results['accepted']} accepted of {results['commands']}, {results['errors']} "
            f"errors, {results['not_visible']} never visible); **command → visible p99 "
            f"{results['command_to_visible'].get('p99_ms')} ms** (goal ≤ 100 ms at 200/s).",
            "",
            "| measure (ms) | p50 | p95 | p99 | max | mean |",
            "|---|---|---|---|---|---|",
            f"| **command sent → visible** | {_cells(results['command_to_visible'])} |",
            f"| answer read → visible | {_cells(results['ack_to_visible'])} |",
            f"| sent → answer (gateway) | {_cells(results['send_to_ack'])} |",
            *(f"| {label} | {_cells(stages[name])} |" for name, label in stage_names.items()),
            f"| this bench: due → sent (open-loop lag) | {_cells(results['send_lag'])} |",
            "",
            "| ratio | value | goal |",
            "|---|---|---|",
            f"| `command_to_visible_p99_ms_vs_goal` | "
            f"**{ratios['command_to_visible_p99_ms_vs_goal']}** | ≤ 1 |",
            f"| `achieved_vs_target_rate` | **{ratios['achieved_vs_target_rate']}** | 1 |",
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/command_visibility.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="offered commands/s")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds at the rate before")
    parser.add_argument("--poll-ms", type=float, default=5, help="read-model poll interval")
    parser.add_argument("--logs", type=Path, default=ROOT / ".omium" / "logs")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    results = run(args)
    path = write_results("command_visibility", results)
    update_doc_section("command_visibility", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
