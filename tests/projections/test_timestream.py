"""The Timestream projection against the AWS emulator: batched records, rejected ones to the DLQ."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections.base import ProjectionRunner
from omium.projections.timestream import MAX_RECORDS_PER_CALL, timestream_client
from tests.projections.helpers import T0, Chain, publish, single, wait_for

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


class Observed:
    """The real emulator client, with every WriteRecords call's record count noted."""

    def __init__(self, client: Any, *, refuse: str | None = None) -> None:
        self._client = client
        self._refuse = refuse
        self.calls: list[int] = []
        self.records: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def write_records(self, **kwargs: Any) -> Any:
        records = kwargs["Records"]
        self.calls.append(len(records))
        bad = [i for i, r in enumerate(records) if r["MeasureName"] == self._refuse]
        if bad:
            # The emulator accepts everything; real Timestream refuses e.g. records older than
            # the memory store's retention, answering like this.
            raise ClientError(
                {
                    "Error": {"Code": "RejectedRecordsException", "Message": "no"},
                    "RejectedRecords": [{"RecordIndex": i, "Reason": "too old"} for i in bad],
                },
                "WriteRecords",
            )
        self.records += records
        return self._client.write_records(**kwargs)


def test_records_go_out_in_calls_of_at_most_100(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: OmiumSettings,
    timestream_projection_factory: Factory,
    runner_factory: Callable[..., ProjectionRunner],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    run = Chain(tenant, step=timedelta(milliseconds=10))
    run.add("ExecutionStarted")
    for i in range(40):
        run.add("StepCompleted", step_id=f"s{i}", duration_ms=100 + i)
    run.add("ExecutionCompleted", duration_ms=5000)
    failure = single("FailureDetected", tenant, at=T0)
    publish(kafka, serde, [*run.events, failure])
    client = Observed(timestream_client(settings.aws))
    projection = timestream_projection_factory(kafka, client=client)
    runner = runner_factory(projection, kafka, max_batch=1000)
    wait_for(
        lambda: runner.run_once() is not None and runner.events_total >= 43,
        every_s=0,
        what="all events projected",
    )

    assert max(client.calls) <= MAX_RECORDS_PER_CALL
    names = [r["MeasureName"] for r in client.records]
    assert names.count("step.duration_ms") == 40
    assert names.count("step.tokens_in") == 40
    assert names.count("execution.ended") == 1 and names.count("failures") == 1
    assert len(client.records) == 40 * 4 + 2 + 1
    dims = {d["Name"]: d["Value"] for d in client.records[0]["Dimensions"]}
    assert dims["tenant_id"] == tenant


def test_rejected_records_are_dead_lettered_and_the_rest_written(
    kafka_factory: Factory,
    serde: AvroSerde,
    settings: OmiumSettings,
    timestream_projection_factory: Factory,
    runner_factory: Callable[..., ProjectionRunner],
) -> None:
    kafka = kafka_factory(partitions=1)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    publish(kafka, serde, [single("FailureDetected", tenant), single("PolicyViolated", tenant)])
    client = Observed(timestream_client(settings.aws), refuse="policy.violations")
    projection = timestream_projection_factory(kafka, client=client)
    runner = runner_factory(projection, kafka)
    dead = 0

    def step() -> bool:
        nonlocal dead
        dead += runner.run_once().dead_lettered
        return dead >= 1 and runner.events_total >= 2

    wait_for(step, every_s=0, what="a dead-lettered record")
    assert dead == 1
