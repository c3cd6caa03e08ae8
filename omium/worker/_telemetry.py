"""Telemetry and detected failures, produced straight to Kafka (no aggregate, no invariants).

``SpanRecorded`` goes to ``<prefix>.traces``, ``MetricRecorded`` to ``<prefix>.metrics`` and
``FailureDetected`` to ``<prefix>.failures``, all keyed by the execution id, so the policy and
recovery processors read them in the partition of the run's own events. Each event is a one-event
history (``aggregate_id`` = ``event_id``, version 1), as the stream processors' outputs are.
Failure ids are derived from the attempt, so reporting the same failure again yields the same id
and the recovery processor's commands for it are the same (idempotent) commands.
"""

from __future__ import annotations

import queue
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from omium.kernel.kafka import EventProducer
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.streams.base import derived_id, output_event

log = structlog.get_logger(__name__)

SOURCE = "omium.worker"
"""``detected_by`` of failures and the ``omium.source`` header of everything produced here."""


def trace_id_of(execution_id: str) -> str:
    """The W3C trace id of a run: its execution id's 32 hex digits."""
    return uuid.UUID(execution_id).hex


def new_span_id() -> str:
    """A random 16-hex-digit span id."""
    return secrets.token_hex(8)


@dataclass
class Span:
    """A span being measured; fill in the end, status and usage, then record it.

    Attributes:
        execution_id: The run.
        tenant_id: Its tenant.
        name: Operation name (``step draft``, ``llm.chat`` ...).
        kind: ``step``, ``llm_call``, ``agent``, ``checkpoint`` ...
        step_id: The step, if any.
        parent_span_id: The enclosing span, if any.
    """

    execution_id: str
    tenant_id: str
    name: str
    kind: str
    step_id: str | None = None
    parent_span_id: str | None = None
    span_id: str = field(default_factory=new_span_id)
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    end: datetime | None = None
    status: str = "ok"
    message: str | None = None
    agent: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    attributes: dict[str, str] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        """Mark the span as failed."""
        self.status = "error"
        self.message = message[:2000]

    def payload(self) -> dict[str, Any]:
        """The ``SpanRecorded`` payload (ends now if no end was set)."""
        end = self.end or datetime.now(UTC)
        return {
            "trace_id": trace_id_of(self.execution_id),
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "execution_id": self.execution_id,
            "step_id": self.step_id,
            "name": self.name,
            "kind": self.kind,
            "start_time": self.start,
            "end_time": max(end, self.start),
            "status": self.status,
            "status_message": self.message,
            "attributes": {k: str(v) for k, v in self.attributes.items()},
            "agent": self.agent,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": float(self.cost_usd),
            "cache_hit": False,
        }


@dataclass(frozen=True)
class FailureReport:
    """What a worker detected about a failed attempt.

    Attributes:
        kind: The ``FailureDetected`` kind.
        message: Human-readable description.
        attempt: The attempt that failed.
        agent: The agent that ran it.
        model: The model it used.
        details: Extra facts (strings), e.g. the failed post-condition and recovery settings.
    """

    kind: str
    message: str
    attempt: int
    agent: str | None = None
    model: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pending:
    """A span or metric waiting for the sender thread."""

    event_type: str
    event_id: uuid.UUID
    tenant_id: str
    execution_id: str
    payload: Mapping[str, Any]
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Telemetry:
    """Produces spans, metrics and failures with one idempotent producer.

    Args:
        kafka: Kafka settings (topic prefix).
        serde: Encodes the events.
        producer: Reuse a producer (else one is created and owned).
    """

    def __init__(
        self, kafka: KafkaSettings, serde: AvroSerde, *, producer: EventProducer | None = None
    ) -> None:
        """Produce to the topics of ``kafka``'s prefix."""
        self._kafka = kafka
        self._serde = serde
        self._owned = producer is None
        self._producer = producer or EventProducer(kafka, serde)
        # Spans and metrics are encoded and handed to the producer by a thread of their own,
        # off the step's path; flush() waits for it. Failures are produced by the caller.
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._sender_lock = threading.Lock()

    @property
    def producer(self) -> EventProducer:
        """The producer (shared with dead letters of the worker)."""
        return self._producer

    def record_span(self, span: Span) -> None:
        """Produce one ``SpanRecorded`` (in the background: :meth:`flush` waits for it)."""
        event_id = derived_id(SOURCE, "span", span.execution_id, span.span_id)
        self._later("SpanRecorded", event_id, span.tenant_id, span.execution_id, span.payload())

    def record_metric(
        self,
        name: str,
        value: float,
        *,
        unit: str,
        kind: str,
        tenant_id: str,
        execution_id: str,
        dimensions: Mapping[str, str],
    ) -> None:
        """Produce one ``MetricRecorded`` measurement (in the background, like spans)."""
        payload = {
            "name": name,
            "value": float(value),
            "unit": unit,
            "kind": kind,
            "execution_id": execution_id,
            "dimensions": {k: str(v) for k, v in dimensions.items()},
        }
        self._later("MetricRecorded", uuid.uuid4(), tenant_id, execution_id, payload)

    def report_failure(
        self, *, tenant_id: str, execution_id: str, step_id: str, report: FailureReport
    ) -> str:
        """Produce one ``FailureDetected``; return its failure id (stable per attempt)."""
        failure_id = derived_id(SOURCE, "failure", execution_id, step_id, report.attempt)
        payload = {
            "failure_id": str(failure_id),
            "execution_id": execution_id,
            "step_id": step_id,
            "attempt": report.attempt,
            "kind": report.kind,
            "message": report.message[:4000],
            "signature": f"{step_id}:{report.kind}",
            "agent": report.agent,
            "model": report.model,
            "detected_by": SOURCE,
            "details": {k: str(v) for k, v in report.details.items()},
        }
        self._send("FailureDetected", failure_id, tenant_id, execution_id, payload)
        return str(failure_id)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything produced so far is acknowledged.

        Raises:
            DeliveryError: Something was not acknowledged.
        """
        self._queue.join()
        self._producer.flush(timeout_s)

    def close(self) -> None:
        """Flush, and release the producer if this object created it."""
        self._queue.join()
        with self._sender_lock:
            if self._sender is not None:
                self._queue.put(None)
                self._sender.join(30)
                self._sender = None
        if self._owned:
            self._producer.close()
        else:
            self._producer.flush()

    def _later(
        self,
        event_type: str,
        event_id: uuid.UUID,
        tenant_id: str,
        execution_id: str,
        payload: Mapping[str, Any],
    ) -> None:
        with self._sender_lock:
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_queued, name="telemetry", daemon=True
                )
                self._sender.start()
        pending = _Pending(event_type, event_id, tenant_id, execution_id, payload)
        self._queue.put(pending)

    def _send_queued(self) -> None:
        while True:
            pending = self._queue.get()
            try:
                if pending is None:
                    return
                self._send(
                    pending.event_type,
                    pending.event_id,
                    pending.tenant_id,
                    pending.execution_id,
                    pending.payload,
                    occurred_at=pending.occurred_at,
                )
            except Exception:  # telemetry is best effort; never stop sending the rest
                log.warning(
                    "telemetry.not_produced",
                    event_type=pending and pending.event_type,
                    exc_info=True,
                )
            finally:
                self._queue.task_done()

    def _send(
        self,
        event_type: str,
        event_id: uuid.UUID,
        tenant_id: str,
        execution_id: str,
        payload: Mapping[str, Any],
        *,
        occurred_at: datetime | None = None,
    ) -> None:
        event = output_event(
            event_type,
            event_id=event_id,
            tenant_id=tenant_id,
            payload=payload,
            occurred_at=occurred_at or datetime.now(UTC),
            correlation_id=execution_id,
            catalog=self._serde.catalog,
        )
        headers = [
            ("event_id", str(event_id).encode()),
            ("event_type", event_type.encode()),
            ("tenant_id", tenant_id.encode()),
            ("omium.source", SOURCE.encode()),
        ]
        topic = f"{self._kafka.topic_prefix}.{self._serde.area_of(event_type)}"
        self._producer.send(
            topic, key=execution_id, value=self._serde.encode(event), headers=headers
        )
