"""The approval deadline processor: applies an approval's default action once its deadline passed.

Input: ``<prefix>.executions`` (keyed by execution id). ``HumanApprovalRequested`` records the
approval's deadline in the ``approvals`` state table (one entry per run: its pending approvals by
step); ``HumanApprovalGranted``/``Rejected`` and the run's end remove it. A timer looks at the
deadlines of the partitions it owns: an approval still pending ``grace`` after its deadline gets
an ``executions.apply_approval_default`` command on ``<prefix>.commands``, which the command
worker applies once (the command id derives from the request, so a redelivered request or a
second timer never decides twice). The run then records ``HumanApprovalGranted`` or
``HumanApprovalRejected`` with ``decided_by`` ``system:deadline``, and the orchestrator goes on
as after a human decision. An approval whose default is ``escalate`` is not decided at its
deadline: the run records ``HumanApprovalEscalated`` (its escalation's deciders, a new deadline
and a final default), which this processor tracks like a new request, so the final default
applies at the new deadline unless the escalation's deciders decide first.

The deadline lives in the processor's changelogged state, not in a sleeping thread: a processor
restarted (or another instance taking the partition over) reloads the pending deadlines when the
partition is assigned, and applies those that passed while nobody was watching. Other steps of
the run are never held up by the wait: only the gated step waits.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from omium.streams.base import Context, Processor, StateTable, command_event, derived_id

APPROVALS = "approvals"
"""State table: execution id -> ``{"tenant_id", "pending": {step: approval}}``."""

ENDING_EVENTS = frozenset(
    {"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled"}
)

_NAME = "approvals"


class ApprovalDeadlineProcessor(Processor):
    """Applies overdue approvals' default actions, exactly once.

    Args:
        grace: How long after a deadline the timer waits, so a human decision made just before
            it (still on its way through the relay) is seen first; the write side refuses a human
            decision from the deadline on, so the grace only saves a refused command.
    """

    name = _NAME
    tables = (APPROVALS,)

    def __init__(self, *, grace: timedelta = timedelta(seconds=1)) -> None:
        """Start with no deadlines known; they are loaded as partitions are assigned."""
        self._grace = grace
        self._deadlines: dict[int, list[tuple[datetime, str, str]]] = {}
        self.stats = {"requested": 0, "decided": 0, "defaults": 0}

    def input_areas(self) -> Sequence[str]:
        """Run events."""
        return ["executions"]

    # ------------------------------------------------------------------ events

    def handle(self, ctx: Context) -> None:
        """Track approvals as they are requested, decided, or end with their run."""
        event = ctx.event
        assert event is not None
        kind = event["event_type"]
        execution = str(event["aggregate_id"])
        if kind in ("HumanApprovalRequested", "HumanApprovalEscalated"):
            self._requested(ctx, execution, event)
        elif kind in ("HumanApprovalGranted", "HumanApprovalRejected"):
            self._decided(ctx, execution, str(event["payload"]["step_id"]))
        elif kind in ENDING_EVENTS and ctx.get(APPROVALS, execution) is not None:
            ctx.delete(APPROVALS, execution)

    def _requested(self, ctx: Context, execution: str, event: dict[str, Any]) -> None:
        payload = event["payload"]
        step = str(payload["step_id"])
        deadline: datetime = payload["deadline"]
        state = ctx.get(APPROVALS, execution) or {"tenant_id": event["tenant_id"], "pending": {}}
        state["pending"][step] = {
            "deadline": deadline.isoformat(),
            "default_action": payload["default_action"],
            # The request event names this approval: a step asked again later is another one,
            # and so is an escalated approval (its default is another command).
            "request_id": str(event["event_id"]),
        }
        ctx.put(APPROVALS, execution, state)
        heapq.heappush(self._deadlines.setdefault(ctx.partition, []), (deadline, execution, step))
        self.stats["requested"] += 1

    def _decided(self, ctx: Context, execution: str, step: str) -> None:
        state = ctx.get(APPROVALS, execution)
        if state is None or step not in state["pending"]:
            return
        del state["pending"][step]
        self.stats["decided"] += 1
        if state["pending"]:
            ctx.put(APPROVALS, execution, state)
        else:
            ctx.delete(APPROVALS, execution)

    # ------------------------------------------------------------------ timers

    def on_tick(self, ctx: Context) -> None:
        """Ask for the default action of every approval of the partition that is overdue."""
        heap = self._deadlines.get(ctx.partition, [])
        while heap and heap[0][0] + self._grace <= ctx.now:
            deadline, execution, step = heapq.heappop(heap)
            state = ctx.get(APPROVALS, execution)
            if state is None:
                continue  # decided meanwhile, or the run ended
            approval = state["pending"].get(step)
            if approval is None or datetime.fromisoformat(approval["deadline"]) != deadline:
                continue  # decided meanwhile, or asked again with another deadline
            self._apply_default(ctx, execution, step, state, approval)

    def _apply_default(
        self,
        ctx: Context,
        execution: str,
        step: str,
        state: dict[str, Any],
        approval: dict[str, Any],
    ) -> None:
        request = approval["request_id"]
        command = command_event(
            "executions.apply_approval_default",
            command_id=derived_id(_NAME, request, "default"),
            tenant_id=state["tenant_id"],
            target_id=execution,
            args={"step_id": step, "now": ctx.now.isoformat()},
            issued_by=f"streams.{_NAME}",
            occurred_at=ctx.now,
            reason=f"deadline {approval['deadline']} passed: {approval['default_action']}",
            causation_id=request,
            correlation_id=execution,
        )
        ctx.emit(command, key=execution)
        # Forget it here; the run's decision event (from the command) would remove it too.
        del state["pending"][step]
        if state["pending"]:
            ctx.put(APPROVALS, execution, state)
        else:
            ctx.delete(APPROVALS, execution)
        self.stats["defaults"] += 1

    def on_assigned(self, partition: int, tables: dict[str, StateTable]) -> None:
        """Load the deadlines of the partition's pending approvals (after a restart, too)."""
        heap = [
            (datetime.fromisoformat(approval["deadline"]), execution, step)
            for execution, state in tables[APPROVALS].items(partition)
            for step, approval in state["pending"].items()
        ]
        heapq.heapify(heap)
        self._deadlines[partition] = heap

    def on_revoked(self, partition: int) -> None:
        """Forget the partition's deadlines."""
        self._deadlines.pop(partition, None)
