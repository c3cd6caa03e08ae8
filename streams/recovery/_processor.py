"""The recovery processor: failure → classification, grouping, plan → ``RecoveryPlanned`` + command.

Two stages in one consumer group, each exactly once:

1. by run (``<prefix>.failures`` and ``<prefix>.executions``, keyed by execution id): keeps the
   run's workflow and last checkpoint (table ``runs``) and counts the failures of each step of
   each run (table ``attempts``, so a crash never resets them), then forwards the failure to the
   internal topic ``<prefix>.streams.recovery.by-signature`` keyed by its signature;
2. by signature: counts earlier failures with the same signature in any run (table
   ``signatures``), plans, and emits ``RecoveryPlanned`` and the plan's commands, keyed by
   execution id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from streams.base import Context, Processor, command_event, derived_id, output_event
from streams.recovery import _mapping as m
from streams.recovery._planning import Plan, RecoverySettings, plan

ATTEMPTS = "attempts"
RUNS = "runs"
SIGNATURES = "signatures"
BY_SIGNATURE = "by-signature"


class RecoveryProcessor(Processor):
    """Plans recovery for every ``FailureDetected``, once.

    Args:
        settings: Recovery settings used where a failure's details do not override them.
        escalation_timeout: How long a human has to answer an escalation before it is rejected.
    """

    name = "recovery"
    tables = (ATTEMPTS, RUNS, SIGNATURES)

    def __init__(
        self,
        settings: RecoverySettings | None = None,
        *,
        escalation_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        """Plan with ``settings`` (defaults: :class:`RecoverySettings`)."""
        self._settings = settings or RecoverySettings()
        self._escalation_timeout = escalation_timeout

    def input_areas(self) -> Sequence[str]:
        """Failures, and executions for checkpoints and workflow ids."""
        return ["failures", "executions"]

    def internal_inputs(self) -> Sequence[str]:
        """The failures regrouped by signature."""
        return [BY_SIGNATURE]

    def handle(self, ctx: Context) -> None:
        """Stage 1 for domain events, stage 2 for the internal topic."""
        event = ctx.event
        assert event is not None and ctx.source is not None
        if ctx.source.topic.endswith(f".{BY_SIGNATURE}"):
            self._plan(ctx, event)
            return
        kind = event["event_type"]
        execution = str(event["aggregate_id"])
        if kind in ("ExecutionStarted", "CheckpointCreated"):
            run = ctx.get(RUNS, execution) or {"workflow": None, "checkpoint": None}
            run.update(m.run_facts(event))
            ctx.put(RUNS, execution, run)
        elif kind == "FailureDetected":
            self._regroup(ctx, event)

    # ------------------------------------------------------------------ stage 1: by run

    def _regroup(self, ctx: Context, event: dict[str, Any]) -> None:
        failure = m.failure_of(event)
        run = ctx.get(RUNS, failure["execution_id"]) or {}
        key = f"{failure['execution_id']}/{failure['step_id'] or '-'}"
        attempts = (ctx.get(ATTEMPTS, key) or 0) + 1
        ctx.put(ATTEMPTS, key, attempts)
        record = m.regrouped(failure, run, attempts=attempts)
        ctx.send_internal(BY_SIGNATURE, key=record["signature"], record=record)

    # ------------------------------------------------------------------ stage 2: by signature

    def _plan(self, ctx: Context, record: dict[str, Any]) -> None:
        seen = ctx.get(SIGNATURES, record["signature"]) or {"count": 0}
        similar = seen["count"]
        ctx.put(SIGNATURES, record["signature"], {"count": similar + 1})
        settings = self._settings.overridden(record["details"])
        chosen = plan(
            record["kind"],
            attempts=record["attempts"],
            similar=similar,
            settings=settings,
            checkpoint_id=record["checkpoint"],
        )
        plan_id = derived_id("recovery", record["event_id"], "plan")
        planned = output_event(
            "RecoveryPlanned",
            event_id=plan_id,
            tenant_id=record["tenant_id"],
            payload=m.planned_payload(record, chosen, plan_id=plan_id, similar=similar),
            occurred_at=ctx.now,
            causation_id=record["event_id"],
            correlation_id=record["correlation_id"],
        )
        ctx.emit(planned, key=record["execution_id"])
        for index, (command, args) in enumerate(self._commands(record, chosen, ctx.now)):
            issued = command_event(
                command,
                command_id=derived_id("recovery", plan_id, index),
                tenant_id=record["tenant_id"],
                target_id=record["execution_id"],
                args=args,
                issued_by="streams.recovery",
                occurred_at=ctx.now,
                reason=f"{chosen.action}: {chosen.reason}",
                causation_id=str(plan_id),
                correlation_id=record["correlation_id"],
            )
            ctx.emit(issued, key=record["execution_id"])

    def _commands(
        self, record: dict[str, Any], chosen: Plan, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        step = record["step_id"]
        if chosen.action == "abort":
            return [
                (
                    "executions.fail_execution",
                    {"error": chosen.reason, "error_type": record["kind"]},
                )
            ]
        if chosen.action == "rollback":
            return [
                (
                    "executions.roll_back_to_checkpoint",
                    {"checkpoint_id": chosen.checkpoint_id, "reason": chosen.reason},
                )
            ]
        if step is None:
            return []  # retry, fallback and escalation act on a step
        if chosen.action == "retry":
            return [("executions.schedule_step", {"step_id": step})]
        if chosen.action == "fallback":
            return [("executions.schedule_step", {"step_id": step, "agent": chosen.fallback_agent})]
        deadline = now + self._escalation_timeout
        return [
            ("executions.schedule_step", {"step_id": step}),
            (
                "executions.request_human_approval",
                {
                    "step_id": step,
                    "deadline": deadline.isoformat(),
                    "default_action": "reject",
                    "prompt": chosen.reason,
                },
            ),
        ]
