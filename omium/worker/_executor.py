"""Handling one work item: decide from the run's current state, claim, start, run, or take over.

The item only says which step; what to do comes from the run as the event store has it now:

- the run ended, the step is gone (rolled back), completed or failed → nothing to do (a
  redelivered item for an attempt that already finished does nothing);
- the step is scheduled → claim it (Redis heartbeat), ``start_step`` (idempotent per dispatch),
  run the attempt;
- the step is running and its claim is alive → another worker has it: watch until it finishes
  (if that worker dies meanwhile, this one takes over);
- the step is running and nobody holds it → its worker died: record the lost attempt
  (``fail_step``, ``worker_lost``) and schedule the step again; the new attempt resumes from the
  step's last checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from commands import ConflictError
from commands.executions import TERMINAL_STATES, ExecutionView, StepView
from omium.kernel.errors import DomainError
from omium.worker._attempt import Attempt, AttemptLostError, AttemptRunner
from omium.worker._services import WorkerServices
from omium.worker._telemetry import Span
from omium.worker._work import WorkItem
from streams.base import derived_id

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
"""``error_type`` of an attempt whose worker stopped heart-beating."""

Action = Callable[[WorkItem, ExecutionView, StepView], "str | None"]
"""What a claimed step is taken to: a summary, or ``None`` to look at the run again."""


class StepExecutor:
    """Takes work items to their outcome.

    Args:
        services: The worker's shared services.
        stop: Set when the worker is stopping (waiting loops give up; the item is redelivered).
        watch_interval_s: How often a watched step is looked at again.
    """

    def __init__(
        self, services: WorkerServices, *, stop: threading.Event, watch_interval_s: float = 0.5
    ) -> None:
        """Use ``services``; give up waiting when ``stop`` is set."""
        self._s = services
        self._stop = stop
        self._interval = watch_interval_s
        self._attempts = AttemptRunner(services)

    def process(self, item: WorkItem) -> str | None:
        """Take the item to its outcome; return what happened (``None``: stopped, redeliver)."""
        self._wait_until(item.not_before_time())
        while not self._stop.is_set():
            run = self._s.apps.executions.get_execution(item.tenant_id, UUID(item.execution_id))
            step = _step(run, item.step_id)
            outcome = self._settled(run, step)
            if outcome is not None:
                return outcome
            assert step is not None
            act = self._claim(run, step)
            if act is None:
                self._stop.wait(self._interval)  # another worker holds it: watch
                continue
            try:
                outcome = act(item, run, step)
            finally:
                self._s.heartbeats.release(str(run.id), step.step_id)
            if outcome is not None:
                return outcome
        return None

    # ------------------------------------------------------------------ decisions

    def _settled(self, run: ExecutionView, step: StepView | None) -> str | None:
        if run.state in TERMINAL_STATES:
            return f"nothing to do: the run is {run.state}"
        if step is None:
            return "nothing to do: the step is not scheduled (rolled back)"
        if step.status in ("completed", "failed"):
            return f"nothing to do: attempt {step.attempts} already {step.status}"
        pending = any(a.step_id == step.step_id and a.status == "pending" for a in run.approvals)
        if step.status == "scheduled" and pending:
            return "waiting for a human approval (dispatched again once granted)"
        return None

    def _claim(self, run: ExecutionView, step: StepView) -> Action | None:
        """What to do with the step once claimed, or ``None`` when another worker holds it."""
        beats, execution = self._s.heartbeats, str(run.id)
        if step.status == "scheduled" and beats.claim(execution, step.step_id):
            return self._start_and_run
        orphaned = step.status == "running" and beats.holder(execution, step.step_id) is None
        if orphaned and beats.claim(execution, step.step_id):
            return self._take_over
        return None

    def _start_and_run(self, item: WorkItem, run: ExecutionView, step: StepView) -> str | None:
        try:
            result = self._s.apps.executions.start_step(
                run.tenant_id,
                run.id,
                step_id=step.step_id,
                expected_version=run.version,
                idempotency_key=str(derived_id("omium.worker", item.dispatch_id, "start")),
            )
        except ConflictError:
            return None  # the run changed since it was read: decide again
        except DomainError as exc:
            return f"not started: {exc}"
        if result.replayed:
            return None  # this dispatch was started before: look at the run again
        attempt = self._attempt(item, run, step.attempts + 1)
        try:
            summary = self._attempts.run(attempt)
        except AttemptLostError as exc:
            attempt.span.fail(str(exc))
            summary = f"dropped: {exc}"
        finally:
            self._finish(attempt)
        return summary

    def _take_over(self, item: WorkItem, run: ExecutionView, step: StepView) -> str | None:
        executions = self._s.apps.executions
        lost = str(derived_id("omium.worker", run.id, step.step_id, step.attempts, "lost"))
        try:
            executions.fail_step(
                run.tenant_id, run.id, step_id=step.step_id, error_type=WORKER_LOST,
                error=f"the worker running attempt {step.attempts} stopped heart-beating",
                retryable=True, expected_version=run.version, idempotency_key=lost,
            )
            executions.schedule_step(
                run.tenant_id, run.id, step_id=step.step_id, idempotency_key=f"{lost}:again"
            )
        except ConflictError:
            return None
        except DomainError as exc:
            return f"no takeover: {exc}"
        self._s.telemetry.record_metric(
            "worker.takeover", 1, unit="1", kind="counter", tenant_id=run.tenant_id,
            execution_id=str(run.id), dimensions={"step": step.step_id},
        )
        return f"took over attempt {step.attempts} of a lost worker; step scheduled again"

    # ------------------------------------------------------------------ attempts

    def _attempt(self, item: WorkItem, run: ExecutionView, number: int) -> Attempt:
        definition = self._s.definitions.require(
            item.tenant_id, item.workflow_id, item.workflow_version
        )
        step = definition.step(item.step_id)
        agent = item.agent or step.agent
        span = Span(
            str(run.id), run.tenant_id, f"step {step.id}", "step", step_id=step.id,
            agent=agent, model=item.model,
            attributes={"attempt": str(number), "worker": self._s.worker_id,
                        "dispatch": item.reason, "workflow": definition.name},
        )
        deadline = time.monotonic() + definition.timeout_for(step)
        return Attempt(item, run, definition, step, number, span, deadline)

    def _finish(self, attempt: Attempt) -> None:
        attempt.cancel.set()  # an abandoned agent thread makes no further calls
        span = attempt.span
        span.end = datetime.now(UTC)
        span.tokens_in = attempt.usage.tokens_in
        span.tokens_out = attempt.usage.tokens_out
        span.cost_usd = attempt.usage.cost_usd
        span.model = attempt.usage.model or span.model
        span.attributes["checkpoints"] = ",".join(attempt.checkpoints)
        telemetry = self._s.telemetry
        telemetry.record_span(span)
        duration_ms = (span.end - span.start).total_seconds() * 1000
        telemetry.record_metric(
            "step.duration", duration_ms, unit="ms", kind="histogram",
            tenant_id=span.tenant_id, execution_id=span.execution_id,
            dimensions={"step": attempt.step.id, "status": span.status,
                        "workflow": attempt.definition.name},
        )
        telemetry.flush()

    def _wait_until(self, when: datetime | None) -> None:
        if when is not None:
            delay = (when - datetime.now(UTC)).total_seconds()
            if delay > 0:
                self._stop.wait(delay)


def _step(run: ExecutionView, step_id: str) -> StepView | None:
    return next((step for step in run.steps if step.step_id == step_id), None)
