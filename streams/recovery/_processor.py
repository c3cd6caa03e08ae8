"""The recovery processor: failure → classification, grouping, plan → ``RecoveryPlanned`` + command.

Two stages in one consumer group, each exactly once:

1. by run (``<prefix>.failures`` and ``<prefix>.executions``, keyed by execution id): keeps the
   run's workflow and last checkpoint (table ``runs``) and counts the failures of each step of
   each run (table ``attempts``, so a crash never resets them), then forwards the failure to the
   internal topic ``<prefix>.streams.recovery.by-signature`` keyed by its signature. It also
   remembers which steps of a run have a failure waiting for its outcome (table ``open``): the
   step's ``StepCompleted`` (success), a failure of it with another signature, or the run ending
   without it (failure) is forwarded as an *outcome* record, keyed by the old signature;
2. by signature: counts earlier failures with the same signature in any run and learns, per
   action, what became of its plans (table ``signatures``), plans, remembers the plan of each
   run's step until its outcome is known (table ``pending``), and emits ``RecoveryPlanned`` and
   the plan's commands, keyed by execution id. A failure of a step that has a pending plan with
   the same signature is that plan's failed outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from omium.streams.base import Context, Processor, command_event, derived_id, output_event
from omium.streams.recovery import _mapping as m
from omium.streams.recovery._learning import ActionStats
from omium.streams.recovery._planning import Plan, RecoverySettings, plan, retryable_failure

ATTEMPTS = "attempts"
RUNS = "runs"
SIGNATURES = "signatures"
OPEN = "open"
PENDING = "pending"
BY_SIGNATURE = "by-signature"

_RUN_ENDED = ("ExecutionFailed", "ExecutionHalted", "ExecutionCancelled", "ExecutionCompleted")


class RecoveryProcessor(Processor):
    """Plans recovery for every ``FailureDetected``, once.

    Args:
        settings: Recovery settings used where a failure's details do not override them.
        escalation_timeout: How long a human has to answer an escalation before it is rejected.
    """

    name = "recovery"
    tables = (ATTEMPTS, RUNS, SIGNATURES, OPEN, PENDING)

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
            if event.get("type") == m.OUTCOME:
                self._learn(ctx, event)
            else:
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
        elif kind == "StepCompleted":
            self._step_passed(ctx, execution, event)
        elif kind in _RUN_ENDED:
            self._run_ended(ctx, execution, kind)

    # ------------------------------------------------------------------ stage 1: by run

    def _regroup(self, ctx: Context, event: dict[str, Any]) -> None:
        failure = m.failure_of(event)
        run = ctx.get(RUNS, failure["execution_id"]) or {}
        key = f"{failure['execution_id']}/{failure['step_id'] or '-'}"
        attempts = (ctx.get(ATTEMPTS, key) or 0) + 1
        ctx.put(ATTEMPTS, key, attempts)
        record = m.regrouped(failure, run, attempts=attempts)
        execution, step = failure["execution_id"], failure["step_id"] or "-"
        steps = ctx.get(OPEN, execution) or {}
        previous = steps.get(step)
        if previous is not None and previous["signature"] != record["signature"]:
            # The plan for the old signature did not fix the step (same signature: the failure
            # record itself tells the by-signature stage).
            self._send_outcome(
                ctx, execution, step, previous, success=False, cause="FailureDetected"
            )
        steps[step] = {"signature": record["signature"]}
        ctx.put(OPEN, execution, steps)
        ctx.send_internal(BY_SIGNATURE, key=record["signature"], record=record)

    def _step_passed(self, ctx: Context, execution: str, event: dict[str, Any]) -> None:
        steps = ctx.get(OPEN, execution)
        step, attempt, cost = m.completed_step(event)
        if not steps or step not in steps:
            return  # no failure waits for this step (or a duplicate StepCompleted)
        opened = steps.pop(step)
        self._send_outcome(
            ctx,
            execution,
            step,
            opened,
            success=True,
            attempt=attempt,
            cost=cost,
            cause="StepCompleted",
        )
        if steps:
            ctx.put(OPEN, execution, steps)
        else:
            ctx.delete(OPEN, execution)

    def _run_ended(self, ctx: Context, execution: str, kind: str) -> None:
        steps = ctx.get(OPEN, execution)
        if steps is None:
            return
        for step, opened in sorted(steps.items()):
            self._send_outcome(ctx, execution, step, opened, success=False, cause=kind)
        ctx.delete(OPEN, execution)

    def _send_outcome(
        self,
        ctx: Context,
        execution: str,
        step: str,
        opened: dict[str, Any],
        *,
        success: bool,
        cause: str,
        attempt: int = 0,
        cost: float = 0.0,
    ) -> None:
        record = m.outcome(
            signature=opened["signature"],
            execution_id=execution,
            step_id=None if step == "-" else step,
            success=success,
            attempt=attempt,
            cost_usd=cost,
            cause=cause,
        )
        ctx.send_internal(BY_SIGNATURE, key=opened["signature"], record=record)

    # ------------------------------------------------------------------ stage 2: by signature

    def _plan(self, ctx: Context, record: dict[str, Any]) -> None:
        signature = record["signature"]
        seen = ctx.get(SIGNATURES, signature) or {"count": 0}
        similar = seen["count"]
        actions = dict(seen.get("actions") or {})
        pending_key = _pending_key(signature, record["execution_id"], record["step_id"])
        pending = ctx.get(PENDING, pending_key)
        if pending is not None:
            # The step failed again the same way: the plan made for it did not fix it.
            _record_outcome(actions, pending["action_key"], success=False)
        settings = self._settings.overridden(record["details"])
        chosen = plan(
            record["kind"],
            attempts=record["attempts"],
            similar=similar,
            settings=settings,
            checkpoint_id=record["checkpoint"],
            stats={key: ActionStats.from_record(value) for key, value in actions.items()},
            retryable=retryable_failure(record["details"]),
        )
        ctx.put(SIGNATURES, signature, {"count": similar + 1, "actions": actions})
        plan_id = derived_id("recovery", record["event_id"], "plan")
        ctx.put(PENDING, pending_key, {"action_key": chosen.key, "plan_id": str(plan_id)})
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

    def _learn(self, ctx: Context, record: dict[str, Any]) -> None:
        signature = record["signature"]
        pending_key = _pending_key(signature, record["execution_id"], record["step_id"])
        pending = ctx.get(PENDING, pending_key)
        if pending is None:
            return  # already counted (the step failed again with this signature first)
        seen = ctx.get(SIGNATURES, signature) or {"count": 0}
        actions = dict(seen.get("actions") or {})
        _record_outcome(
            actions,
            pending["action_key"],
            success=bool(record["success"]),
            attempts=int(record.get("attempt") or 0),
            cost_usd=float(record.get("cost_usd") or 0.0),
        )
        ctx.put(SIGNATURES, signature, {**seen, "actions": actions})
        ctx.delete(PENDING, pending_key)

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


def _pending_key(signature: str, execution: str, step: str | None) -> str:
    return f"{signature}|{execution}/{step or '-'}"


def _record_outcome(
    actions: dict[str, Any],
    key: str,
    *,
    success: bool,
    attempts: int = 0,
    cost_usd: float = 0.0,
) -> None:
    stats = ActionStats.from_record(actions[key]) if key in actions else ActionStats(key)
    actions[key] = stats.with_outcome(
        success=success, attempts=attempts, cost_usd=cost_usd
    ).to_record()
