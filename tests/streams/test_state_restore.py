"""Restoring a state table from its changelog streams: more records than the memory budget holds.

The changelog is written straight to Kafka (as committed transactions would have left it), then a
runtime with a small ``restore_buffer_bytes`` joins the group and restores every partition. The
table must hold exactly the last value of every key (tombstones applied), and no write batch of the
restore may have held more than the budget plus one record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from confluent_kafka import Producer

from omium.kernel.kafka import producer_config
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.streams.base import (
    Context,
    Processor,
    ProcessorConfig,
    StreamRuntime,
    encode_value,
)
from tests.streams.conftest import PARTITIONS

pytestmark = pytest.mark.integration

BUDGET = 16 * 1024
KEYS = 1_500  # per partition
PAD = "x" * 80


class Keeper(Processor):
    """Keeps one table and does nothing else."""

    name = "keeper"
    tables = ("kept",)

    def input_areas(self) -> Sequence[str]:
        """Any input; nothing is published to it."""
        return ["consensus"]

    def handle(self, ctx: Context) -> None:
        """Never called here."""


def write_changelog(kafka: KafkaSettings, topic: str) -> dict[int, dict[str, object]]:
    """Two writes per key, then a tombstone for every tenth key; the expected final tables."""
    producer = Producer(producer_config(kafka))
    expected: dict[int, dict[str, object]] = {}
    for partition in range(PARTITIONS):
        final: dict[str, object] = {}
        for generation in (1, 2):
            for index in range(KEYS):
                key = f"k{index}"
                value = {"generation": generation, "index": index, "pad": PAD}
                producer.produce(
                    topic, key=key.encode(), value=encode_value(value), partition=partition
                )
                producer.poll(0)
                final[key] = value
        for index in range(0, KEYS, 10):
            producer.produce(topic, key=f"k{index}".encode(), value=None, partition=partition)
            del final[f"k{index}"]
        expected[partition] = final
    assert producer.flush(60) == 0
    return expected


def test_a_changelog_larger_than_the_restore_budget_restores_in_bounded_batches(
    kafka: KafkaSettings, serde: AvroSerde, tmp_path: Path
) -> None:
    config = ProcessorConfig(
        app_id="keeper",
        kafka=kafka,
        state_dir=tmp_path,
        restore_buffer_bytes=BUDGET,
        session_timeout_ms=6_000,
    )
    runtime = StreamRuntime(Keeper(), config, serde=serde)
    runtime._ensure_topics()
    table = runtime.tables["kept"]
    expected = write_changelog(kafka, table.changelog)
    changelog_bytes = sum(
        len(k) + len(encode_value(v)) for final in expected.values() for k, v in final.items()
    )
    assert changelog_bytes > 20 * BUDGET  # far more than one batch holds

    runtime.start()
    try:
        deadline = time.monotonic() + 120
        while len(runtime.owned_partitions) < PARTITIONS:
            assert time.monotonic() < deadline, "partitions never assigned"
            runtime.run_once()
        for partition in range(PARTITIONS):
            assert dict(table.items(partition)) == expected[partition]
        largest = max(len(f"k{KEYS}") + len(encode_value(v)) for v in expected[0].values())
        assert 0 < table.restore_peak_bytes <= BUDGET + largest
    finally:
        runtime.close()
