"""Crash safety: ``kill -9`` of a running projection process, then a restart, loses nothing and
applies nothing twice (the offsets are committed in the same transaction as the rows)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections.postgres import schema_for
from tests.projections.helpers import Chain, publish, single, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def projection_process_factory(
    settings: OmiumSettings,
) -> Iterator[Callable[[KafkaSettings], subprocess.Popen[bytes]]]:
    """Starts ``omium project postgres`` processes on a prefix; kills leftovers after."""
    started: list[subprocess.Popen[bytes]] = []
    prefixes: list[str] = []

    def start(kafka: KafkaSettings) -> subprocess.Popen[bytes]:
        prefixes.append(kafka.topic_prefix)
        env = {
            **os.environ,
            "OMIUM_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
            "OMIUM_KAFKA__PARTITIONS": str(kafka.partitions),
        }
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "omium"), "project", "postgres", "--batch", "100"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        for schema in {schema_for(p) for p in prefixes}:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def scalar(pg: psycopg.Connection, sql: str, *params: Any) -> int:
    row = pg.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0] or 0)


def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: OmiumSettings,
    pg: psycopg.Connection,
    projection_process_factory: Callable[[KafkaSettings], subprocess.Popen[bytes]],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    audits = [single("CommandRecorded", tenant) for _ in range(3000)]
    runs = []
    for _ in range(40):
        run = Chain(tenant)
        run.add("ExecutionStarted")
        for i in range(10):
            run.add("StepCompleted", step_id=f"s{i}", tokens_in=10, tokens_out=5)
        runs.append(run)
    events = audits + [e for run in runs for e in run.events]
    publish(kafka, serde, events)
    schema = schema_for(kafka.topic_prefix)

    def applied() -> int:
        try:
            return scalar(pg, f"SELECT sum(next_offset) FROM {schema}.projection_offsets")
        except psycopg.errors.UndefinedTable:
            return 0

    first = projection_process_factory(kafka)
    wait_for(lambda: applied() > 300, timeout_s=60, every_s=0.02, what="a first batches")
    os.kill(first.pid, signal.SIGKILL)  # mid-stream: a batch is usually in flight
    first.wait(10)
    partial = applied()
    assert 0 < partial < len(events), "the kill should land before the end"

    second = projection_process_factory(kafka)
    wait_for(lambda: applied() >= len(events), timeout_s=90, every_s=0.2, what="catch-up")
    second.send_signal(signal.SIGTERM)
    second.wait(30)

    assert scalar(
        pg, f"SELECT count(*) FROM {schema}.audit_log WHERE tenant_id = %s", tenant
    ) == len(audits)
    # Counters would show a batch applied twice; a missing one would show as well.
    assert scalar(
        pg,
        f"SELECT count(*) FROM {schema}.executions WHERE tenant_id = %s "
        "AND steps_completed = 10 AND total_tokens = 150",
        tenant,
    ) == len(runs)
    assert (
        scalar(pg, f"SELECT count(*) FROM {schema}.execution_events WHERE tenant_id = %s", tenant)
        == len(runs) * 11
    )
