"""Stream processors through Kafka, each beside the raw Kafka rate of the same messages.

Consensus and policy: the input events are produced first; a processor (in this process, one
instance, exactly-once transactions) then starts, and the clock runs from the moment it holds
every partition until it committed the last input: consume, decode, decide, encode,
transactional produce and offset commit are inside the figure. The peer is a plain
read-committed consumer reading the same input messages in the same run (``consensus_vs_kafka``,
``policy_vs_kafka``: input events/s over raw consume msg/s).

Scaling: one, then two ``omium worker consensus`` processes share the partitions of fresh
topics; once the group is stable the rounds are produced raw and the clock runs until the
group's committed offsets reach the end (``two_instances_vs_one_consensus``).

The Kafka baseline (raw produce and consume of ~1 KB events) is measured in the same run too.

Run: ``.venv/bin/python -m bench.stream_processors [--rounds 3000 --steps 10000]`` with the local
stack up.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from rich.console import Console

from bench._cpu import CpuMeter, describe
from bench._machine import describe_machine
from bench._report import update_doc_section, write_results
from bench.kafka_baseline import (
    as_published,
    consume_rate,
    measure_throughput,
    one_kb_events,
    produce_rate,
)
from omium.kernel.kafka import (
    EventProducer,
    TopicSpec,
    admin_client,
    consumer_config,
    ensure_topics,
)
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, OmiumSettings, load_settings
from omium.streams.base import Processor, ProcessorConfig, StreamRuntime
from omium.streams.consensus import ConsensusProcessor
from omium.streams.policy import PolicyFeed, PolicyProcessor
from tests.streams.events import (
    BUDGET_POLICY,
    SECRETS_POLICY,
    policy_published,
    round_opened,
    step_completed,
    vote,
)

console = Console()
OMIUM = Path(sys.executable).with_name("omium")


def _through(
    kafka: KafkaSettings,
    serde: AvroSerde,
    processor: Processor,
    expected: int,
    state_dir: Path,
) -> tuple[float, dict[str, int]]:
    """Seconds ``processor`` takes to commit ``expected`` input events already on Kafka.

    The clock starts once the instance holds every partition (group joined, state restored) and
    stops when it has committed the last input: consume, decode, decide, encode, transactional
    produce and offset commit are inside the figure.
    """
    config = ProcessorConfig(app_id=f"bench-{processor.name}", kafka=kafka, state_dir=state_dir)
    runtime = StreamRuntime(processor, config, serde=serde)
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,), daemon=True)
    thread.start()
    _wait(lambda: len(runtime.owned_partitions) == kafka.partitions, "partitions assigned")
    started = time.perf_counter()
    _wait(lambda: runtime.stats["events"] >= expected, "every event processed", 600)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join(60)
    return elapsed, dict(runtime.stats)


def _wait(
    condition: Callable[[], bool], what: str, timeout_s: float = 120, every_s: float = 0.005
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every_s)


def consensus_events(rounds: int) -> list[dict[str, Any]]:
    """Majority rounds of three voters: open, three votes (the third comes after the decision)."""
    events: list[dict[str, Any]] = []
    for _ in range(rounds):
        round_id = uuid.uuid4()
        events.append(round_opened(round_id, ["a", "b", "c"]))
        events += [vote(round_id, voter, "yes") for voter in ("a", "b", "c")]
    return events


def measure_consensus(
    kafka: KafkaSettings, serde: AvroSerde, rounds: int, state: Path
) -> dict[str, Any]:
    """The consensus processor over rounds already on Kafka, and a raw consume of the same."""
    events = consensus_events(rounds)
    produce_rate(kafka, as_published(kafka, serde, events))
    raw = consume_rate(kafka, [f"{kafka.topic_prefix}.consensus"], len(events))
    elapsed, stats = _through(kafka, serde, ConsensusProcessor(), len(events), state)
    votes = 3 * rounds
    return {
        "rounds": rounds,
        "votes": votes,
        "events_in": len(events),
        "events_out": stats["outputs"],
        "seconds": round(elapsed, 2),
        "votes_per_s": round(votes / elapsed),
        "events_in_per_s": round(len(events) / elapsed),
        "raw_consume_msgs_per_s": raw["msgs_per_s"],
        "transactions": stats["transactions"],
        "aborted_transactions": stats["aborts"],
    }


def measure_policy(
    kafka: KafkaSettings, serde: AvroSerde, steps: int, state: Path
) -> dict[str, Any]:
    """Two deny policies on every step output (one step in ten violates one of them)."""
    with EventProducer(kafka, serde) as producer:
        producer.publish(policy_published("budget", BUDGET_POLICY))
        producer.publish(policy_published("secrets", SECRETS_POLICY))
    events = [
        step_completed(uuid.uuid4(), cost_usd=2.0 if index % 10 == 0 else 0.1)
        for index in range(steps)
    ]
    produce_rate(kafka, as_published(kafka, serde, events))
    raw = consume_rate(kafka, [f"{kafka.topic_prefix}.executions"], len(events))
    processor = PolicyProcessor(PolicyFeed(kafka, serde))
    elapsed, stats = _through(kafka, serde, processor, len(events), state)
    return {
        "policies": 2,
        "steps": steps,
        "evaluations": processor.evaluations,
        "events_out": stats["outputs"],
        "seconds": round(elapsed, 2),
        "evaluations_per_s": round(processor.evaluations / elapsed),
        "steps_per_s": round(steps / elapsed),
        "raw_consume_msgs_per_s": raw["msgs_per_s"],
        "transactions": stats["transactions"],
        "aborted_transactions": stats["aborts"],
    }


def _group_members(kafka: KafkaSettings, group: str) -> list[int]:
    """Partitions held by each member of ``group`` (empty unless the group is stable)."""
    admin = admin_client(kafka)
    (future,) = admin.describe_consumer_groups([group], request_timeout=10).values()
    description = future.result()
    if description.state != ConsumerGroupState.STABLE:
        return []
    return [len(m.assignment.topic_partitions) for m in description.members]


def _committed(reader: Consumer, topic: str, partitions: int) -> int:
    """Input offsets ``reader``'s group has committed on ``topic``, summed over partitions."""
    found = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    return sum(max(tp.offset, 0) for tp in found)


def measure_instances(
    settings: OmiumSettings, serde: AvroSerde, rounds: int, instances: int, log_dir: Path
) -> dict[str, Any]:
    """``instances`` ``omium worker consensus`` processes sharing the partitions.

    The processes start on fresh topics and join one group; once it is stable with every member
    holding partitions, the rounds are produced raw; the clock runs from the group's first
    committed offsets until they reach the end (events counted: those committed meanwhile).
    """
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}"})
    ensure_topics(kafka)
    events = as_published(kafka, serde, consensus_events(rounds))
    topic = f"{kafka.topic_prefix}.consensus"
    group = f"{kafka.topic_prefix}.streams.consensus"
    env = {**os.environ, "OMIUM_KAFKA__TOPIC_PREFIX": kafka.topic_prefix}
    processes = []
    with tempfile.TemporaryDirectory() as state:
        try:
            for index in range(instances):
                log = (log_dir / f"stream_processors-consensus-{index}.log").open("wb")
                processes.append(
                    subprocess.Popen(
                        [
                            *(str(OMIUM), "worker", "consensus"),
                            *("--instance-id", f"bench-{index}", "--state-dir", state),
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

            def joined() -> bool:
                held = _group_members(kafka, group)
                return len(held) == instances and all(held)

            _wait(joined, f"{instances} instances in the group", 180)
            # One client for the offset checks, every 50 ms: a new client per check (as before)
            # cost this process more CPU than a worker on the 2 cores under test.
            reader = Consumer(consumer_config(kafka, group))
            named = {p.pid: f"worker-{i}" for i, p in enumerate(processes)}
            producing = threading.Thread(target=produce_rate, args=(kafka, events), daemon=True)
            try:
                producing.start()
                # The clock starts at the group's first commit, so the window is the workers'
                # steady processing, not their first fetch from idle; the events counted are
                # those committed after it.
                _wait(lambda: _committed(reader, topic, kafka.partitions) > 0, "a commit", 120)
                with CpuMeter(named) as cpu:
                    started = time.perf_counter()
                    first = _committed(reader, topic, kafka.partitions)
                    _wait(
                        lambda: _committed(reader, topic, kafka.partitions) >= len(events),
                        "every round committed",
                        600,
                        every_s=0.02,
                    )
                    elapsed = time.perf_counter() - started
                producing.join()
            finally:
                reader.close()
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
    return {
        "instances": instances,
        "events_in": len(events) - first,
        "seconds": round(elapsed, 2),
        "events_in_per_s": round((len(events) - first) / elapsed),
        "cpu": cpu.report(),
    }


def run(
    rounds: int, steps: int, baseline_messages: int, log_dir: Path, instance_rounds: int
) -> dict[str, Any]:
    """Run the baseline and both processors on fresh topics; return the results document."""
    settings = load_settings()
    load_before = [round(x, 2) for x in os.getloadavg()]
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
    one = measure_instances(settings, serde, instance_rounds, 1, log_dir)
    two = measure_instances(settings, serde, instance_rounds, 2, log_dir)
    load_after = [round(x, 2) for x in os.getloadavg()]
    return {
        "benchmark": "stream_processors",
        "machine": {
            **describe_machine(["confluent-kafka", "fastavro", "regopy", "rocksdict", "omium"]),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "kafka": {"partitions": kafka.partitions, "topic_prefix": prefix},
        "baseline": baseline,
        "consensus": consensus,
        "policy": policy,
        "consensus_instances": {"one": one, "two": two},
        "ratios": {
            "consensus_vs_kafka": round(
                consensus["events_in_per_s"] / consensus["raw_consume_msgs_per_s"], 3
            ),
            "policy_vs_kafka": round(policy["steps_per_s"] / policy["raw_consume_msgs_per_s"], 3),
            "two_instances_vs_one_consensus": round(
                two["events_in_per_s"] / one["events_in_per_s"], 3
            ),
        },
        "goals": {
            "consensus_vs_kafka": ">= 0.3",
            "policy_vs_kafka": ">= 0.3",
            "two_instances_vs_one_consensus": "> 1.6",
        },
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, base = results["machine"], results["baseline"]
    cons, pol, ratios = results["consensus"], results["policy"], results["ratios"]
    one, two = results["consensus_instances"]["one"], results["consensus_instances"]["two"]
    return "\n".join(
        [
            "## Stream processors (`python -m bench.stream_processors`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), load average "
            f"{machine['load_average_before'][0]} before and {machine['load_average_after'][0]} "
            f"after; {results['kafka']['partitions']} partitions, exactly-once transactions. "
            "Inputs are on Kafka before the clock starts; it runs from the moment the instance "
            "holds every partition until it committed the last input. The raw peer of each "
            "stage is a read-committed consume of the same input messages in the same run.",
            "",
            "| measure | value | raw Kafka, same messages | ratio (goal) |",
            "|---|---|---|---|",
            f"| consensus: {cons['rounds']} rounds, {cons['votes']} votes, one instance | "
            f"**{cons['events_in_per_s']} events/s in** ({cons['votes_per_s']} votes/s, "
            f"{cons['transactions']} transactions, {cons['seconds']} s) | "
            f"consume {cons['raw_consume_msgs_per_s']} msg/s | "
            f"consensus_vs_kafka **{ratios['consensus_vs_kafka']}** (≥ 0.3) |",
            f"| policy: {pol['steps']} step outputs, {pol['policies']} policies each | "
            f"**{pol['steps_per_s']} events/s in** ({pol['evaluations_per_s']} evaluations/s, "
            f"{pol['transactions']} transactions, {pol['seconds']} s) | "
            f"consume {pol['raw_consume_msgs_per_s']} msg/s | "
            f"policy_vs_kafka **{ratios['policy_vs_kafka']}** (≥ 0.3) |",
            f"| consensus as `omium worker` processes, rounds produced once the group is "
            f"stable, timed from its first commit ({one['events_in']} / {two['events_in']} "
            f"events) | one: {one['events_in_per_s']} events/s · two: "
            f"{two['events_in_per_s']} events/s | - | two_instances_vs_one_consensus "
            f"**{ratios['two_instances_vs_one_consensus']}** (> 1.6) |",
            f"| Kafka baseline, same run ({base['messages']} messages of "
            f"{base['mean_message_bytes']} B) | produce {base['produce_msgs_per_s']} msg/s · "
            f"consume {base['consume_msgs_per_s']} msg/s | | |",
            "",
            f"CPU while one worker ran ({one['seconds']} s): {describe(one['cpu'])}. "
            f"While two ran ({two['seconds']} s): {describe(two['cpu'])}.",
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/stream_processors.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3_000)
    # More for the instances: a 3-4 s window weighs each worker's first fetch and commit.
    parser.add_argument("--instance-rounds", type=int, default=8_000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--baseline-messages", type=int, default=20_000)
    parser.add_argument("--logs", type=Path, default=Path(".omium/logs"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    results = run(args.rounds, args.steps, args.baseline_messages, args.logs, args.instance_rounds)
    path = write_results("stream_processors", results)
    update_doc_section("stream_processors", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
