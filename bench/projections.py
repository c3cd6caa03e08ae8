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
import time
import uuid
from typing import Any

import psycopg
import redis
from rich.console import Console

from bench import kafka_baseline
from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from omium.kernel.kafka import EventProducer, TopicSpec, admin_client, ensure_topics, topic_specs
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings, load_settings
from omium.testing.samples import sample_event
from projections import live_runner, open_projection, replay
from projections.opensearch import OpenSearchClient
from projections.postgres import schema_for
from projections.redis import RedisKeys

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
        events.append(sample_event(event_type, tenant_id=TENANT, aggregate_id=run_id,
                                   aggregate_version=version, payload=payload,
                                   prev_hash=events[-1]["hash"] if events else ""))
    return events


def workload(runs: int) -> list[dict[str, Any]]:
    """Per run: its 17 events, an audit entry and 5 spans; a failure every 10 runs."""
    events: list[dict[str, Any]] = []
    for index in range(runs):
        run_id = str(uuid.uuid4())
        events += _run(run_id)
        events.append(sample_event("CommandRecorded", tenant_id=TENANT))
        events += [sample_event("SpanRecorded", tenant_id=TENANT, payload={
            "trace_id": run_id.replace("-", ""), "span_id": f"{i:016x}"}) for i in range(5)]
        if index % 10 == 0:
            events.append(sample_event("FailureDetected", tenant_id=TENANT,
                                       payload={"failure_id": uuid.uuid4()}))
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
        stats = runner.run_once()
        if first and stats.polled:
            started, first = time.perf_counter(), False
        runner.source.refresh_end_offsets()
        if not first and runner.source.caught_up():
            break
    elapsed = time.perf_counter() - started
    runner.close()
    return {"events": runner.events_total, "seconds": round(elapsed, 2),
            "events_per_s": round(runner.events_total / elapsed)}


def replay_rate(settings: OmiumSettings, serde: AvroSerde, name: str) -> dict[str, Any]:
    """Replay a read model; its events/s (rebuild only, the swap excluded)."""
    report = replay(name, settings, serde, max_batch=2000)
    return {"events": report.events, "seconds": round(report.elapsed_s, 2),
            "events_per_s": round(report.rate)}


def visible_latency(settings: OmiumSettings, serde: AvroSerde, samples: int) -> dict[str, Any]:
    """Publish one run start at a time; time until PostgreSQL and Redis show it."""
    import threading

    stop = threading.Event()
    runners = [live_runner(open_projection(n, settings), settings.kafka, serde,
                           poll_timeout_s=0.01) for n in ("postgres", "redis")]
    threads = [threading.Thread(target=r.run, kwargs={"stop": stop}, daemon=True)
               for r in runners]
    for thread in threads:
        thread.start()
    keys = RedisKeys.for_prefix(settings.kafka.topic_prefix)
    schema = schema_for(settings.kafka.topic_prefix)
    client = redis.Redis.from_url(settings.redis.url)
    pg_ms: list[float] = []
    redis_ms: list[float] = []
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn, \
            EventProducer(settings.kafka, serde, **{"linger.ms": 0}) as producer:
        for index in range(samples + 20):  # the first 20 warm up (group joins, connections)
            event = sample_event("ExecutionStarted", tenant_id=TENANT)
            run_id = event["aggregate_id"]
            started = time.perf_counter()
            producer.publish(event)
            producer.flush()
            pg_at = redis_at = None
            deadline = started + 10
            while (pg_at is None or redis_at is None) and time.perf_counter() < deadline:
                if pg_at is None and conn.execute(
                        f"SELECT 1 FROM {schema}.executions WHERE tenant_id = %s "
                        "AND execution_id = %s", (TENANT, run_id)).fetchone():
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
        return {"samples": len(values), "p50_ms": round(percentile(values, 0.5), 1),
                "p99_ms": round(percentile(values, 0.99), 1)}

    return {"postgres": summary(pg_ms), "redis": summary(redis_ms)}


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
    ensure_topics(kafka, specs=[TopicSpec(t, kafka.partitions, kafka.replication_factor,
                                          {"retention.ms": "3600000"}) for t in topics])
    pairs = kafka_baseline.one_kb_events(serde, messages)
    result = {"throughput": kafka_baseline.measure_throughput(kafka, topics[0], pairs),
              "latency": kafka_baseline.measure_latency(kafka, topics[1], pairs[:2000], 500)}
    admin_client(kafka).delete_topics(topics)
    return result


def run(runs: int, latency_samples: int) -> dict[str, Any]:
    """Every measurement on a fresh prefix; returns the results document."""
    base = load_settings()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(
        update={"topic_prefix": prefix})})
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    ensure_topics(settings.kafka)
    try:
        events = workload(runs)
        console.print(f"publishing {len(events):,} events to {prefix}.*")
        produce_rate = publish(settings, serde, events)
        projections = {}
        for name in ("postgres", "redis", "opensearch", "timestream"):
            console.print(f"projecting into {name}")
            projections[name] = project_all(settings, serde, name)
        replays = {}
        for name in ("postgres", "opensearch"):
            console.print(f"replaying {name}")
            replays[name] = replay_rate(settings, serde, name)
        console.print("publish → visible latency")
        latency = visible_latency(settings, serde, latency_samples)
        console.print("Kafka baseline")
        kafka = baseline(settings, serde, 20_000)
    finally:
        cleanup(settings)
    return {"benchmark": "projections",
            "machine": describe_machine(["confluent-kafka", "psycopg", "redis", "omium"]),
            "events": len(events), "publish_events_per_s": round(produce_rate),
            "projections": projections, "replay": replays, "visible_latency": latency,
            "kafka_baseline": kafka}


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, kafka = results["machine"], results["kafka_baseline"]
    lines = [
        "## Projections (`python -m bench.projections`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB; {results['events']:,} mixed events (runs with 5 steps, "
        "audit, spans, failures), every store on the same machine as Kafka.",
        "",
        "| measure | value | Kafka baseline (same run) |",
        "|---|---|---|",
    ]
    base_rate = f"consume {kafka['throughput']['consume_msgs_per_s']:,} msg/s"
    for name, figures in results["projections"].items():
        lines.append(f"| {name} projection | {figures['events_per_s']:,} events/s "
                     f"({figures['events']:,} events) | {base_rate} |")
    for name, figures in results["replay"].items():
        lines.append(f"| {name} replay | {figures['events_per_s']:,} events/s | {base_rate} |")
    lat = kafka["latency"]
    for name, figures in results["visible_latency"].items():
        lines.append(f"| publish → visible in {name} | p50 {figures['p50_ms']} ms · "
                     f"p99 {figures['p99_ms']} ms | produce → consume p50 {lat['p50_ms']} ms · "
                     f"p99 {lat['p99_ms']} ms |")
    return "\n".join(lines)


def main() -> None:
    """Parse flags, run, write ``bench/results/projections.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the workload")
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    results = run(args.runs, args.latency_samples)
    path = write_results("projections", results)
    update_doc_section("projections", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
