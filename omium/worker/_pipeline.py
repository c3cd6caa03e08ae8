"""Steps without round trips: the worker that completes a step goes on to the next one itself.

On the orchestrated path, between two steps the completion is relayed to Kafka, the orchestrator
schedules the next step, that is relayed too, the orchestrator hands a work item to a worker and
the worker starts the step: three Kafka crossings and four event-store commits. When the next
step needs no other process's decision, the worker holding the run instead records, in **one**
optimistic-concurrency save (``ExecutionsApplication.advance_step``, expecting the run's version
as this worker last wrote it)::

    StepCompleted(k)  CheckpointCreated(k, after)  StepScheduled(k+1)  StepStarted(k+1)
    CheckpointCreated(k+1, before)

and runs k+1 at once, in the same thread and under the same work item. The events are relayed to
Kafka one by one, in order and hash-chained, like any others, so every consumer sees what the
orchestrated path produces. The orchestrator learns that k+1 is taken when its own
``schedule_new_step`` of k+1 is refused (the step is already there) and dispatches nothing for it
(:func:`omium.worker._tracker.pipelined`).

The worker goes on only when (:func:`next_step`) the run is running with nothing pending (no
approval, no failed step waiting for recovery), one step becomes ready with k's completion, and
that step is not a consensus step and has no approval; and when the deny-mode policies on k's
output allow it (:mod:`omium.worker._policy_gate`, the policy processor's own bundles and
engine). A deny halts the run in the same save as k's completion, so the next step never starts.

Anything another process did to the run since this worker's last write (a rollback, a halt, a
cancel, a policy's halt, the orchestrator scheduling a step) moves the run's version: the save
conflicts, nothing of it is written, and the worker falls back to the orchestrated path
(``complete_step`` alone, re-checked against the run as it is now; the orchestrator decides).

A pipelined step is claimed (Redis heartbeat) before the save, as a dispatched step is before its
``start_step``. Its worker keeps the chain's first work item uncommitted until the chain ends, so
if the worker dies, the item is delivered again to another worker, which follows the chain
through the recorded ``advance_step`` results (:func:`advanced_from`) to the step that was
running and takes it over like any orphaned step.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from omium.commands import ConflictError
from omium.commands.executions import CheckpointView, ExecutionView, StepView
from omium.kernel.errors import DomainError, PersistenceError
from omium.sdk.workflow import Step, WorkflowDefinition, ready_steps
from omium.streams.base import derived_id
from omium.worker._attempt import Attempt, new_attempt
from omium.worker._policy_gate import GateDecision
from omium.worker._services import WorkerServices
from omium.worker._state import RunState, latest
from omium.worker._telemetry import Span
from omium.worker._work import WorkItem

log = structlog.get_logger(__name__)

PIPELINED = "pipelined"
"""``WorkItem.reason`` of a step its predecessor's worker went on to."""


@dataclass(frozen=True)
class NextStep:
    """The step a worker may go on to after completing one.

    Attributes:
        step: Its definition.
        attempt: The attempt it will be, when certain from the run's view (``None`` after a
            rollback removed it: the aggregate still counts its earlier attempts).
    """

    step: Step
    attempt: int | None


def next_step(
    definition: WorkflowDefinition, run: ExecutionView, completed: str
) -> tuple[NextStep | None, str]:
    """The step to go on to once ``completed`` completes, or ``None`` and why not.

    Decided from the run as this worker last saw it: if it changed since, the save that acts on
    the decision conflicts, so a stale view can never make a wrong decision stick.
    """
    if run.state != "running":
        return None, f"the run is {run.state}"
    statuses = {step.step_id: step.status for step in run.steps}
    if "failed" in statuses.values():
        return None, "a failed step waits for recovery"
    if any(approval.status == "pending" for approval in run.approvals):
        return None, "a human approval is pending"
    needs = definition.dependencies()
    done = {step for step, status in statuses.items() if status == "completed"} | {completed}
    taken = set(statuses) - done
    ready = [step for step in ready_steps(needs, done, started=taken) if completed in needs[step]]
    if not ready:
        return None, "no step became ready"
    step = definition.step(ready[0])
    if step.consensus is not None:
        return None, f"{step.id} is a consensus step (the consensus processor decides)"
    if step.approval is not None or any(approval.step_id == step.id for approval in run.approvals):
        return None, f"{step.id} is gated by a human approval"
    return NextStep(step, 1 if run.rollbacks == 0 else None), f"goes on to {step.id}"


def advance_key(item: WorkItem) -> str:
    """The idempotency key of the ``advance_step`` of the attempt run for ``item``."""
    return str(derived_id("omium.worker", item.dispatch_id, "advance"))


def pipelined_item(item: WorkItem, step_id: str, attempt: int) -> WorkItem:
    """The work item a pipelined step runs under (never produced to Kafka)."""
    return WorkItem(
        dispatch_id=str(derived_id("omium.worker", item.dispatch_id, PIPELINED, step_id, attempt)),
        tenant_id=item.tenant_id,
        execution_id=item.execution_id,
        workflow_id=item.workflow_id,
        workflow_version=item.workflow_version,
        step_id=step_id,
        reason=PIPELINED,
    )


def advanced_from(services: WorkerServices, item: WorkItem) -> WorkItem | None:
    """The item of the step the attempt of ``item`` went on to, if it went on to one."""
    executions = services.apps.executions
    record = executions.idempotency.get_idempotency_record(
        item.tenant_id, executions.name, advance_key(item)
    )
    if record is None:
        return None
    data = record.result.data
    step, attempt = data.get("next_step"), data.get("attempt")
    if not isinstance(step, str) or not isinstance(attempt, int):
        return None  # the run was halted instead
    return pipelined_item(item, step, attempt)


@dataclass
class _Prepared:
    """What goes into one ``advance_step`` save, and what the next attempt starts with."""

    after: dict[str, Any] | None = None
    after_id: str | None = None
    before: dict[str, Any] | None = None
    before_id: str | None = None
    restore_point: str | None = None
    state: RunState | None = None
    view: ExecutionView | None = None


class StepPipeline:
    """Takes a completed attempt on to the next step in one save, when nobody else must decide.

    Args:
        services: The worker's shared services (its ``policies`` gate included).
    """

    def __init__(self, services: WorkerServices, *, stop: threading.Event | None = None) -> None:
        """Use ``services``; never go on once ``stop`` is set (the worker is leaving)."""
        self._s = services
        self._stop = stop or threading.Event()
        self.stats = {"pipelined": 0, "halted": 0, "conflicts": 0, "orchestrated": 0}

    def advance(self, attempt: Attempt, output: dict[str, Any]) -> str | None:
        """Record the attempt's success together with the next step's start (or a halt).

        Returns:
            A summary when recorded (``attempt.next`` then holds the next step's attempt, unless
            the run was halted), or ``None``: the caller records the success the orchestrated
            way.
        """
        if self._stop.is_set():
            return self._orchestrated(attempt, "the worker is stopping")
        if attempt.version is None:
            return self._orchestrated(attempt, "the run's version is not known")
        if not attempt.item.pipeline:
            return self._orchestrated(attempt, "a step concurrency limit applies")
        following, why = next_step(attempt.definition, attempt.run, attempt.step.id)
        if following is None:
            return self._orchestrated(attempt, why)
        gate = self._gate(attempt, output)
        if not gate.known:
            return self._orchestrated(attempt, "the policies could not be consulted")
        if gate.denied:
            return self._halt(attempt, output, gate)
        execution, beats = str(attempt.execution_id), self._s.heartbeats
        if not beats.claim(execution, following.step.id):
            return self._orchestrated(attempt, f"{following.step.id} is claimed already")
        try:
            prepared = self._prepare(attempt, output, following)
        except PersistenceError:
            beats.release(execution, following.step.id)
            raise  # the store is down: the caller retries the whole item later
        except Exception:
            beats.release(execution, following.step.id)
            log.warning(
                "pipeline.prepare_failed",
                execution_id=execution,
                step_id=following.step.id,
                exc_info=True,
            )
            return self._orchestrated(attempt, f"{following.step.id} could not be prepared")
        try:
            result = self._s.apps.executions.advance_step(
                attempt.run.tenant_id,
                attempt.execution_id,
                step_id=attempt.step.id,
                output=output,
                checkpoint=prepared.after,
                next_step_id=following.step.id,
                next_agent=following.step.agent,
                next_checkpoint=prepared.before,
                usage=attempt.usage.step_usage(),
                expected_version=attempt.version,
                idempotency_key=advance_key(attempt.item),
            )
        except (ConflictError, DomainError) as exc:
            beats.release(execution, following.step.id)
            self.stats["conflicts"] += 1
            log.info(
                "pipeline.save_conflicted",
                execution_id=execution,
                step_id=attempt.step.id,
                then="the orchestrator decides",
                error=str(exc),
            )
            return None
        except BaseException:
            beats.release(execution, following.step.id)
            raise
        self.stats["pipelined"] += 1
        attempt.next = self._next_attempt(attempt, following, prepared, result)
        self._checkpoint_spans(attempt, prepared)
        beats.defer_release(execution, attempt.step.id)  # completed: goes with the next claim
        return f"completed (attempt {attempt.number}), went on to {following.step.id}"

    # ------------------------------------------------------------------ the parts

    def _orchestrated(self, attempt: Attempt, why: str) -> str | None:
        """Leave the next step to the orchestrator: ``None`` (the caller completes alone)."""
        self.stats["orchestrated"] += 1
        log.debug(
            "pipeline.not_pipelined",
            execution_id=str(attempt.execution_id),
            step_id=attempt.step.id,
            why=why,
        )
        return None

    def _gate(self, attempt: Attempt, output: dict[str, Any]) -> GateDecision:
        gate = self._s.policies
        if gate is None:
            return GateDecision(known=False)
        return gate.check_output(
            tenant_id=attempt.run.tenant_id,
            execution_id=str(attempt.execution_id),
            workflow_id=str(attempt.run.workflow_id),
            workflow_version=attempt.run.workflow_version,
            step_id=attempt.step.id,
            attempt=attempt.number,
            output=output,
            calls=attempt.usage.spans,
            usage=attempt.usage.step_usage(),
            budget=attempt.definition.run_budget(),
        )

    def _halt(self, attempt: Attempt, output: dict[str, Any], gate: GateDecision) -> str | None:
        """A deny-mode policy refused the output: complete the step and halt the run, in one."""
        try:
            prepared = self._prepare(attempt, output, None)
        except PersistenceError:
            raise
        except Exception:
            log.warning(
                "pipeline.halt_prepare_failed",
                execution_id=str(attempt.execution_id),
                exc_info=True,
            )
            return None
        try:
            self._s.apps.executions.advance_step(
                attempt.run.tenant_id,
                attempt.execution_id,
                step_id=attempt.step.id,
                output=output,
                checkpoint=prepared.after,
                halt_reason=gate.halt_reason,
                halt_policy_id=gate.policy_id,
                usage=attempt.usage.step_usage(),
                expected_version=attempt.version,
                idempotency_key=advance_key(attempt.item),
            )
        except (ConflictError, DomainError) as exc:
            self.stats["conflicts"] += 1
            log.info(
                "pipeline.halt_conflicted",
                execution_id=str(attempt.execution_id),
                step_id=attempt.step.id,
                error=str(exc),
            )
            return None  # the policy processor halts the run (it evaluates the same output)
        self.stats["halted"] += 1
        self._checkpoint_spans(attempt, prepared)
        log.info(
            "pipeline.halted_by_policy",
            execution_id=str(attempt.execution_id),
            reason=gate.halt_reason,
        )
        return f"completed (attempt {attempt.number}); run halted: {gate.halt_reason[:200]}"

    def _prepare(
        self, attempt: Attempt, output: dict[str, Any], following: NextStep | None
    ) -> _Prepared:
        """The checkpoints of the save, the next step's starting state and the run after it."""
        run, step, states = attempt.run, attempt.step, self._s.states
        prepared = _Prepared()
        version = attempt.version
        assert version is not None
        version += 1  # StepCompleted
        steps = [
            dataclasses.replace(s, status="completed", output=output, error=None)
            if s.step_id == step.id
            else s
            for s in run.steps
        ]
        checkpoints = list(run.checkpoints)
        known: dict[str, RunState] = {}
        if attempt.definition.checkpoint_for(step).after:
            after = attempt.state.with_output(step.id, output, attempt.state.data)
            ref = states.save(after)
            previous = latest(run.checkpoints, step.id, "after")
            if previous is not None and previous.checksum == ref.checksum:
                known[previous.checkpoint_id] = after  # the existing checkpoint serves
            else:
                version += 1
                cid = _checkpoint_id(attempt.execution_id, step.id, attempt.number, "after")
                prepared.after, prepared.after_id = (
                    {"checkpoint_id": cid, **ref.command_fields()},
                    cid,
                )
                checkpoints.append(_view_of(cid, step.id, "after", ref, version))
                known[cid] = after
        if following is None:
            return prepared
        completed_view = dataclasses.replace(
            run, steps=tuple(steps), checkpoints=tuple(checkpoints)
        )
        nxt = following.step
        needs = attempt.definition.dependencies()[nxt.id]
        prepared.state = states.starting_state(completed_view, nxt.id, needs, known=known)
        version += 2  # StepScheduled, StepStarted
        number = following.attempt
        if attempt.definition.checkpoint_for(nxt).before and number is not None:
            ref = states.save(prepared.state)
            previous = latest(checkpoints, nxt.id, "before")
            if previous is not None and previous.checksum == ref.checksum:
                prepared.restore_point = previous.checkpoint_id
            else:
                version += 1
                cid = _checkpoint_id(attempt.execution_id, nxt.id, number, "before")
                prepared.before, prepared.before_id = (
                    {"checkpoint_id": cid, **ref.command_fields()},
                    cid,
                )
                prepared.restore_point = cid
                checkpoints.append(_view_of(cid, nxt.id, "before", ref, version))
        steps.append(StepView(nxt.id, "running", nxt.agent, number or 0, None, None))
        prepared.view = dataclasses.replace(
            completed_view, steps=tuple(steps), checkpoints=tuple(checkpoints), version=version
        )
        return prepared

    def _next_attempt(
        self, attempt: Attempt, following: NextStep, prepared: _Prepared, result: Any
    ) -> Attempt:
        number = int(result.data["attempt"])
        item = pipelined_item(attempt.item, following.step.id, number)
        view = prepared.view
        assert view is not None and prepared.state is not None
        if number != (following.attempt or 0):
            view = dataclasses.replace(
                view,
                steps=tuple(
                    dataclasses.replace(s, attempts=number) if s.step_id == following.step.id else s
                    for s in view.steps
                ),
            )
        nxt = new_attempt(self._s, item, view, number)
        nxt.state = prepared.state
        nxt.prepared = True
        nxt.before_taken = prepared.restore_point is not None
        nxt.restore_point = prepared.restore_point
        if prepared.before_id is not None:
            nxt.checkpoints.append(f"before:{prepared.before_id}")
        # Ours alone if the save wrote exactly what was planned on the version we knew.
        planned = not result.replayed and result.version == view.version
        nxt.version = result.version if planned else None
        return nxt

    def _checkpoint_spans(self, attempt: Attempt, prepared: _Prepared) -> None:
        """The checkpoint spans, as the orchestrated path records them."""
        if prepared.after_id is not None and prepared.after is not None:
            attempt.checkpoints.append(f"after:{prepared.after_id}")
            self._span(attempt, "after", prepared.after_id, prepared.after)
        nxt = attempt.next
        if nxt is not None and prepared.before_id is not None and prepared.before is not None:
            self._span(nxt, "before", prepared.before_id, prepared.before)

    def _span(
        self, attempt: Attempt, position: str, checkpoint_id: str, blob: dict[str, Any]
    ) -> None:
        self._s.telemetry.record_span(
            Span(
                str(attempt.execution_id),
                attempt.run.tenant_id,
                f"checkpoint {position} {attempt.step.id}",
                "checkpoint",
                step_id=attempt.step.id,
                parent_span_id=attempt.span.span_id,
                attributes={
                    "position": position,
                    "size": str(blob["size"]),
                    "storage": blob["storage"],
                    "checksum": blob["checksum"],
                    "checkpoint_id": checkpoint_id,
                },
            )
        )


def _checkpoint_id(execution_id: uuid.UUID, step_id: str, attempt: int, position: str) -> str:
    """The id the orchestrated path gives the same checkpoint (see ``AttemptRunner``)."""
    return str(uuid.uuid5(execution_id, f"{step_id}/{attempt}/{position}"))


def _view_of(
    checkpoint_id: str, step_id: str, position: str, ref: Any, sequence: int
) -> CheckpointView:
    return CheckpointView(
        checkpoint_id=checkpoint_id,
        step_id=step_id,
        position=position,
        checksum=ref.checksum,
        size=ref.size,
        storage=ref.storage,
        object_key=ref.object_key,
        sequence=sequence,
    )
