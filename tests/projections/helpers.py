"""Helpers for projection tests: hash-chained histories with chosen payloads, and waiting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from omium.kernel.events import GENESIS_HASH
from omium.kernel.kafka import EventProducer
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.testing.samples import sample_event

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class Chain:
    """One aggregate's history, built event by event with payload overrides."""

    def __init__(
        self,
        tenant_id: str,
        *,
        aggregate_id: str | None = None,
        start: datetime = T0,
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.tenant_id = tenant_id
        self.aggregate_id = aggregate_id or str(uuid.uuid4())
        self.events: list[dict[str, Any]] = []
        self._at = start
        self._step = step

    def add(self, event_type: str, *, at: datetime | None = None, **payload: Any) -> dict[str, Any]:
        """Append an event of ``event_type`` with ``payload`` over the sample payload."""
        self._at = at or self._at + self._step
        event = sample_event(
            event_type,
            tenant_id=self.tenant_id,
            aggregate_id=self.aggregate_id,
            aggregate_version=len(self.events) + 1,
            prev_hash=self.events[-1]["hash"] if self.events else GENESIS_HASH,
            payload=payload,
            occurred_at=self._at,
        )
        self.events.append(event)
        return event


def single(event_type: str, tenant_id: str, *, at: datetime = T0, **payload: Any) -> dict[str, Any]:
    """A one-event history (audit entries, failures, telemetry)."""
    return sample_event(event_type, tenant_id=tenant_id, payload=payload, occurred_at=at)


def run_of(
    tenant_id: str,
    *,
    start: datetime = T0,
    workflow_id: uuid.UUID | None = None,
    steps: Iterable[tuple[str, str, bool]] = (("research", "agents.r:run", True),),
    end: str | None = "ExecutionCompleted",
) -> Chain:
    """A run: started, each step scheduled/started/completed (or failed), then ``end``."""
    chain = Chain(tenant_id, start=start)
    chain.add("ExecutionStarted", workflow_id=workflow_id or uuid.uuid4(), labels={})
    for step_id, agent, ok in steps:
        chain.add("StepScheduled", step_id=step_id, agent=agent, depends_on=[])
        chain.add("StepStarted", step_id=step_id, agent=agent)
        if ok:
            chain.add(
                "StepCompleted",
                step_id=step_id,
                duration_ms=1000,
                tokens_in=100,
                tokens_out=50,
                cost_usd=0.01,
            )
        else:
            chain.add("StepFailed", step_id=step_id, attempt=1, failure_id=None)
    if end is not None:
        chain.add(end)
    return chain


def publish(kafka: KafkaSettings, serde: AvroSerde, events: Iterable[dict[str, Any]]) -> int:
    """Produce events to their topics and wait for the acknowledgements."""
    count = 0
    with EventProducer(kafka, serde) as producer:
        for event in events:
            producer.publish(event)
            count += 1
    return count


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout_s: float = 30.0,
    every_s: float = 0.1,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def stream_fields(client: redis.Redis, key: str) -> list[dict[str, str]]:
    """The fields of each entry of a Redis stream, oldest first (``client`` decodes responses)."""
    return [
        {str(name): str(value) for name, value in (fields or {}).items()}
        for _, fields in client.xrange(key) or []
    ]
