"""The OpenSearch projection against real Kafka and OpenSearch: documents, ids, rejections."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from omium.kernel.kafka import ConsumedEvent
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.projections.base import FlushResult, ProjectionRunner
from omium.projections.opensearch import DocWrite, OpenSearchProjection
from tests.projections.helpers import publish, single, wait_for

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def run_until(runner: ProjectionRunner, total: int) -> None:
    wait_for(
        lambda: runner.run_once() is not None and runner.events_total >= total,
        every_s=0,
        what=f"{total} events projected",
    )


def world(tenant: str) -> list[dict[str, Any]]:
    trace = uuid.uuid4().hex
    spans = [
        single(
            "SpanRecorded", tenant, trace_id=trace, span_id=f"{i:016x}", name=name, status=status
        )
        for i, (name, status) in enumerate(
            [("llm.chat", "ok"), ("tool.search", "error"), ("llm.chat", "ok")]
        )
    ]
    failure_id = uuid.uuid4()
    failures = [
        single(
            "FailureDetected", tenant, failure_id=failure_id, message="citations missing in review"
        ),
        single("RecoveryPlanned", tenant, failure_id=failure_id, plan="rollback"),
    ]
    audit = [single("CommandRecorded", tenant) for _ in range(2)]
    return spans + failures + audit


def test_documents_are_written_once_per_subject(
    kafka: KafkaSettings,
    serde: AvroSerde,
    opensearch_projection_factory: Factory,
    runner_factory: Callable[..., ProjectionRunner],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = world(tenant)
    publish(kafka, serde, events + events)  # redelivered: same ids, same documents
    projection: OpenSearchProjection = opensearch_projection_factory(kafka)
    run_until(runner_factory(projection, kafka), 2 * len(events))

    client, targets = projection.client, projection.targets
    for target in targets.values():
        client.refresh(target)
    assert client.count(targets["spans"]) == 3
    assert client.count(targets["audit"]) == 2
    assert client.count(targets["failures"]) == 1
    merged = client.request("POST", f"/{targets['failures']}/_search", body={})
    failure = merged["hits"]["hits"][0]["_source"]
    assert failure["plan"] == "rollback"
    assert failure["message"] == "citations missing in review"
    errors = client.count(targets["spans"], {"term": {"status": "error"}})
    assert errors == 1


def test_a_document_the_index_refuses_is_dead_lettered(
    kafka_factory: Factory,
    serde: AvroSerde,
    opensearch_projection_factory: Factory,
    runner_factory: Callable[..., ProjectionRunner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omium.projections.opensearch import MAPPERS

    kafka = kafka_factory(partitions=1)
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    def bad(event: dict[str, Any]) -> list[DocWrite]:
        # A field the strict mapping does not know: refused with 400, for good.
        return [DocWrite("audit", f"{tenant}:bad", {"tenant_id": tenant, "surprise": 1})]

    publish(kafka, serde, [single("CommandRecorded", tenant), single("SpanRecorded", tenant)])
    monkeypatch.setitem(MAPPERS, "SpanRecorded", bad)
    projection: OpenSearchProjection = opensearch_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    dead = 0

    def step() -> bool:
        nonlocal dead
        dead += runner.run_once().dead_lettered
        return runner.events_total >= 2 and dead >= 1

    wait_for(step, every_s=0, what="one dead letter")
    projection.client.refresh(projection.targets["audit"])
    assert projection.client.count(projection.targets["audit"]) == 1


def test_a_batch_is_split_into_bulk_requests_by_bytes(
    kafka: KafkaSettings,
    serde: AvroSerde,
    opensearch_projection_factory: Factory,
    runner_factory: Callable[..., ProjectionRunner],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = [single("CommandRecorded", tenant) for _ in range(40)]
    publish(kafka, serde, events)
    projection: OpenSearchProjection = opensearch_projection_factory(kafka)
    small = OpenSearchProjection(
        projection.client, prefix=kafka.topic_prefix.lower(), max_bulk_bytes=4000
    )
    run_until(runner_factory(small, kafka, max_batch=1000), len(events))
    # Each audit document is some hundreds of bytes: 40 of them do not fit in one request.
    assert small.bulk_requests > 2
    projection.client.refresh(f"{kafka.topic_prefix.lower()}-audit")
    assert projection.client.count(f"{kafka.topic_prefix.lower()}-audit") == len(events)


def test_concurrent_merges_into_one_document_are_retried_not_dead_lettered(
    kafka: KafkaSettings, opensearch_projection_factory: Factory
) -> None:
    """A failure and its plan merge into one document; two writers (replay workers, or two
    projection instances) may update it at the same moment. OpenSearch answers the loser with a
    409 version conflict: the update is retried on the fresh document instead of being lost."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    failure_ids = [uuid.uuid4() for _ in range(40)]
    detected = [single("FailureDetected", tenant, failure_id=f) for f in failure_ids]
    planned = [single("RecoveryPlanned", tenant, failure_id=f) for f in failure_ids]
    first: OpenSearchProjection = opensearch_projection_factory(kafka)
    second = OpenSearchProjection(first.client, prefix=kafka.topic_prefix.lower())
    results: list[FlushResult] = []

    def write(projection: OpenSearchProjection, events: list[dict[str, Any]]) -> None:
        for round_ in range(5):  # the same merges again: each round races the other writer
            batch = [
                (consumed, projection.prepare(consumed))
                for consumed in (
                    ConsumedEvent(topic="t", partition=0, offset=i, key=None, event=e, raw=b"")
                    for i, e in enumerate(events)
                )
            ]
            results.append(projection.write(batch, {("t", round_): 1}, {}))

    writers = [
        threading.Thread(target=write, args=(first, detected)),
        threading.Thread(target=write, args=(second, planned)),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)

    assert [r.rejected for r in results] == [[]] * 10
    index = f"{kafka.topic_prefix.lower()}-failures"
    first.client.refresh(index)
    assert first.client.count(index) == len(failure_ids)
    both = {"bool": {"filter": [{"exists": {"field": "signature"}}, {"exists": {"field": "plan"}}]}}
    assert first.client.count(index, both) == len(failure_ids)  # whoever came second
