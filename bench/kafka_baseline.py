"""Kafka baseline: raw produce and consume rate and latency of ~1 KB Omium events.

This is the physical limit later pipeline figures (command → Kafka → processor → read model) are
compared to: the same broker, the same message size, no Omium processing in between. Events are
encoded once before timing, so only Kafka is measured.

Run: ``.venv/bin/python -m bench.kafka_baseline [--messages 50000]`` with the local stack up.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from rich.console import Console

from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from omium.kernel.kafka import (
    TopicSpec,
    consumer_config,
    ensure_topics,
    poll_batch,
    producer_config,
)
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, load_settings
from omium.testing.samples import sample_event

TARGET_BYTES = 1024
console = Console()


def one_kb_events(serde: AvroSerde, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` distinct (key, value) pairs, each a ~1 KB encoded SpanRecorded event."""
    base = sample_event("SpanRecorded")
    probe = len(serde.encode(base))
    padding = "x" * max(0, TARGET_BYTES - probe - 16)
    pairs = []
    for index in range(count):
        event = dict(base)
        event["event_id"] = str(uuid.uuid4())
        event["aggregate_id"] = f"run-{index % 997}"
        event["payload"] = {**base["payload"], "attributes": {"pad": padding}}
        pairs.append((event["aggregate_id"].encode(), serde.encode(event)))
    return pairs


def measure_throughput(
    kafka: KafkaSettings, topic: str, pairs: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    """Produce every pair with acks=all and idempotence, flush, then consume them all back."""
    producer = Producer(producer_config(kafka))
    started = time.perf_counter()
    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    produce_s = time.perf_counter() - started

    consumer = Consumer(consumer_config(kafka, f"bench-{uuid.uuid4()}"))
    consumer.subscribe([topic])
    received, started = 0, time.perf_counter()
    deadline = started + 120
    while received < len(pairs) and time.perf_counter() < deadline:
        received += sum(1 for m in consumer.consume(1000, 1.0) if m.error() is None)
    consume_s = time.perf_counter() - started
    consumer.close()
    size = sum(len(v) for _, v in pairs)
    return {
        "messages": len(pairs),
        "mean_message_bytes": round(size / len(pairs)),
        "produce_msgs_per_s": round(len(pairs) / produce_s),
        "produce_mb_per_s": round(size / produce_s / 1e6, 2),
        "consume_msgs_per_s": round(received / consume_s),
        "consumed": received,
    }


KafkaHeaders = list[tuple[str, str | bytes | None]]
"""Headers as the Kafka client takes them."""

RawMessage = tuple[str, bytes | None, bytes | None, KafkaHeaders]
"""A message to produce as it is: topic, key, value, headers."""


def as_published(
    kafka: KafkaSettings, serde: AvroSerde, events: list[dict[str, Any]]
) -> list[RawMessage]:
    """Events encoded as the relay and ``EventProducer.publish`` send them, to produce raw."""
    return [
        (
            f"{kafka.topic_prefix}.{serde.area_of(event['event_type'])}",
            str(event["aggregate_id"]).encode(),
            serde.encode(event),
            [
                ("event_id", str(event["event_id"]).encode()),
                ("event_type", str(event["event_type"]).encode()),
                ("tenant_id", str(event["tenant_id"]).encode()),
            ],
        )
        for event in events
    ]


def header_pairs(message: Message) -> KafkaHeaders:
    """A consumed message's headers as (name, bytes) pairs; a missing value as ``b""``."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(str(k), v.encode() if isinstance(v, str) else v or b"") for k, v in pairs]


def produce_rate(
    kafka: KafkaSettings, messages: list[RawMessage], **overrides: Any
) -> dict[str, Any]:
    """Produce ``messages`` as they are (acks=all, idempotent, lz4), flush; the rate.

    The raw-Kafka peer of a stage that produces the same messages: no encoding, no transaction.
    """
    producer = Producer(producer_config(kafka, **overrides))
    started = time.perf_counter()
    for topic, key, value, headers in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    seconds = time.perf_counter() - started
    size = sum(len(m[2] or b"") for m in messages)
    return {
        "messages": len(messages),
        "mean_message_bytes": round(size / max(len(messages), 1)),
        "seconds": round(seconds, 3),
        "msgs_per_s": round(len(messages) / seconds),
    }


def consume_rate(kafka: KafkaSettings, topics: list[str], expected: int) -> dict[str, Any]:
    """Read ``expected`` committed messages of ``topics`` from the beginning; the rate.

    The raw-Kafka peer of a stage that consumes the same messages: a read-committed consumer
    assigned every partition, no decoding.
    """
    consumer = Consumer(consumer_config(kafka, f"bench-raw-{uuid.uuid4()}"))
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in topics
                for p in metadata.topics[topic].partitions
            ]
        )
        received, started = 0, time.perf_counter()
        deadline = started + 120
        while received < expected and time.perf_counter() < deadline:
            # poll_batch returns on the first message: consume(1000, 0.5) would wait out its
            # timeout on a last partial batch and understate the peer.
            received += sum(1 for m in poll_batch(consumer, 1000, 0.5) if m.error() is None)
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "messages": received,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(received / seconds),
    }


def read_messages(kafka: KafkaSettings, topics: list[str]) -> list[RawMessage]:
    """Every committed message of ``topics`` (to produce again, raw, as a peer measure)."""
    consumer = Consumer(
        consumer_config(kafka, f"bench-copy-{uuid.uuid4()}", **{"enable.partition.eof": True})
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in topics
            for p in metadata.topics[topic].partitions
        ]
        consumer.assign(partitions)
        ended: set[tuple[str | None, int | None]] = set()
        copied: list[RawMessage] = []
        deadline = time.monotonic() + 120
        while len(ended) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    headers = header_pairs(message)
                    copied.append((message.topic() or "", message.key(), message.value(), headers))
                elif error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001
                    ended.add((message.topic(), message.partition()))
        return copied
    finally:
        consumer.close()


def measure_latency(
    kafka: KafkaSettings, topic: str, pairs: list[tuple[bytes, bytes]], rate: int
) -> dict[str, Any]:
    """Produce at a fixed offered rate while a consumer reads; latency = receive minus send time."""
    consumer = Consumer(
        consumer_config(kafka, f"bench-lat-{uuid.uuid4()}", **{"auto.offset.reset": "latest"})
    )
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.2)
    latencies_ms: list[float] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or len(latencies_ms) < len(pairs):
            # poll() returns each message as soon as it arrives; consume(n) would wait for n.
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                sent_ns = dict(message.headers() or [])["sent_ns"]
                sent = float(sent_ns.decode() if isinstance(sent_ns, bytes) else str(sent_ns))
                latencies_ms.append((time.perf_counter_ns() - sent) / 1e6)
            if done.is_set() and time.perf_counter() > stop_at:
                break

    stop_at = float("inf")
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    producer = Producer(producer_config(kafka))
    interval = 1.0 / rate
    started = time.perf_counter()
    for index, (key, value) in enumerate(pairs):
        wait = started + index * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        producer.produce(
            topic, key=key, value=value, headers=[("sent_ns", str(time.perf_counter_ns()).encode())]
        )
        producer.poll(0)
    producer.flush(60)
    stop_at = time.perf_counter() + 15
    done.set()
    reader.join(timeout=20)
    consumer.close()
    return {
        "offered_msgs_per_s": rate,
        "samples": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 0.50), 2),
        "p95_ms": round(percentile(latencies_ms, 0.95), 2),
        "p99_ms": round(percentile(latencies_ms, 0.99), 2),
        "max_ms": round(max(latencies_ms, default=float("nan")), 2),
    }


def run(messages: int, latency_messages: int, rate: int) -> dict[str, Any]:
    """Run both measurements on fresh topics and return the results document."""
    settings = load_settings()
    kafka = settings.kafka
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    run_id = uuid.uuid4().hex[:8]
    topics = [f"bench.baseline.{run_id}", f"bench.latency.{run_id}"]
    ensure_topics(
        kafka,
        specs=[
            TopicSpec(t, kafka.partitions, kafka.replication_factor, {"retention.ms": "3600000"})
            for t in topics
        ],
    )
    pairs = one_kb_events(serde, max(messages, latency_messages))
    throughput = measure_throughput(kafka, topics[0], pairs[:messages])
    latency = measure_latency(kafka, topics[1], pairs[:latency_messages], rate)
    return {
        "benchmark": "kafka_baseline",
        "machine": describe_machine(["confluent-kafka", "fastavro", "omium"]),
        "kafka": {
            "broker": "Apache Kafka 3.9.1 (KRaft, single node)",
            "partitions": kafka.partitions,
            "producer": "acks=all, idempotent, lz4, linger 5ms",
        },
        "throughput": throughput,
        "latency": latency,
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, tp, lat = results["machine"], results["throughput"], results["latency"]
    return "\n".join(
        [
            "## Kafka baseline (`python -m bench.kafka_baseline`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, Python {machine['python']}, "
            f"confluent-kafka {machine['packages']['confluent-kafka']}, "
            f"{results['kafka']['broker']}, {results['kafka']['partitions']} partitions, "
            f"producer {results['kafka']['producer']}.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| messages (mean size) | {tp['messages']} ({tp['mean_message_bytes']} B) |",
            f"| produce rate | {tp['produce_msgs_per_s']} msg/s ({tp['produce_mb_per_s']} MB/s) |",
            f"| consume rate | {tp['consume_msgs_per_s']} msg/s |",
            f"| end-to-end latency at {lat['offered_msgs_per_s']} msg/s offered | "
            f"p50 {lat['p50_ms']} ms · p95 {lat['p95_ms']} ms · p99 {lat['p99_ms']} ms |",
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/kafka_baseline.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--latency-messages", type=int, default=5_000)
    parser.add_argument("--rate", type=int, default=1_000, help="offered msg/s for latency")
    args = parser.parse_args()
    results = run(args.messages, args.latency_messages, args.rate)
    path = write_results("kafka_baseline", results)
    update_doc_section("kafka_baseline", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
