"""Typed keyword arguments of the list and search methods (``**filters: Unpack[...]``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

Bucket = Literal["minute", "hour", "day"]


class ExecutionFilters(TypedDict, total=False):
    """Filters of ``list_executions`` (the read model's runs list)."""

    status: str
    workflow_id: str
    agent: str
    started_after: datetime
    started_before: datetime
    label: list[str]
    limit: int
    cursor: str


class AuditFilters(TypedDict, total=False):
    """Filters of ``list_audit``."""

    actor: str
    command: str
    result: str
    target: str
    after: datetime
    before: datetime
    limit: int
    cursor: str


class RunStatsQuery(TypedDict, total=False):
    """Parameters of ``run_stats``."""

    bucket: Bucket
    start: datetime
    end: datetime
    workflow_id: str


class StepStatsQuery(TypedDict, total=False):
    """Parameters of ``step_stats``."""

    bucket: Bucket
    start: datetime
    end: datetime
    group_by: Literal["workflow", "agent", "model"]


class SpanFilters(TypedDict, total=False):
    """Filters of ``search_spans``."""

    q: str
    trace_id: str
    execution_id: str
    kind: str
    status: str
    agent: str
    model: str
    start: datetime
    end: datetime
    limit: int
    cursor: str


class FailureFilters(TypedDict, total=False):
    """Filters of ``search_failures``."""

    q: str
    kind: str
    signature: str
    execution_id: str
    agent: str
    model: str
    plan: str
    start: datetime
    end: datetime
    limit: int
    cursor: str


class FailureGroupQuery(TypedDict, total=False):
    """Parameters of ``failure_groups``."""

    kind: str
    start: datetime
    end: datetime
    size: int
