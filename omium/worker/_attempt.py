"""One attempt of one step: state in, agent (or vote) run, checks, checkpoints, outcome out.

The attempt was started (``start_step``) by the caller, which holds the step's claim. Here:

1. the starting state is restored (checksum verified) and, when the step asks for it, saved as
   the *before* checkpoint;
2. the agent runs within the step's timeout (a consensus step opens a round instead and waits for
   its decision, see :mod:`omium.worker._consensus_step`);
3. the output is checked against the step's post-conditions;
4. the outcome is reported as commands: ``complete_step`` and the *after* checkpoint, or
   ``fail_step`` plus a ``FailureDetected`` event for the recovery processor.

An outcome is only reported while this attempt is still the step's current, running attempt
(checked with the run's version as ``expected_version``), so a worker that lost its claim (it
stalled past its heartbeat TTL and the step was taken over) can never record its late result.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from omium.commands import CommandResult, ConflictError
from omium.commands.executions import CheckpointView, ExecutionView, StepView
from omium.kernel.errors import DomainError, PersistenceError
from omium.sdk.workflow import Step, WorkflowDefinition
from omium.streams.base import derived_id
from omium.worker._agents import call_agent, load_agent
from omium.worker._checks import check_output, failure_of, recovery_details
from omium.worker._consensus_step import run_consensus
from omium.worker._context import CallUsage, LLMCalls, StepContext
from omium.worker._services import WorkerServices
from omium.worker._state import RunState, latest
from omium.worker._telemetry import FailureReport, Span
from omium.worker._work import WorkItem

if TYPE_CHECKING:
    from omium.worker._pipeline import StepPipeline

log = structlog.get_logger(__name__)

_REPORT_RETRIES = 8


class AttemptLostError(Exception):
    """The step is no longer at this attempt (taken over, rolled back, or the run ended)."""


@dataclass
class Attempt:
    """Everything about the attempt being run."""

    item: WorkItem
    run: ExecutionView
    definition: WorkflowDefinition
    step: Step
    number: int
    span: Span
    deadline: float
    cancel: threading.Event = field(default_factory=threading.Event)
    usage: CallUsage = field(default_factory=CallUsage)
    state: RunState = field(default_factory=RunState)
    checkpoints: list[str] = field(default_factory=list)
    # The checkpoint this attempt started from (its own "before", or an identical earlier one).
    restore_point: str | None = None
    # The run's version as this worker last wrote it (None: unknown): a save that expects it
    # conflicts when anyone else wrote to the run since.
    version: int | None = None
    # Set by a pipelined start: the starting state is known (and maybe the before checkpoint).
    prepared: bool = False
    before_taken: bool = False
    # The next step's attempt, when this one went on to it in the same save.
    next: Attempt | None = None

    @property
    def last_good_checkpoint(self) -> str | None:
        """Where a rollback after this attempt should resume: its start, else the run's newest."""
        if self.restore_point is not None:
            return self.restore_point
        newest = max(self.run.checkpoints, key=lambda c: c.sequence, default=None)
        return None if newest is None else newest.checkpoint_id

    @property
    def execution_id(self) -> UUID:
        """The run's id."""
        return self.run.id

    @property
    def needs(self) -> list[str]:
        """The steps this one needs."""
        return self.definition.dependencies()[self.step.id]

    def key(self, *parts: object) -> str:
        """An idempotency key for a command of this attempt."""
        return str(derived_id("omium.worker", self.item.dispatch_id, *parts))


def new_attempt(
    services: WorkerServices, item: WorkItem, run: ExecutionView, number: int
) -> Attempt:
    """Attempt ``number`` of the item's step, with its span and deadline."""
    definition = services.definitions.require(
        item.tenant_id, item.workflow_id, item.workflow_version
    )
    step = definition.step(item.step_id)
    agent = item.agent or step.agent
    span = Span(
        str(run.id),
        run.tenant_id,
        f"step {step.id}",
        "step",
        step_id=step.id,
        agent=agent,
        model=item.model,
        attributes={
            "attempt": str(number),
            "worker": services.worker_id,
            "dispatch": item.reason,
            "workflow": definition.name,
        },
    )
    deadline = time.monotonic() + definition.timeout_for(step)
    return Attempt(item, run, definition, step, number, span, deadline)


class AttemptRunner:
    """Runs attempts with the worker's shared services."""

    def __init__(self, services: WorkerServices, *, pipeline: StepPipeline | None = None) -> None:
        """Use ``services`` for everything; go on to next steps through ``pipeline``."""
        self._s = services
        self._pipeline = pipeline

    def run(self, attempt: Attempt) -> str:
        """Run the attempt to its outcome and report it; return a one-line summary."""
        failure: FailureReport | None = None
        retryable = True
        output: dict[str, Any] = {}
        try:
            if not attempt.prepared:
                attempt.state = self._s.states.starting_state(
                    attempt.run,
                    attempt.step.id,
                    attempt.needs,
                    restore_checkpoint_id=attempt.item.restore_checkpoint_id,
                )
            before = attempt.definition.checkpoint_for(attempt.step).before
            if before and not attempt.before_taken:
                self._checkpoint(attempt, "before", attempt.state)
            output = self._produce(attempt)
            failure = check_output(
                attempt.step,
                output,
                {need: attempt.state.outputs.get(need) for need in attempt.needs},
                tokens_out=attempt.usage.tokens_out or None,
                attempt=attempt.number,
            )
        except AttemptLostError:
            raise
        except Exception as exc:
            if _is_infrastructure(exc):
                raise  # the store is down: let the caller retry the whole item later
            failure, retryable = failure_of(exc, attempt=attempt.number)
        if failure is None:
            return self._succeed(attempt, output)
        return self._fail(attempt, failure, retryable)

    # ------------------------------------------------------------------ producing output

    def _produce(self, attempt: Attempt) -> dict[str, Any]:
        timeout = attempt.definition.timeout_for(attempt.step)
        if attempt.step.consensus is not None:
            return run_consensus(self._s, attempt, self._vote_runner(attempt))
        agent = attempt.item.agent or attempt.step.agent
        assert agent is not None
        ctx = self._context(attempt, agent, extra_input={})
        function = load_agent(attempt.definition.agents[agent].entrypoint)
        return call_agent(function, ctx, timeout_s=timeout, cancel=attempt.cancel)

    def _vote_runner(self, attempt: Attempt) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
        def vote(participant: str, extra_input: dict[str, Any]) -> dict[str, Any]:
            ctx = self._context(attempt, participant, extra_input=extra_input)
            function = load_agent(attempt.definition.agents[participant].entrypoint)
            remaining = max(attempt.deadline - time.monotonic(), 0.1)
            return call_agent(function, ctx, timeout_s=remaining, cancel=attempt.cancel)

        return vote

    def _context(self, attempt: Attempt, agent: str, *, extra_input: dict[str, Any]) -> StepContext:
        spec = attempt.definition.agents[agent]
        model = attempt.item.model or spec.model or self._s.default_model
        calls = LLMCalls(
            provider=self._s.provider(spec.provider),
            agent_name=agent,
            spec=spec,
            model=model,
            budget=self._s.budget(str(attempt.execution_id), attempt.definition),
            telemetry=self._s.telemetry,
            parent=attempt.span,
            deadline=attempt.deadline,
            cancel=attempt.cancel,
            usage=attempt.usage,
        )
        return StepContext(
            tenant_id=attempt.run.tenant_id,
            execution_id=str(attempt.execution_id),
            workflow_id=str(attempt.run.workflow_id),
            step_id=attempt.step.id,
            attempt=attempt.number,
            agent=agent,
            input={**attempt.run.input, **attempt.step.input, **extra_input},
            outputs={need: attempt.state.outputs.get(need) for need in attempt.needs},
            state=attempt.state.data,
            calls=calls,
            cancel=attempt.cancel,
            consensus=attempt.step.consensus,
        )

    # ------------------------------------------------------------------ outcomes

    def _succeed(self, attempt: Attempt, output: dict[str, Any]) -> str:
        if self._pipeline is not None:
            summary = self._pipeline.advance(attempt, output)
            if summary is not None:
                return summary  # recorded with the next step (or the halt) in one save
        self._report(
            attempt,
            "complete_step",
            lambda version: self._s.apps.executions.complete_step(
                attempt.run.tenant_id,
                attempt.execution_id,
                step_id=attempt.step.id,
                output=output,
                usage=attempt.usage.step_usage(),
                expected_version=version,
                idempotency_key=attempt.key("complete"),
            ),
        )
        if attempt.definition.checkpoint_for(attempt.step).after:
            after = attempt.state.with_output(attempt.step.id, output, attempt.state.data)
            self._checkpoint(attempt, "after", after, required=False)
        return f"completed (attempt {attempt.number})"

    def _fail(self, attempt: Attempt, failure: FailureReport, retryable: bool) -> str:
        attempt.span.fail(failure.message)
        agent = attempt.item.agent or attempt.step.agent
        report = FailureReport(
            failure.kind,
            failure.message,
            attempt.number,
            agent=agent,
            model=attempt.usage.model or attempt.item.model,
            details={
                **failure.details,
                "workflow_id": str(attempt.run.workflow_id),
                **recovery_details(attempt.definition, attempt.step, failure.kind),
                # Recovery reads checkpoints from another topic than failures, with no order
                # between the two: naming the restore point here makes its rollback certain.
                **_restore_point(attempt),
            },
        )
        self._report(
            attempt,
            "fail_step",
            lambda version: self._s.apps.executions.fail_step(
                attempt.run.tenant_id,
                attempt.execution_id,
                step_id=attempt.step.id,
                error=failure.message[:4000],
                error_type=failure.kind,
                retryable=retryable,
                expected_version=version,
                idempotency_key=attempt.key("fail"),
            ),
        )
        if failure.kind == "budget_exceeded":
            self._halt_over_budget(attempt, failure)
        self._s.telemetry.report_failure(
            tenant_id=attempt.run.tenant_id,
            execution_id=str(attempt.execution_id),
            step_id=attempt.step.id,
            report=report,
        )
        self._s.telemetry.flush()
        return f"failed (attempt {attempt.number}, {failure.kind}): {failure.message[:200]}"

    def _halt_over_budget(self, attempt: Attempt, failure: FailureReport) -> None:
        """A budget that halts stops the run at once (recovery's plan then finds it halted)."""
        try:
            self._s.apps.executions.halt_execution(
                attempt.run.tenant_id,
                attempt.execution_id,
                reason=failure.message[:1000],
                policy_id="budget",
                idempotency_key=str(derived_id("omium.worker", attempt.execution_id, "budget")),
            )
        except DomainError as exc:  # already ended (halted by a policy, cancelled ...)
            log.info("attempt.budget_halt_not_applied", error=str(exc))

    def _report(self, attempt: Attempt, name: str, command: Callable[[int], CommandResult]) -> None:
        """Apply an outcome command while the step is still at this attempt.

        Raises:
            AttemptLostError: The step moved on (taken over, rolled back, run ended).
        """
        for retry in range(_REPORT_RETRIES):
            run = self._s.apps.executions.get_execution(attempt.run.tenant_id, attempt.execution_id)
            step = _step(run, attempt.step.id)
            if (
                run.state not in ("running", "waiting_for_approval")
                or step is None
                or (step.status != "running" or step.attempts != attempt.number)
            ):
                raise AttemptLostError(f"{name}: step is no longer at attempt {attempt.number}")
            try:
                command(run.version)
                return
            except ConflictError:
                time.sleep(0.02 * (retry + 1))  # someone wrote to the run meanwhile
        raise AttemptLostError(f"{name}: kept conflicting with other writers")

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(
        self, attempt: Attempt, position: str, state: RunState, *, required: bool = True
    ) -> None:
        """Save ``state`` as the step's checkpoint (skipped when the newest one is identical)."""
        ref = self._s.states.save(state)
        run = attempt.run
        previous = latest(run.checkpoints, attempt.step.id, position)
        if previous is not None and previous.checksum == ref.checksum:
            if position == "before":
                attempt.restore_point = previous.checkpoint_id
            return  # a retry starting from the same state: the existing checkpoint serves
        checkpoint_id = str(
            uuid.uuid5(attempt.execution_id, f"{attempt.step.id}/{attempt.number}/{position}")
        )
        span = Span(
            str(attempt.execution_id),
            run.tenant_id,
            f"checkpoint {position} {attempt.step.id}",
            "checkpoint",
            step_id=attempt.step.id,
            parent_span_id=attempt.span.span_id,
            attributes={
                "position": position,
                "size": str(ref.size),
                "storage": ref.storage,
                "checksum": ref.checksum,
                "checkpoint_id": checkpoint_id,
            },
        )
        try:
            result = self._s.apps.executions.create_checkpoint(
                run.tenant_id,
                attempt.execution_id,
                step_id=attempt.step.id,
                position=position,
                checkpoint_id=checkpoint_id,
                idempotency_key=attempt.key("checkpoint", position),
                **ref.command_fields(),
            )
            if attempt.version is not None:
                # Ours if it directly follows the version we knew; else someone else wrote too.
                known = result.version - len(result.events) == attempt.version
                attempt.version = result.version if known and not result.replayed else None
            recorded = CheckpointView(
                checkpoint_id=checkpoint_id,
                step_id=attempt.step.id,
                position=position,
                checksum=ref.checksum,
                size=ref.size,
                storage=ref.storage,
                object_key=ref.object_key,
                sequence=result.version,
            )
            attempt.run = dataclasses.replace(run, checkpoints=(*run.checkpoints, recorded))
        except Exception as exc:
            span.fail(f"{type(exc).__name__}: {exc}")
            if required or _is_infrastructure(exc):
                raise
            log.info(
                "attempt.after_checkpoint_not_recorded", step_id=attempt.step.id, error=str(exc)
            )
        finally:
            self._s.telemetry.record_span(span)
        attempt.checkpoints.append(f"{position}:{checkpoint_id}")
        if position == "before":
            attempt.restore_point = checkpoint_id


def _step(run: ExecutionView, step_id: str) -> StepView | None:
    return next((step for step in run.steps if step.step_id == step_id), None)


def _restore_point(attempt: Attempt) -> dict[str, str]:
    checkpoint_id = attempt.last_good_checkpoint
    return {} if checkpoint_id is None else {"checkpoint_id": checkpoint_id}


def _is_infrastructure(exc: BaseException) -> bool:
    return isinstance(exc, PersistenceError)
