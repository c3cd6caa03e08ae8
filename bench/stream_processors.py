"""Stream processors end to end through Kafka: policy evaluations/s and consensus votes/s.

Each measure starts a processor (in this process, one instance, exactly-once transactions), waits
until it holds every partition, then publishes the input events with the kernel's producer and
stops the clock when the processor has committed the last of them: produce, broker, consume,
decode, decide, encode, transactional produce and offset commit are all inside the figure. The
Kafka baseline (raw produce and consume of ~1 KB events, no processing) is measured in the same
run with ``bench.kafka_baseline``'s functions.

Run: ``.venv/bin/python -m bench.stream_processors [--rounds 3000 --steps 10000]`` with the local
stack up.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from bench._machine import describe_machine
from bench._report import update_doc_section, write_results
from bench.kafka_baseline import measure_throughput, one_kb_events
from omium.kernel.kafka import EventProducer, TopicSpec, ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, load_settings
from streams.base import Processor, ProcessorConfig, StreamRuntime
from streams.consensus import ConsensusProcessor
from streams.policy import PolicyFeed, PolicyProcessor
from tests.streams.events import policy_published, round_opened, step_completed, vote

console = Console()

BUDGET = """package bench.budget
import rego.v1
deny contains msg if {
  input.cost_usd > 1
  msg := sprintf("step cost %v over 1 USD", [input.cost_usd])
}
"""
SECRETS = """package bench.secrets
import rego.v1
deny contains "leaks a secret" if contains(input.output, "secret")
"""


def _through(
    kafka: KafkaSettings,
    serde: AvroSerde,
    processor: Processor,
    events: list[dict[str, Any]],
    state_dir: Path,
) -> tuple[float, dict[str, int]]:
    """Seconds from the first publish until ``processor`` committed every event, and its stats."""
    config = ProcessorConfig(app_id=f"bench-{processor.name}", kafka=kafka, state_dir=state_dir)
    runtime = StreamRuntime(processor, config, serde=serde)
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,), daemon=True)
    thread.start()
    _wait(lambda: len(runtime.owned_partitions) == kafka.partitions, "partitions assigned")
    started = time.perf_counter()
    with EventProducer(kafka, serde) as producer:
        for event in events:
            producer.publish(event)
    _wait(lambda: runtime.stats["events"] >= len(events), "every event processed", 600)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join(60)
    return elapsed, dict(runtime.stats)


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def measure_consensus(kafka: KafkaSettings, serde: AvroSerde, rounds: int, state: Path) -> dict:
    """Majority rounds of three voters: open, three votes (the third is refused)."""
    events: list[dict[str, Any]] = []
    for _ in range(rounds):
        round_id = uuid.uuid4()
        events.append(round_opened(round_id, ["a", "b", "c"]))
        events += [vote(round_id, voter, "yes") for voter in ("a", "b", "c")]
    elapsed, stats = _through(kafka, serde, ConsensusProcessor(), events, state)
    votes = 3 * rounds
    return {
        "rounds": rounds,
        "votes": votes,
        "events_in": len(events),
        "events_out": stats["outputs"],
        "seconds": round(elapsed, 2),
        "votes_per_s": round(votes / elapsed),
        "events_in_per_s": round(len(events) / elapsed),
        "transactions": stats["transactions"],
        "aborted_transactions": stats["aborts"],
    }


def measure_policy(kafka: KafkaSettings, serde: AvroSerde, steps: int, state: Path) -> dict:
    """Two deny policies on every step output; one step in ten violates one of them."""
    with EventProducer(kafka, serde) as producer:
        producer.publish(policy_published("budget", BUDGET))
        producer.publish(policy_published("secrets", SECRETS))
    events = [
        step_completed(uuid.uuid4(), cost_usd=2.0 if index % 10 == 0 else 0.1)
        for index in range(steps)
    ]
    processor = PolicyProcessor(PolicyFeed(kafka, serde))
    elapsed, stats = _through(kafka, serde, processor, events, state)
    return {
        "policies": 2,
        "steps": steps,
        "evaluations": processor.evaluations,
        "events_out": stats["outputs"],
        "seconds": round(elapsed, 2),
        "evaluations_per_s": round(processor.evaluations / elapsed),
        "steps_per_s": round(steps / elapsed),
        "transactions": stats["transactions"],
        "aborted_transactions": stats["aborts"],
    }


def run(rounds: int, steps: int, baseline_messages: int) -> dict[str, Any]:
    """Run the baseline and both processors on fresh topics; return the results document."""
    settings = load_settings()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    kafka = settings.kafka.model_copy(update={"topic_prefix": prefix})
    ensure_topics(kafka)
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    topic = f"{prefix}.baseline"
    ensure_topics(kafka, specs=[TopicSpec(topic, kafka.partitions, kafka.replication_factor)])
    baseline = measure_throughput(kafka, topic, one_kb_events(serde, baseline_messages))
    with tempfile.TemporaryDirectory() as state:
        consensus = measure_consensus(kafka, serde, rounds, Path(state))
        policy = measure_policy(kafka, serde, steps, Path(state))
    return {
        "benchmark": "stream_processors",
        "machine": describe_machine(
            ["confluent-kafka", "fastavro", "regopy", "rocksdict", "omium"]
        ),
        "kafka": {"partitions": kafka.partitions, "topic_prefix": prefix},
        "baseline": baseline,
        "consensus": consensus,
        "policy": policy,
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, base = results["machine"], results["baseline"]
    cons, pol = results["consensus"], results["policy"]
    return "\n".join(
        [
            "## Stream processors (`python -m bench.stream_processors`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{results['kafka']['partitions']} partitions, one processor instance, exactly-once "
            "transactions. Clock: first publish → last input committed by the processor.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| Kafka baseline, same run ({base['messages']} messages, "
            f"{base['mean_message_bytes']} B each) | "
            f"produce {base['produce_msgs_per_s']} msg/s · "
            f"consume {base['consume_msgs_per_s']} msg/s |",
            f"| consensus: {cons['rounds']} rounds, {cons['votes']} votes | "
            f"**{cons['votes_per_s']} votes/s** ({cons['events_in_per_s']} events/s in, "
            f"{cons['transactions']} transactions, {cons['seconds']} s) |",
            f"| policy: {pol['steps']} step outputs, {pol['policies']} policies each | "
            f"**{pol['evaluations_per_s']} evaluations/s** ({pol['steps_per_s']} steps/s, "
            f"{pol['transactions']} transactions, {pol['seconds']} s) |",
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/stream_processors.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3_000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--baseline-messages", type=int, default=20_000)
    args = parser.parse_args()
    results = run(args.rounds, args.steps, args.baseline_messages)
    path = write_results("stream_processors", results)
    update_doc_section("stream_processors", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
