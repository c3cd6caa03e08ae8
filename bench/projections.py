"""Projection throughput, replay rate and publish → visible latency, beside the Kafka baseline.

One run, one machine: a fresh topic prefix gets a mix of Omium events (runs with steps, audit
entries, spans, failures), then each projection reads them all as its live consumer group would
(events/s), PostgreSQL and OpenSearch are replayed (events/s), and single events are published
and timed until the PostgreSQL and Redis read models show them. The raw Kafka produce/consume
rate and latency of the same broker are measured in the same run (``bench.kafka_baseline``).

Run: ``.venv/bin/python -m bench.projections [--runs 1000]`` with the local stack up (full
profile). Writes ``bench/results/projections.json`` and its table in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

import psycopg
import redis
from rich.console import Console

from bench import kafka_baseline
from bench._cpu import CpuMeter, describe
from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from omium.kernel.kafka import EventProducer, TopicSpec, admin_client, ensure_topics, topic_specs
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings, load_settings
from omium.projections import live_runner, open_projection, replay
from omium.projections.opensearch import OpenSearchClient
from omium.projections.postgres import schema_for
from omium.projections.redis import RedisKeys
from omium.testing.samples import sample_event

console = Console()
TENANT = "bench"


def _run(run_id: str) -> list[dict[str, Any]]:
    """One run's hash-chained history: start, 5 steps, completion."""
    types = ["ExecutionStarted"]
    payloads: list[dict[str, Any]] = [{}]
    for step in range(5):
        for event_type in ("StepScheduled", "StepStarted", "StepCompleted"):
            types.append(event_type)
            payloads.append({"step_id": f"s{step}"})
    types.append("ExecutionCompleted")
    payloads.append({})
    events: list[dict[str, Any]] = []
    for version, (event_type, payload) in enumerate(zip(types, payloads, strict=True), 1):
        events.append(
            sample_event(
                event_type,
                tenant_id=TENANT,
                aggregate_id=run_id,
                aggregate_version=version,
                payload=payload,
                prev_hash=events[-1]["hash"] if events else "",
            )
        )
    return events


def workload(runs: int) -> list[dict[str, Any]]:
    """Per run: its 17 events, an audit entry and 5 spans; a failure every 10 runs."""
    events: list[dict[str, Any]] = []
    for index in range(runs):
        run_id = str(uuid.uuid4())
        events += _run(run_id)
        events.append(sample_event("CommandRecorded", tenant_id=TENANT))
        events += [
            sample_event(
                "SpanRecorded",
                tenant_id=TENANT,
                payload={"trace_id": run_id.replace("-", ""), "span_id": f"{i:016x}"},
            )
            for i in range(5)
        ]
        if index % 10 == 0:
            events.append(
                sample_event(
                    "FailureDetected", tenant_id=TENANT, payload={"failure_id": uuid.uuid4()}
                )
            )
    return events


def publish(settings: OmiumSettings, serde: AvroSerde, events: list[dict[str, Any]]) -> float:
    """Produce everything; return msgs/s."""
    started = time.perf_counter()
    with EventProducer(settings.kafka, serde) as producer:
        for event in events:
            producer.publish(event)
    return len(events) / (time.perf_counter() - started)


def project_all(settings: OmiumSettings, serde: AvroSerde, name: str) -> dict[str, Any]:
    """Run one projection's live runner until it has read everything; its events/s."""
    projection = open_projection(name, settings)
    runner = live_runner(projection, settings.kafka, serde, max_batch=2000)
    runner.source.poll(max_messages=0, timeout_s=0)  # join the group before timing
    started = time.perf_counter()
    first = True
    while True:
        before = time.perf_counter()
        stats = runner.run_once()
        if first and stats.polled:
            # The clock starts with the poll that returned the first events (not the group join).
            started, first = before, False
            # Everything was published before: the ends are fixed. Asking every partition's
            # end after each batch (as before) put a round trip per partition in the loop.
            runner.source.refresh_end_offsets()
        if not first and runner.source.caught_up():
            break
    elapsed = time.perf_counter() - started
    runner.close()
    return {
        "events": runner.events_total,
        "seconds": round(elapsed, 2),
        "events_per_s": round(runner.events_total / elapsed),
    }


def profile_postgres_batch(settings: OmiumSettings, serde: AvroSerde, runs: int) -> dict[str, Any]:
    """Where one PostgreSQL batch's time goes: Avro decode, mapping, and the write (wall time,
    this process's CPU during it, statements sent): one statement per op parsed each time (as
    before set-based batches, ``prepare_threshold=None``), the same prepared, and set-based."""
    from omium.kernel.kafka import ConsumedEvent
    from omium.projections.postgres import MAPPERS, PostgresProjection

    events = workload(runs)
    raws = [serde.encode(e) for e in events]
    started = time.perf_counter()
    decoded = [serde.decode(r) for r in raws]
    decode_s = time.perf_counter() - started
    consumed = [
        ConsumedEvent(topic="profile", partition=0, offset=i, key=None, event=e, raw=r)
        for i, (e, r) in enumerate(zip(decoded, raws, strict=True))
        if e["event_type"] in MAPPERS
    ]
    figures: dict[str, Any] = {
        "events": len(consumed),
        "decode_events_per_s": round(len(events) / decode_s),
    }
    variants = (
        ("one_statement_per_op", False, None),
        ("one_statement_per_op_prepared", False, 0),
        ("set_based", True, None),
    )
    for label, set_based, prepare in variants:
        schema = f"profile_{uuid.uuid4().hex[:8]}"
        projection = PostgresProjection.open(
            settings.postgres.dsn(), schema=schema, set_based=set_based
        )
        try:
            projection._conn.prepare_threshold = prepare  # noqa: SLF001 - measurement only
            started = time.perf_counter()
            for one in consumed:
                projection.apply(one)
            map_s = time.perf_counter() - started
            ops = sum(len(ops) for _, ops in projection._batch)  # noqa: SLF001
            started, cpu = time.perf_counter(), time.process_time()
            projection.flush({("profile", 0): len(consumed)}, expected={("profile", 0): None})
            write_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        finally:
            projection.close()
            with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        figures[label] = {
            "map_events_per_s": round(len(consumed) / map_s),
            "ops": ops,
            "statements": projection.statements,
            "write_s": round(write_s, 3),
            "write_client_cpu_s": round(cpu_s, 3),
            "write_events_per_s": round(len(consumed) / write_s),
        }
    return figures


def replay_rate(settings: OmiumSettings, serde: AvroSerde, name: str) -> dict[str, Any]:
    """Replay a read model; its events/s (rebuild only, the swap excluded)."""
    report = replay(name, settings, serde, max_batch=2000, workers=2)
    return {
        "workers": report.workers,
        "events": report.events,
        "seconds": round(report.elapsed_s, 2),
        "events_per_s": round(report.rate),
    }


def visible_latency(settings: OmiumSettings, serde: AvroSerde, samples: int) -> dict[str, Any]:
    """Publish one run start at a time; time until PostgreSQL and Redis show it."""
    import threading

    stop = threading.Event()
    runners = [
        live_runner(open_projection(n, settings), settings.kafka, serde, poll_timeout_s=0.01)
        for n in ("postgres", "redis")
    ]
    threads = [threading.Thread(target=r.run, kwargs={"stop": stop}, daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    keys = RedisKeys.for_prefix(settings.kafka.topic_prefix)
    schema = schema_for(settings.kafka.topic_prefix)
    client = redis.Redis.from_url(settings.redis.url)
    pg_ms: list[float] = []
    redis_ms: list[float] = []
    with (
        psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn,
        EventProducer(settings.kafka, serde, **{"linger.ms": 0}) as producer,
    ):
        for index in range(samples + 20):  # the first 20 warm up (group joins, connections)
            event = sample_event("ExecutionStarted", tenant_id=TENANT)
            run_id = event["aggregate_id"]
            started = time.perf_counter()
            producer.publish(event)
            producer.flush()
            pg_at = redis_at = None
            deadline = started + 10
            while (pg_at is None or redis_at is None) and time.perf_counter() < deadline:
                if (
                    pg_at is None
                    and conn.execute(
                        f"SELECT 1 FROM {schema}.executions WHERE tenant_id = %s "
                        "AND execution_id = %s",
                        (TENANT, run_id),
                    ).fetchone()
                ):
                    pg_at = time.perf_counter()
                if redis_at is None and client.exists(keys.execution(TENANT, run_id)):
                    redis_at = time.perf_counter()
                time.sleep(0.001)
            if index >= 20 and pg_at and redis_at:
                pg_ms.append((pg_at - started) * 1000)
                redis_ms.append((redis_at - started) * 1000)
    stop.set()
    for thread, runner in zip(threads, runners, strict=True):
        thread.join(10)
        runner.close()
    client.close()

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "samples": len(values),
            "p50_ms": round(percentile(values, 0.5), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
        }

    return {"postgres": summary(pg_ms), "redis": summary(redis_ms)}


def raw_consume(kafka: Any, topics: list[str]) -> dict[str, Any]:
    """Plain read-committed consume (no decoding) of every message on ``topics``: msgs/s."""
    from confluent_kafka import Consumer, TopicPartition

    from omium.kernel.kafka import consumer_config, poll_batch

    consumer = Consumer(consumer_config(kafka, f"{kafka.topic_prefix}.raw.{uuid.uuid4().hex[:6]}"))
    assigned, total = [], 0
    metadata = consumer.list_topics(timeout=10)
    for topic in topics:
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
            assigned.append(TopicPartition(topic, partition, low))
    consumer.assign(assigned)
    got, started = 0, None
    deadline = time.monotonic() + 60
    while got < total and time.monotonic() < deadline:
        before = time.perf_counter()
        # Returns on the first message and takes what is fetched: consume(2000, 1.0) waited out
        # its timeout on the last partial batch (~1 s of a ~1 s figure, a 10x slower peer).
        for message in poll_batch(consumer, 2000, 1.0):
            if message.error() is None:
                started = started or before  # from the call that returned the first message
                got += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return {"messages": got, "msgs_per_s": round(got / max(elapsed, 1e-6))}


_RUN_TYPES = {"ExecutionStarted", "StepScheduled", "StepStarted", "StepCompleted"}
_RUN_TYPES |= {"ExecutionCompleted"}
TYPES_READ = {
    "postgres": _RUN_TYPES | {"FailureDetected", "CommandRecorded"},
    "redis": _RUN_TYPES | {"FailureDetected"},
    "opensearch": {"SpanRecorded", "FailureDetected", "CommandRecorded"},
    "timestream": _RUN_TYPES | {"FailureDetected"},
}
"""The workload's event types on each projection's topics."""


def _mapped(serde: AvroSerde, events: list[dict[str, Any]], mapper: Any, name: str) -> list[Any]:
    """The output of ``mapper`` for each workload event on the projection's topics, decoded as
    the projection gets it (empty for types it ignores)."""
    out = []
    for event in events:
        if event["event_type"] in TYPES_READ[name]:
            out.append(mapper(serde.decode(serde.encode(event))))
    return out


def _by_type(mappers: dict[str, Any]) -> Any:
    return lambda e: mappers[e["event_type"]](e) if e["event_type"] in mappers else ()


def postgres_bulk(
    settings: OmiumSettings, serde: AvroSerde, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """COPY of the rows the workload's inserts and upserts carry (last version of each key)
    into a fresh read-model schema with its indexes: the store's own bulk rate."""
    from omium.projections.postgres import MAPPERS, migrate
    from omium.projections.postgres._projection import connect

    rows: dict[tuple[Any, ...], tuple[str, tuple[str, ...], dict[str, Any]]] = {}
    mapped = _mapped(serde, events, _by_type(MAPPERS), "postgres")
    for ops in mapped:
        for op in ops:
            if op.template is not None and op.template[0] in ("insert", "upsert"):
                table, columns = op.template[1], op.template[2]
                key = (table, *op.touches)
                if op.template[0] == "upsert" or key not in rows:
                    rows[key] = (table, columns, dict(op.params))
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for table, columns, params in rows.values():
        groups.setdefault((table, columns), []).append(params)
    schema = f"bulk_{uuid.uuid4().hex[:8]}"
    with connect(settings.postgres.dsn()) as conn:
        migrate(conn, schema)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            for (table, columns), group in groups.items():
                with cur.copy(f"COPY {schema}.{table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for params in group:
                        copy.write_row([params[c] for c in columns])
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {
        "method": "COPY of the final rows, one transaction, indexes in place",
        "rows": len(rows),
        "events": len(mapped),
        "events_per_s": round(len(mapped) / elapsed),
        "rows_per_s": round(len(rows) / elapsed),
    }


def redis_bulk(
    settings: OmiumSettings, serde: AvroSerde, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The workload's Redis commands through plain pipelines of 2,000 events (no script, no
    offsets, no duplicate check): the store's own bulk rate."""
    from omium.projections.redis._mappers import commands_for

    keys = RedisKeys.for_prefix(f"{settings.kafka.topic_prefix}bulk")
    mapped = _mapped(serde, events, lambda e: commands_for(e, keys), "redis")
    client = redis.Redis.from_url(settings.redis.url)
    started = time.perf_counter()
    for start in range(0, len(mapped), 2000):
        pipe = client.pipeline(transaction=False)
        for commands in mapped[start : start + 2000]:
            for command in commands:
                if command[0] == "HSETIF":
                    pipe.hset(command[1], command[2], command[4])
                else:
                    # redis-py leaves Pipeline.execute_command unannotated.
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        pipe.execute()
    elapsed = time.perf_counter() - started
    for key in client.scan_iter(match=f"{keys.prefix}:*", count=1000):
        client.delete(key)
    client.close()
    return {
        "method": "pipelines of 2,000 events",
        "events": len(mapped),
        "events_per_s": round(len(mapped) / elapsed),
    }


def opensearch_bulk(
    settings: OmiumSettings, serde: AvroSerde, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The workload's documents in 5 MiB ``_bulk`` requests straight to a scratch index."""
    from omium.projections.opensearch import OpenSearchProjection
    from omium.projections.opensearch._mappers import MAPPERS as OS_MAPPERS

    prefix = f"{settings.kafka.topic_prefix}bulk".lower()
    client = OpenSearchClient(settings.opensearch.url)
    projection = OpenSearchProjection(client, prefix=prefix)
    client.install(prefix)
    mapped = _mapped(serde, events, _by_type(OS_MAPPERS), "opensearch")
    started = time.perf_counter()
    from omium.kernel.kafka import ConsumedEvent

    dummy = ConsumedEvent(topic="b", partition=0, offset=0, key=None, event={}, raw=b"")
    projection.write([(dummy, writes) for writes in mapped], {}, {})
    elapsed = time.perf_counter() - started
    client.delete_index(f"{prefix}-*")
    for model in ("spans", "failures", "audit"):
        client.request("DELETE", f"/_index_template/{prefix}-{model}", ok=(200, 404))
    client.close()
    return {
        "method": "_bulk requests of <= 5 MiB",
        "events": len(mapped),
        "events_per_s": round(len(mapped) / elapsed),
    }


def timestream_bulk(
    settings: OmiumSettings, serde: AvroSerde, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The workload's records in WriteRecords calls of 100 (the service's limit)."""
    from omium.projections.timestream import TimestreamProjection, timestream_client
    from omium.projections.timestream._records import MAPPERS as TS_MAPPERS

    table = f"{settings.kafka.topic_prefix}-bulk"
    projection = TimestreamProjection(
        timestream_client(settings.aws), database=settings.aws.timestream_database, table=table
    )
    projection.install()
    mapped = _mapped(serde, events, _by_type(TS_MAPPERS), "timestream")
    records = [record for records in mapped for record in records]
    started = time.perf_counter()
    for start in range(0, len(records), 100):
        projection._write_chunk(records[start : start + 100])  # noqa: SLF001
    elapsed = time.perf_counter() - started
    timestream_client(settings.aws).delete_table(
        DatabaseName=settings.aws.timestream_database, TableName=table
    )
    return {
        "method": "WriteRecords of 100",
        "events": len(mapped),
        "events_per_s": round(len(mapped) / elapsed),
    }


def two_instances(
    settings: OmiumSettings, serde: AvroSerde, total: int, runs: int
) -> dict[str, Any]:
    """``omium project postgres`` as one process, then as two sharing the partitions, each on a
    fresh schema. Once they have caught up with the topics (group stable), a new workload of
    ``runs`` runs, encoded beforehand, is produced raw; the clock runs from the first stored
    offset past the old end until the stored offsets cover the new events (events/s: those
    applied meanwhile). Publishing through the encoder inside the window bounded the figure by
    this process's encoding (one and two processes both took the ~2 s it took)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    prefix = settings.kafka.topic_prefix
    schema = schema_for(prefix)
    omium = Path(sys.executable).with_name("omium")
    env = {**os.environ, "OMIUM_KAFKA__TOPIC_PREFIX": prefix}
    figures: dict[str, Any] = {}
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:

        def applied() -> int:
            try:
                row = conn.execute(f"SELECT sum(next_offset) FROM {schema}.projection_offsets")
                return int((row.fetchone() or [0])[0] or 0)
            except psycopg.errors.UndefinedTable:
                return 0

        def wait_until(target: int) -> None:
            deadline = time.monotonic() + 300
            while applied() < target and time.monotonic() < deadline:
                time.sleep(0.02)

        for count in (1, 2):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            processes = [
                subprocess.Popen(
                    [str(omium), "project", "postgres", "--batch", "2000"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(count)
            ]
            try:
                wait_until(total)
                time.sleep(3)  # both members in the group, partitions settled
                extra = workload(runs)
                read = sum(1 for e in extra if e["event_type"] in TYPES_READ["postgres"])
                messages = kafka_baseline.as_published(settings.kafka, serde, extra)
                named = {p.pid: f"projection-{i}" for i, p in enumerate(processes)}
                producing = threading.Thread(
                    target=kafka_baseline.produce_rate, args=(settings.kafka, messages)
                )
                producing.start()
                wait_until(total + 1)
                with CpuMeter(named) as cpu:
                    started, first = time.perf_counter(), applied()
                    wait_until(total + read)
                    elapsed = time.perf_counter() - started
                producing.join()
                read, total = total + read - first, total + read
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(30)
            figures[f"{count}_processes"] = {
                "events": read,
                "seconds": round(elapsed, 2),
                "events_per_s": round(read / elapsed),
                "cpu": cpu.report(),
            }
    return figures


def cleanup(settings: OmiumSettings) -> None:
    """Drop the run's topics, schema, keys and indices."""
    prefix = settings.kafka.topic_prefix
    admin_client(settings.kafka).delete_topics([s.name for s in topic_specs(settings.kafka)])
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema_for(prefix)} CASCADE")
    client = redis.Redis.from_url(settings.redis.url)
    for key in client.scan_iter(match=f"{prefix}:rm:*", count=1000):
        client.delete(key)
    opensearch = OpenSearchClient(settings.opensearch.url)
    opensearch.delete_index(f"{prefix}-*")
    for model in ("spans", "failures", "audit"):
        opensearch.request("DELETE", f"/_index_template/{prefix}-{model}", ok=(200, 404))


def baseline(settings: OmiumSettings, serde: AvroSerde, messages: int) -> dict[str, Any]:
    """The raw Kafka figures of ``bench.kafka_baseline`` on the same broker, now."""
    run_id = uuid.uuid4().hex[:8]
    topics = [f"bench.baseline.{run_id}", f"bench.latency.{run_id}"]
    kafka = settings.kafka
    ensure_topics(
        kafka,
        specs=[
            TopicSpec(t, kafka.partitions, kafka.replication_factor, {"retention.ms": "3600000"})
            for t in topics
        ],
    )
    pairs = kafka_baseline.one_kb_events(serde, messages)
    result = {
        "throughput": kafka_baseline.measure_throughput(kafka, topics[0], pairs),
        "latency": kafka_baseline.measure_latency(kafka, topics[1], pairs[:2000], 500),
    }
    admin_client(kafka).delete_topics(topics)
    return result


def run(runs: int, latency_samples: int, relay_events: int) -> dict[str, Any]:
    """Every measurement on a fresh prefix; returns the results document."""
    import os

    from bench import relay_lag
    from omium.projections._registry import KINDS, topics_of

    load_before = [round(x, 2) for x in os.getloadavg()]
    base = load_settings()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"topic_prefix": prefix})}
    )
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    ensure_topics(settings.kafka)
    names = ("postgres", "redis", "opensearch", "timestream")
    try:
        events = workload(runs)
        console.print(f"publishing {len(events):,} events to {prefix}.*")
        produce_rate = publish(settings, serde, events)
        raw, projections, bulk = {}, {}, {}
        bulk_of = {
            "postgres": postgres_bulk,
            "redis": redis_bulk,
            "opensearch": opensearch_bulk,
            "timestream": timestream_bulk,
        }
        for name in names:
            console.print(f"{name}: raw consume, projection, store bulk")
            raw[name] = raw_consume(settings.kafka, topics_of(KINDS[name], settings.kafka))
            projections[name] = project_all(settings, serde, name)
            bulk[name] = bulk_of[name](settings, serde, events)
        console.print("profile of one PostgreSQL batch")
        profile = profile_postgres_batch(settings, serde, min(runs, 300))
        console.print("one vs two projection processes")
        # Twice the workload: a ~2 s window weighs the first fetch after idle.
        instances = two_instances(settings, serde, raw["postgres"]["messages"], 2 * runs)
        replays = {}
        for name in ("postgres", "opensearch"):
            console.print(f"replaying {name}")
            replays[name] = replay_rate(settings, serde, name)
        console.print("relay maximum rate")
        relay = relay_lag.measure_throughput(base, relay_events)
        console.print("publish → visible latency")
        latency = visible_latency(settings, serde, latency_samples)
        console.print("Kafka baseline")
        kafka = baseline(settings, serde, 20_000)
    finally:
        cleanup(settings)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else 0.0

    ratios = {
        f"{n}_projection_vs_kafka": ratio(projections[n]["events_per_s"], raw[n]["msgs_per_s"])
        for n in names
    }
    ratios |= {
        f"{n}_projection_vs_store_bulk": ratio(
            projections[n]["events_per_s"], bulk[n]["events_per_s"]
        )
        for n in names
    }
    ratios |= {
        f"{n}_replay_vs_relay_max": ratio(replays[n]["events_per_s"], relay["events_per_s"])
        for n in ("postgres", "opensearch")
    }
    ratios["two_instances_vs_one_postgres_projection"] = ratio(
        instances["2_processes"]["events_per_s"], instances["1_processes"]["events_per_s"]
    )
    # The ceiling of any stage that decodes each message in Python: fastavro's decode alone,
    # one core, against the raw consume of the PostgreSQL projection's topics.
    ratios["avro_decode_alone_vs_kafka"] = ratio(
        profile["decode_events_per_s"], raw["postgres"]["msgs_per_s"]
    )
    return {
        "benchmark": "projections",
        "machine": {
            **describe_machine(["confluent-kafka", "psycopg", "redis", "opensearch-py", "omium"]),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "events": len(events),
        "publish_events_per_s": round(produce_rate),
        "raw_consume_same_topics": raw,
        "projections": projections,
        "store_bulk": bulk,
        "postgres_batch_profile": profile,
        "postgres_instances": instances,
        "replay": replays,
        "relay_max": relay,
        "visible_latency": latency,
        "kafka_baseline": kafka,
        "ratios": ratios,
        "goals": {
            "projection_vs_kafka": ">= 0.3 (or the store's bulk limit)",
            "replay_vs_relay_max": ">= 10",
            "two_instances_vs_one": "> 1.6",
        },
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, kafka, ratios = results["machine"], results["kafka_baseline"], results["ratios"]
    lines = [
        "## Projections (`python -m bench.projections`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB, load average {machine['load_average_before']} before, "
        f"{machine['load_average_after']} after; {results['events']:,} mixed events (runs with "
        "5 steps, audit, spans, failures), every store on the same machine as Kafka. Raw peer: "
        "a read-committed consume (no decoding) of the same topics each projection reads; store "
        "peer: the same rows/commands/documents/records written straight to the store in bulk.",
        "",
        "| measure | value | raw Kafka, same messages | store bulk, same data | ratio (goal) |",
        "|---|---|---|---|---|",
    ]
    for name, figures in results["projections"].items():
        raw, bulk = results["raw_consume_same_topics"][name], results["store_bulk"][name]
        lines.append(
            f"| {name} projection | **{figures['events_per_s']:,} events/s** "
            f"({figures['events']:,} events) | {raw['msgs_per_s']:,} msg/s | "
            f"{bulk['events_per_s']:,} events/s ({bulk['method']}) | "
            f"{name}_projection_vs_kafka **{ratios[f'{name}_projection_vs_kafka']}** (≥ 0.3); "
            f"vs store bulk {ratios[f'{name}_projection_vs_store_bulk']} |"
        )
    relay = results["relay_max"]
    for name, figures in results["replay"].items():
        lines.append(
            f"| {name} replay ({figures['workers']} workers) | **{figures['events_per_s']:,} "
            f"events/s** | relay max {relay['events_per_s']:,} events/s (same run) | | "
            f"{name}_replay_vs_relay_max **{ratios[f'{name}_replay_vs_relay_max']}** (≥ 10) |"
        )
    instances = results["postgres_instances"]
    lines.append(
        f"| `omium project postgres` processes | one: {instances['1_processes']['events_per_s']:,} "
        f"events/s · two: {instances['2_processes']['events_per_s']:,} events/s | | | "
        f"two_instances_vs_one_postgres_projection "
        f"**{ratios['two_instances_vs_one_postgres_projection']}** (> 1.6) |"
    )
    cpu_of = {count: instances[f"{count}_processes"].get("cpu") for count in (1, 2)}
    lat = kafka["latency"]
    for name, figures in results["visible_latency"].items():
        lines.append(
            f"| publish → visible in {name} | p50 {figures['p50_ms']} ms · "
            f"p99 {figures['p99_ms']} ms | produce → consume p50 {lat['p50_ms']} ms · "
            f"p99 {lat['p99_ms']} ms | | |"
        )
    profile = results["postgres_batch_profile"]
    per_op, prepared, set_based = (
        profile["one_statement_per_op"],
        profile["one_statement_per_op_prepared"],
        profile["set_based"],
    )
    lines += [
        "",
        f"**Where a PostgreSQL batch's time goes** (same run, {profile['events']:,} events in one "
        f"batch, `profile_postgres_batch`): Avro decode {profile['decode_events_per_s']:,} "
        f"events/s, mapping {set_based['map_events_per_s']:,} events/s. One statement per op "
        f"({per_op['statements']:,} statements): write {per_op['write_s']} s, of which "
        f"{per_op['write_client_cpu_s']} s this process's CPU; the same prepared: "
        f"{prepared['write_s']} s (parse and plan are the difference: `prepare_threshold=None` "
        f"because a replay swaps the tables). Set-based ({set_based['statements']} statements): "
        f"write {set_based['write_s']} s ({set_based['write_events_per_s']:,} events/s), "
        f"{set_based['write_client_cpu_s']} s client CPU. Decoding alone, one core, reaches "
        f"**{ratios['avro_decode_alone_vs_kafka']}** of the raw consume "
        "(avro_decode_alone_vs_kafka): the ceiling of any stage that decodes each message in "
        "Python.",
    ]
    if cpu_of[1] and cpu_of[2]:
        lines += [
            "",
            f"CPU while one `omium project postgres` ran: {describe(cpu_of[1])}. "
            f"While two ran: {describe(cpu_of[2])}.",
        ]
    return "\n".join(lines)


def main() -> None:
    """Parse flags, run, write ``bench/results/projections.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=600, help="runs in the workload")
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--relay-events", type=int, default=20_000)
    args = parser.parse_args()
    results = run(args.runs, args.latency_samples, args.relay_events)
    path = write_results("projections", results)
    update_doc_section("projections", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
