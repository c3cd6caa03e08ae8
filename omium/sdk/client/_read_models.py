"""What the read routes answer (read models, search, analytics, subscriptions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import Field

from omium.sdk.client._models import ApiModel

ItemT = TypeVar("ItemT")


class Page(ApiModel, Generic[ItemT]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (``None``: done)."""

    items: list[ItemT]
    next_cursor: str | None


class ExecutionSummary(ApiModel):
    """A run as the read model knows it (for lists and dashboards)."""

    execution_id: str
    workflow_id: str | None
    workflow_version: int | None
    status: str
    trigger: str | None
    started_by: str | None
    parent_execution_id: str | None = None
    forked_from_checkpoint_id: str | None = None
    labels: dict[str, str]
    agents: list[str]
    current_step_id: str | None
    steps_completed: int
    steps_failed: int
    total_tokens: int
    total_cost_usd: float
    duration_ms: int | None
    error_type: str | None
    error_message: str | None
    status_reason: str | None
    started_at: datetime
    ended_at: datetime | None
    updated_at: datetime


class StepView(ApiModel):
    """One attempt of one step in a timeline."""

    step_id: str
    attempt: int
    status: str
    agent: str | None
    worker_id: str | None
    model: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_ms: int | None
    error_type: str | None
    error_message: str | None
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class TimelineEvent(ApiModel):
    """One event about a run (its own, failures, recovery, consensus, policy)."""

    event_id: str
    event_type: str
    area: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: datetime
    step_id: str | None
    summary: dict[str, Any]


class Timeline(ApiModel):
    """A run's timeline page: the run, its steps and its events in order."""

    execution: ExecutionSummary | None
    steps: list[StepView]
    events: list[TimelineEvent]
    next_cursor: str | None


class AuditRecord(ApiModel):
    """One recorded command, accepted or refused."""

    event_id: str
    occurred_at: datetime
    actor: str
    actor_kind: str
    roles: list[str]
    command: str
    target: str | None
    result: str
    reason: str | None
    status_code: int | None
    request_id: str | None
    idempotency_key: str | None
    source_ip: str | None


class RunBucket(ApiModel):
    """Run counts, tokens and cost of one time bucket."""

    bucket: datetime
    runs: int
    completed: int
    failed: int
    stopped: int
    active: int
    failure_rate: float | None
    tokens: int
    cost_usd: float


class RunStats(ApiModel):
    """Run analytics over a window."""

    start: datetime
    end: datetime
    bucket: str
    buckets: list[RunBucket]


class StepBucket(ApiModel):
    """Step counts, latency percentiles, tokens and cost of one bucket and group."""

    bucket: datetime
    key: str | None
    steps: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float


class StepStats(ApiModel):
    """Step analytics over a window."""

    start: datetime
    end: datetime
    bucket: str
    group_by: str | None
    buckets: list[StepBucket]


class Span(ApiModel):
    """A trace span (an agent step, an LLM call, a tool call ...)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    execution_id: str | None = None
    step_id: str | None = None
    name: str
    kind: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status: str
    status_message: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    agent: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cache_hit: bool | None = None


class Trace(ApiModel):
    """Every span of one trace, in start order."""

    trace_id: str
    spans: list[Span]


class Failure(ApiModel):
    """A detected failure merged with its recovery plan."""

    failure_id: str
    execution_id: str | None = None
    step_id: str | None = None
    attempt: int | None = None
    kind: str | None = None
    message: str | None = None
    signature: str | None = None
    agent: str | None = None
    model: str | None = None
    detected_by: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    detected_at: datetime | None = None
    plan_id: str | None = None
    plan: str | None = None
    plan_reason: str | None = None
    planned_at: datetime | None = None
    similar_failure_count: int | None = None


class FailureGroup(ApiModel):
    """Failures with one signature."""

    signature: str
    count: int
    executions: int
    first_seen: datetime | None
    last_seen: datetime | None
    kinds: list[str]
    sample: dict[str, Any] | None


class RunEvent(ApiModel):
    """One event of a run's stream (``stream_events``); ``cursor`` resumes after it."""

    event_type: str
    cursor: str
    event_id: str | None = None
    aggregate_id: str | None = None
    execution_id: str | None = None
    aggregate_version: int = 0
    occurred_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class ChainBreak(ApiModel):
    """The first broken link of one aggregate's hash chain, in the event store or on Kafka."""

    where: str
    kind: str
    aggregate_id: str
    aggregate_version: int | None = None
    expected: str
    found: str
    detail: str = ""
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class IntegrityReport(ApiModel):
    """A history verification: ``ok``, counts, and the first break of each broken chain."""

    execution_id: str | None = None
    ok: bool
    checked_store: bool
    checked_kafka: bool
    aggregates: int
    store_events: int
    kafka_events: int
    kafka_duplicates: int = 0
    unrelayed: int = 0
    dead_lettered: int = 0
    breaks: list[ChainBreak] = Field(default_factory=list)
