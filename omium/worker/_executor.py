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

A step that completed and went on to the next step in the same save (a pipelined chain, see
:mod:`omium.worker._pipeline`) is followed to that step first, so the chain's first work item,
delivered again after its worker died, finds the step that was running.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import structlog

from omium.commands import ConflictError
from omium.commands.executions import TERMINAL_STATES, ExecutionView, StepView
from omium.kernel.errors import DomainError
from omium.streams.base import derived_id
from omium.worker._attempt import Attempt, AttemptLostError, AttemptRunner, new_attempt
from omium.worker._pipeline import StepPipeline, advanced_from
from omium.worker._services import WorkerServices
from omium.worker._work import WorkItem

log = structlog.get_logger(__name__)

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
        self.pipeline = StepPipeline(services, stop=stop) if services.pipeline else None
        self._attempts = AttemptRunner(services, pipeline=self.pipeline)

    def process(self, item: WorkItem) -> str | None:
        """Take the item to its outcome; return what happened (``None``: stopped, redeliver)."""
        self._wait_until(item.not_before_time())
        current = item
        while not self._stop.is_set():
            run = self._s.apps.executions.get_execution(item.tenant_id, UUID(item.execution_id))
            current, step = self._follow(current, run)
            if current is not item and step is not None and step.status == "scheduled":
                # Scheduled again (taken over, rolled back): its own work item runs it.
                return f"nothing to do: {step.step_id} was scheduled again"
            outcome = self._settled(run, step)
            if outcome is not None:
                return outcome
            assert step is not None
            act = self._claim(run, step)
            if act is None:
                self._stop.wait(self._interval)  # another worker holds it: watch
                continue
            try:
                outcome = act(current, run, step)
            finally:
                self._s.heartbeats.release(str(run.id), step.step_id)
            if outcome is not None:
                return outcome
        return None

    def _follow(self, item: WorkItem, run: ExecutionView) -> tuple[WorkItem, StepView | None]:
        """The item's step, or the step its attempt went on to, and so on (a pipelined chain).

        A chain runs under its first work item, which stays uncommitted until the chain ends: a
        worker that gets the item again (its first worker died) follows the chain to the step
        that was running and watches it or takes it over like any other.
        """
        step = _step(run, item.step_id)
        while step is not None and step.status == "completed":
            following = advanced_from(self._s, item)
            if following is None:
                break
            item, step = following, _step(run, following.step_id)
        return item, step

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
        number = step.attempts + 1
        first = self._attempt(item, _started(run, step.step_id, number, result.version), number)
        first.version = result.version
        summaries: list[str] = []
        attempt: Attempt | None = first
        while attempt is not None:  # the first step, then the steps it went on to
            try:
                summary = self._attempts.run(attempt)
            except AttemptLostError as exc:
                attempt.span.fail(str(exc))
                summary = f"dropped: {exc}"
            finally:
                self._finish(attempt, flush=attempt.next is None)
                # The first one's claim is released by process(); one that went on had its
                # release deferred to the next claim (see StepPipeline.advance).
                if attempt is not first and attempt.next is None:
                    self._s.heartbeats.release(str(run.id), attempt.step.id)
            summaries.append(summary if attempt is first else f"{attempt.step.id}: {summary}")
            attempt = attempt.next
        return "; then ".join(summaries)

    def _take_over(self, item: WorkItem, run: ExecutionView, step: StepView) -> str | None:
        executions = self._s.apps.executions
        lost = str(derived_id("omium.worker", run.id, step.step_id, step.attempts, "lost"))
        try:
            executions.fail_step(
                run.tenant_id,
                run.id,
                step_id=step.step_id,
                error_type=WORKER_LOST,
                error=f"the worker running attempt {step.attempts} stopped heart-beating",
                retryable=True,
                expected_version=run.version,
                idempotency_key=lost,
            )
            executions.schedule_step(
                run.tenant_id, run.id, step_id=step.step_id, idempotency_key=f"{lost}:again"
            )
        except ConflictError:
            return None
        except DomainError as exc:
            return f"no takeover: {exc}"
        self._s.telemetry.record_metric(
            "worker.takeover",
            1,
            unit="1",
            kind="counter",
            tenant_id=run.tenant_id,
            execution_id=str(run.id),
            dimensions={"step": step.step_id},
        )
        return f"took over attempt {step.attempts} of a lost worker; step scheduled again"

    # ------------------------------------------------------------------ attempts

    def _attempt(self, item: WorkItem, run: ExecutionView, number: int) -> Attempt:
        return new_attempt(self._s, item, run, number)

    def _finish(self, attempt: Attempt, *, flush: bool = True) -> None:
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
            "step.duration",
            duration_ms,
            unit="ms",
            kind="histogram",
            tenant_id=span.tenant_id,
            execution_id=span.execution_id,
            dimensions={
                "step": attempt.step.id,
                "status": span.status,
                "workflow": attempt.definition.name,
            },
        )
        if flush:  # a chain flushes once, at its end (the producer sends in the background)
            telemetry.flush()

    def _wait_until(self, when: datetime | None) -> None:
        if when is not None:
            delay = (when - datetime.now(UTC)).total_seconds()
            if delay > 0:
                self._stop.wait(delay)


def _started(run: ExecutionView, step_id: str, attempt: int, version: int) -> ExecutionView:
    """The run as ``start_step`` left it (what the attempt decides its next step from)."""
    return dataclasses.replace(
        run,
        state="running" if run.state == "pending" else run.state,
        steps=tuple(
            dataclasses.replace(s, status="running", attempts=attempt)
            if s.step_id == step_id
            else s
            for s in run.steps
        ),
        version=version,
    )


def _step(run: ExecutionView, step_id: str) -> StepView | None:
    return next((step for step in run.steps if step.step_id == step_id), None)
