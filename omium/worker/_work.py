"""Work items: what the orchestrator hands to execution workers, and the topic they travel on.

A work item says "run (or check on) step S of run R"; it never carries the step's result. The
worker decides what to do from the run's current state in the event store, so an item delivered
twice, late, or after the step already completed does nothing harmful.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from omium.kernel.kafka import TopicSpec
from omium.kernel.settings import KafkaSettings

ORCHESTRATOR_APP = "orchestrator"
"""The orchestrator's processor name (its group is ``<prefix>.streams.orchestrator``)."""

WORK_SUFFIX = "work"
"""Suffix of the orchestrator's output topic that execution workers consume."""

WORKER_GROUP_SUFFIX = "worker.execute"
"""Suffix of the execution workers' consumer group (``<prefix>.worker.execute``)."""


def work_topic(kafka: KafkaSettings) -> str:
    """The topic work items are produced to: ``<prefix>.streams.orchestrator.work``."""
    return f"{kafka.topic_prefix}.streams.{ORCHESTRATOR_APP}.{WORK_SUFFIX}"


def worker_group(kafka: KafkaSettings) -> str:
    """The consumer group every execution worker of this deployment joins."""
    return f"{kafka.topic_prefix}.{WORKER_GROUP_SUFFIX}"


def work_topic_spec(kafka: KafkaSettings) -> TopicSpec:
    """The work topic: as many partitions as the domain topics (workers scale up to that)."""
    return TopicSpec(
        name=work_topic(kafka),
        partitions=kafka.partitions,
        replication_factor=kafka.replication_factor,
        config={
            "cleanup.policy": "delete",
            "min.insync.replicas": str(min(2, kafka.replication_factor)),
        },
    )


@dataclass(frozen=True)
class WorkItem:
    """One dispatch of one step of one run.

    Attributes:
        dispatch_id: Unique per dispatch (derived from the event that caused it); the idempotency
            key of the ``start_step`` it leads to.
        tenant_id: The run's tenant.
        execution_id: The run.
        workflow_id: The workflow being run.
        workflow_version: Its definition version.
        step_id: The step to run.
        reason: ``scheduled``, ``rollback``, ``fork`` or ``approval_granted``.
        agent: Agent to run instead of the definition's (a recovery fallback), if any.
        model: Model to use instead of the agent's (a recovery fallback), if any.
        restore_checkpoint_id: Checkpoint whose state the step starts from (after a rollback).
        not_before: Earliest start (ISO 8601), when recovery asked for a backoff.
        pipeline: Whether the worker may go on to the next step itself; false while the
            tenant or the workflow has a step concurrency limit (every step waits in line).
    """

    dispatch_id: str
    tenant_id: str
    execution_id: str
    workflow_id: str
    workflow_version: int
    step_id: str
    reason: str = "scheduled"
    agent: str | None = None
    model: str | None = None
    restore_checkpoint_id: str | None = None
    not_before: str | None = None
    pipeline: bool = True

    def to_record(self) -> dict[str, Any]:
        """The JSON-compatible record produced to the work topic."""
        return {"v": 1, **asdict(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> WorkItem:
        """Read a record written by :meth:`to_record`.

        Raises:
            ValueError: Not a work item.
        """
        fields = {k: v for k, v in record.items() if k != "v"}
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ValueError(f"not a work item: {exc}") from None

    @classmethod
    def from_bytes(cls, raw: bytes) -> WorkItem:
        """Decode a work item message value.

        Raises:
            ValueError: Not JSON, or not a work item.
        """
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError("a work item must be a JSON object")
        return cls.from_record(record)

    def not_before_time(self) -> datetime | None:
        """:attr:`not_before` as a datetime."""
        return None if self.not_before is None else datetime.fromisoformat(self.not_before)
