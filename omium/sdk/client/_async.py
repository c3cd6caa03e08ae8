"""``omium.AsyncClient``: the asynchronous client of the gateway (httpx)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, Unpack

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from omium.sdk.client import _ops as ops
from omium.sdk.client import _suggestions as sg
from omium.sdk.client._config import ClientConfig, merge_config
from omium.sdk.client._errors import CompletionTimeoutError
from omium.sdk.client._filters import (
    AuditFilters,
    ExecutionFilters,
    FailureFilters,
    FailureGroupQuery,
    RunStatsQuery,
    SpanFilters,
    StepStatsQuery,
)
from omium.sdk.client._helpers import Backoff, WorkflowSource, workflow_payload
from omium.sdk.client._http import Attempts, Op, base_headers, timeout
from omium.sdk.client._models import (
    ApiKey,
    Checkpoint,
    CheckpointAccepted,
    ConsensusRound,
    Execution,
    ExecutionAccepted,
    ForkAccepted,
    IssuedApiKey,
    LimitsAccepted,
    Policy,
    PolicyAccepted,
    Readiness,
    Role,
    RoundAccepted,
    RoundDecision,
    TenantLimits,
    WhoAmI,
    Workflow,
    WorkflowAccepted,
)
from omium.sdk.client._read_models import (
    AuditRecord,
    ExecutionSummary,
    Failure,
    FailureGroup,
    IntegrityReport,
    Page,
    RunEvent,
    RunStats,
    Span,
    StepStats,
    Timeline,
    Trace,
)
from omium.sdk.client._sse import SseParser, StreamCursor
from omium.sdk.client._suggestions import Suggestion, SuggestionAccepted, SuggestionList
from omium.sdk.client._ws import Subscription

T = TypeVar("T")


class AsyncClient:
    """An asynchronous client of the Omium gateway.

    Every command sends an ``Idempotency-Key`` (a new one per call, the same on each retry), so a
    retried command never applies twice. 429 and 503 answers and connection failures are retried
    with exponential backoff, honouring ``Retry-After``. Error answers raise
    :class:`~omium.sdk.client.OmiumAPIError` subclasses.

    Example:
        >>> async with AsyncClient(url, api_key="omk_...") as omium:  # doctest: +SKIP
        ...     run = await omium.start_run(workflow_id, input={"topic": "tides"})
        ...     await omium.wait_for_completion(run.execution_id, timeout=120)
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Build a client; nothing is sent until the first call.

        Args:
            base_url: The gateway (default: the config's, else ``http://127.0.0.1:8000``).
            token: An OAuth2 access token (JWT).
            api_key: An API key (``omk_...``).
            config: Timeouts, retries and defaults; explicit arguments win over it.
            transport: An httpx transport (tests, proxies).
            sleep: How to wait between retries (tests pass a recorder).
        """
        self.config = merge_config(config, base_url=base_url, token=token, api_key=api_key)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.config.base_url,
            headers=base_headers(self.config),
            timeout=timeout(self.config),
            transport=transport,
        )

    @classmethod
    def from_profile(
        cls,
        profile: str | None = None,
        *,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **overrides: Any,
    ) -> Self:
        """Build a client from a TOML profile plus ``OMIUM_*`` variables (see ``ClientConfig``)."""
        config = ClientConfig.load(profile, path=path, env=env, **overrides)
        return cls(config=config, transport=transport)

    @classmethod
    async def connect(cls, base_url: str | None = None, **kwargs: Any) -> Self:
        """Build a client and check its credentials (``whoami``) before returning it.

        Raises:
            UnauthorizedError: The credentials are refused.
            OmiumConnectionError: The gateway cannot be reached.
        """
        client = cls(base_url, **kwargs)
        try:
            await client.whoami()
        except BaseException:
            await client.close()
            raise
        return client

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        """Use the client as an async context manager (closed on exit)."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.close()

    # --- sending ------------------------------------------------------------------------------

    async def send(self, op: Op[T]) -> T:
        """Send one call with retries; its parsed answer."""
        attempts = Attempts(self.config, op)
        while True:
            attempts.next()
            headers = op.request_headers(attempts.idempotency_key)
            try:
                response = await self._http.request(
                    op.method, op.path, json=op.json, params=op.query(), headers=headers
                )
            except httpx.TransportError as exc:
                await self._sleep(attempts.after_failure(exc, f"{self.config.base_url}{op.path}"))
                continue
            wait = attempts.after_response(response)
            if wait is None:
                return op.parse(response)
            await self._sleep(wait)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        command: bool | None = None,
    ) -> Any:
        """Call any route (``path`` below the base URL); its decoded JSON answer.

        ``command`` (default: any method but GET) adds an ``Idempotency-Key``.
        """
        is_command = method.upper() != "GET" if command is None else command
        return await self.send(ops.raw(method, path, json=json, params=params, command=is_command))

    # --- workflows ----------------------------------------------------------------------------

    async def register_workflow(
        self, source: WorkflowSource, *, name: str | None = None
    ) -> WorkflowAccepted:
        """Register a workflow from a YAML/JSON file, a ``WorkflowDefinition`` or a dict.

        Files and definitions are validated locally first (``WorkflowValidationError``).
        """
        chosen, definition = workflow_payload(source, name)
        return await self.send(ops.register_workflow(chosen, definition))

    async def publish_workflow_version(
        self, workflow_id: object, source: WorkflowSource, *, expected_version: int | None = None
    ) -> WorkflowAccepted:
        """Publish a new definition version of a workflow."""
        _, definition = workflow_payload(source, name="-")
        return await self.send(
            ops.publish_workflow_version(workflow_id, definition, expected_version)
        )

    async def get_workflow(
        self, workflow_id: object, *, definition_version: int | None = None
    ) -> Workflow:
        """A workflow with its latest (or the given) definition version."""
        return await self.send(ops.get_workflow(workflow_id, definition_version))

    async def find_workflows(self, *, name: str | None = None) -> list[Workflow]:
        """The tenant's workflows named ``name``, or all of them."""
        return await self.send(ops.find_workflows(name))

    # --- concurrency limits -------------------------------------------------------------------

    async def get_limits(self) -> TenantLimits:
        """The tenant's concurrency limits (``None``: unlimited)."""
        return await self.send(ops.get_limits())

    async def set_limits(
        self,
        *,
        max_running_executions: int | None = None,
        max_concurrent_steps: int | None = None,
        workflows: Mapping[str, Mapping[str, int | None]] | None = None,
        expected_version: int | None = None,
    ) -> LimitsAccepted:
        """Replace the tenant's concurrency limits (role operator); effective at once.

        Runs and steps over a limit wait in line, in order; raising a limit starts waiting ones
        at once, lowering it stops nothing that runs. ``workflows`` maps a workflow id to the
        same two limits for that workflow's runs.
        """
        return await self.send(
            ops.set_limits(
                max_running_executions=max_running_executions,
                max_concurrent_steps=max_concurrent_steps,
                workflows=workflows,
                expected_version=expected_version,
            )
        )

    # --- runs ---------------------------------------------------------------------------------

    async def start_execution(
        self, workflow_id: object, *, workflow_version: int, input: dict[str, Any] | None = None
    ) -> ExecutionAccepted:
        """Start a run of one definition version."""
        return await self.send(ops.start_execution(workflow_id, workflow_version, input))

    async def start_run(
        self,
        workflow_id: object,
        *,
        input: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> ExecutionAccepted:
        """Start a run of a workflow's latest definition version (or ``version``)."""
        if version is None:
            version = (await self.get_workflow(workflow_id)).latest_version
        return await self.start_execution(workflow_id, workflow_version=version, input=input)

    async def get_execution(self, execution_id: object) -> Execution:
        """A run as the write side knows it (always current)."""
        return await self.send(ops.get_execution(execution_id))

    async def complete_execution(
        self,
        execution_id: object,
        *,
        output: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Finish a running run successfully."""
        return await self.send(
            ops.end_execution(
                execution_id, "complete", output=output, expected_version=expected_version
            )
        )

    async def fail_execution(
        self,
        execution_id: object,
        *,
        error: str,
        error_type: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """End a run as failed."""
        return await self.send(
            ops.end_execution(
                execution_id,
                "fail",
                error=error,
                error_type=error_type,
                expected_version=expected_version,
            )
        )

    async def halt_execution(
        self,
        execution_id: object,
        *,
        reason: str,
        policy_id: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Stop a run because a policy or an operator said so (role operator)."""
        return await self.send(
            ops.end_execution(
                execution_id,
                "halt",
                reason=reason,
                policy_id=policy_id,
                expected_version=expected_version,
            )
        )

    async def cancel_execution(
        self,
        execution_id: object,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Cancel a run that has not ended."""
        return await self.send(
            ops.end_execution(
                execution_id, "cancel", reason=reason, expected_version=expected_version
            )
        )

    async def wait_for_completion(
        self, execution_id: object, *, timeout: float = 60.0, poll_max_s: float = 1.0
    ) -> Execution:
        """Wait until a run has ended (completed, failed, halted or cancelled); the run.

        Polls the write side, so it sees the end as soon as it is recorded.

        Raises:
            CompletionTimeoutError: The run is still going after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        backoff = Backoff(max_s=poll_max_s)
        while True:
            execution = await self.get_execution(execution_id)
            remaining = deadline - time.monotonic()
            if execution.ended:
                return execution
            if remaining <= 0:
                raise CompletionTimeoutError(
                    str(execution_id), state=execution.state, timeout_s=timeout
                )
            await self._sleep(backoff.next_delay(remaining))

    # --- steps --------------------------------------------------------------------------------

    async def schedule_step(
        self,
        execution_id: object,
        step_id: str,
        *,
        agent: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Schedule a step (again, after a failure: a retry)."""
        return await self.send(
            ops.schedule_step(
                execution_id, step_id=step_id, agent=agent, expected_version=expected_version
            )
        )

    async def start_step(
        self, execution_id: object, step_id: str, *, expected_version: int | None = None
    ) -> ExecutionAccepted:
        """Start a scheduled step."""
        return await self.send(
            ops.step_command(execution_id, step_id, "start", expected_version=expected_version)
        )

    async def complete_step(
        self,
        execution_id: object,
        step_id: str,
        *,
        output: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Record a running step's output."""
        return await self.send(
            ops.step_command(
                execution_id, step_id, "complete", output=output, expected_version=expected_version
            )
        )

    async def fail_step(
        self,
        execution_id: object,
        step_id: str,
        *,
        error: str,
        error_type: str | None = None,
        retryable: bool = True,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Record a failed attempt of a running step."""
        return await self.send(
            ops.step_command(
                execution_id,
                step_id,
                "fail",
                error=error,
                error_type=error_type,
                retryable=retryable,
                expected_version=expected_version,
            )
        )

    # --- checkpoints --------------------------------------------------------------------------

    async def create_checkpoint(
        self,
        execution_id: object,
        step_id: str,
        *,
        position: Literal["before", "after"],
        state: bytes | None = None,
        object_key: str | None = None,
        checksum: str | None = None,
        size: int | None = None,
        checkpoint_id: str | None = None,
        expected_version: int | None = None,
    ) -> CheckpointAccepted:
        """Record a checkpoint: ``state`` inline (checksum computed here) or an ``object_key``."""
        return await self.send(
            ops.create_checkpoint(
                execution_id,
                step_id=step_id,
                position=position,
                state=state,
                object_key=object_key,
                checksum=checksum,
                size=size,
                checkpoint_id=checkpoint_id,
                expected_version=expected_version,
            )
        )

    async def get_checkpoint(self, execution_id: object, checkpoint_id: str) -> Checkpoint:
        """One checkpoint with its inline state (``Checkpoint.state_bytes()``)."""
        return await self.send(ops.get_checkpoint(execution_id, checkpoint_id))

    async def get_checkpoint_state(self, execution_id: object, checkpoint_id: str) -> bytes:
        """A checkpoint's state blob from the read model, checked against its checksum."""
        return await self.send(ops.get_checkpoint_state(execution_id, checkpoint_id))

    async def roll_back(
        self,
        execution_id: object,
        checkpoint_id: str,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Roll a run back to a checkpoint so it resumes from there (role operator)."""
        return await self.send(ops.roll_back(execution_id, checkpoint_id, reason, expected_version))

    # --- forks --------------------------------------------------------------------------------

    async def fork_execution(
        self,
        execution_id: object,
        checkpoint_id: str,
        *,
        workflow_version: int | None = None,
        state: dict[str, Any] | None = None,
    ) -> ForkAccepted:
        """Start a new run from one of a run's checkpoints (role operator); the run is unchanged.

        Args:
            execution_id: The run to fork (in any state, also while it runs).
            checkpoint_id: Its checkpoint the new run starts from.
            workflow_version: The definition version the new run runs (default: the run's).
            state: An edited state to start from instead of the checkpoint's.

        Returns:
            The new run's ``execution_id``, ``parent_execution_id``,
            ``forked_from_checkpoint_id`` and its own first ``checkpoint_id``.
        """
        return await self.send(
            ops.fork_execution(
                execution_id, checkpoint_id, workflow_version=workflow_version, state=state
            )
        )

    # --- human approvals ----------------------------------------------------------------------

    async def request_approval(
        self,
        execution_id: object,
        step_id: str,
        *,
        deadline: datetime,
        default_action: Literal["approve", "reject", "escalate"],
        prompt: str | None = None,
        expected_version: int | None = None,
        approvers: list[str] | None = None,
        approver_role: Role | None = None,
        escalation: Mapping[str, Any] | None = None,
    ) -> ExecutionAccepted:
        """Hold a scheduled step until a human decides (or ``default_action`` at ``deadline``).

        ``approvers`` names who may decide (token subjects), ``approver_role`` the least role a
        decider must hold; a decision after ``deadline`` is refused (``approval_deadline_passed``).
        With ``default_action="escalate"``, ``escalation`` (``approvers`` and/or
        ``approver_role``, ``timeout_s``, ``default_action`` approve|reject) says who decides
        once the deadline passed, for how long, and what applies then.
        """
        return await self.send(
            ops.request_approval(
                execution_id,
                step_id,
                deadline=deadline,
                default_action=default_action,
                prompt=prompt,
                expected_version=expected_version,
                approvers=approvers,
                approver_role=approver_role,
                escalation=escalation,
            )
        )

    async def approve(
        self,
        execution_id: object,
        step_id: str,
        *,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Approve a pending human review (role operator); the caller is the decider."""
        return await self.send(
            ops.step_command(
                execution_id,
                step_id,
                "approval/grant",
                comment=comment,
                expected_version=expected_version,
            )
        )

    async def reject(
        self,
        execution_id: object,
        step_id: str,
        *,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> ExecutionAccepted:
        """Reject a pending human review (role operator); the step will not start."""
        return await self.send(
            ops.step_command(
                execution_id,
                step_id,
                "approval/reject",
                comment=comment,
                expected_version=expected_version,
            )
        )

    async def apply_approval_default(
        self, execution_id: object, step_id: str, *, expected_version: int | None = None
    ) -> ExecutionAccepted:
        """Resolve an overdue approval with its default action (role operator)."""
        return await self.send(
            ops.step_command(
                execution_id, step_id, "approval/apply-default", expected_version=expected_version
            )
        )

    # --- recovery suggestions ------------------------------------------------------------------

    async def request_diagnosis(
        self,
        execution_id: object,
        *,
        step_id: str | None = None,
        failure_id: str | None = None,
        expected_version: int | None = None,
    ) -> SuggestionAccepted:
        """Ask the configured model to diagnose a failed step (default: the run's last failed
        step); the diagnosis and the fix it proposes are recorded as a proposed suggestion.

        Raises:
            OmiumAPIError: 502 when the model provider fails or its answer is not a diagnosis.
        """
        return await self.send(
            sg.request_diagnosis(
                execution_id,
                step_id=step_id,
                failure_id=failure_id,
                expected_version=expected_version,
            )
        )

    async def list_suggestions(self, execution_id: object) -> SuggestionList:
        """A run's recovery suggestions, oldest first."""
        return await self.send(sg.list_suggestions(execution_id))

    async def get_suggestion(self, execution_id: object, suggestion_id: str) -> Suggestion:
        """One recovery suggestion of a run."""
        return await self.send(sg.get_suggestion(execution_id, suggestion_id))

    async def approve_suggestion(
        self,
        execution_id: object,
        suggestion_id: str,
        *,
        fix: dict[str, Any] | None = None,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> SuggestionAccepted:
        """Approve a suggestion (role operator) and apply its fix; ``fix`` edits it first.

        A run halted by a deny policy is never resumed: that is a 422 ``run_halted``.
        """
        return await self.send(
            sg.decide_suggestion(
                execution_id,
                suggestion_id,
                "approve",
                fix=fix,
                comment=comment,
                expected_version=expected_version,
            )
        )

    async def reject_suggestion(
        self,
        execution_id: object,
        suggestion_id: str,
        *,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> SuggestionAccepted:
        """Reject a suggestion (role operator); the run stays as it is."""
        return await self.send(
            sg.decide_suggestion(
                execution_id,
                suggestion_id,
                "reject",
                comment=comment,
                expected_version=expected_version,
            )
        )

    # --- read models --------------------------------------------------------------------------

    async def list_executions(self, **filters: Unpack[ExecutionFilters]) -> Page[ExecutionSummary]:
        """One page of runs from the read model, newest first."""
        return await self.send(ops.list_executions(**filters))

    async def iter_executions(
        self, **filters: Unpack[ExecutionFilters]
    ) -> AsyncIterator[ExecutionSummary]:
        """Every run matching ``filters``, fetching pages as needed."""
        page = await self.list_executions(**filters)
        while True:
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            query = filters.copy()
            query["cursor"] = page.next_cursor
            page = await self.list_executions(**query)

    async def get_timeline(
        self, execution_id: object, *, limit: int | None = None, cursor: str | None = None
    ) -> Timeline:
        """A run's timeline: the run, its steps and every event about it, in order."""
        return await self.send(ops.get_timeline(execution_id, limit, cursor))

    async def verify_execution(
        self, execution_id: object, *, store: bool = True, kafka: bool = True
    ) -> IntegrityReport:
        """Verify a run's hash chains in the event store and on Kafka (``report.ok``).

        A broken chain is not an error: ``report.breaks`` names the first broken link of each
        (aggregate, version, expected and found hash).
        """
        return await self.send(ops.verify_execution(execution_id, store, kafka))

    async def verify_tenant(self, *, store: bool = True, kafka: bool = True) -> IntegrityReport:
        """Verify every hash chain of the caller's tenant (operator role; reads whole topics)."""
        return await self.send(ops.verify_tenant(store, kafka))

    async def list_audit(self, **filters: Unpack[AuditFilters]) -> Page[AuditRecord]:
        """Recorded commands (accepted and refused), newest first."""
        return await self.send(ops.list_audit(**filters))

    async def run_stats(self, **query: Unpack[RunStatsQuery]) -> RunStats:
        """Run counts, failure rate, tokens and cost per time bucket."""
        return await self.send(ops.run_stats(**query))

    async def step_stats(self, **query: Unpack[StepStatsQuery]) -> StepStats:
        """Step counts, latency percentiles, tokens and cost per bucket (and group)."""
        return await self.send(ops.step_stats(**query))

    async def search_spans(self, **filters: Unpack[SpanFilters]) -> Page[Span]:
        """Trace spans matching ``filters``, newest first."""
        return await self.send(ops.search_spans(**filters))

    async def get_trace(self, trace_id: str) -> Trace:
        """Every span of one trace."""
        return await self.send(ops.get_trace(trace_id))

    async def search_failures(self, **filters: Unpack[FailureFilters]) -> Page[Failure]:
        """Detected failures with their recovery plans."""
        return await self.send(ops.search_failures(**filters))

    async def failure_groups(self, **query: Unpack[FailureGroupQuery]) -> list[FailureGroup]:
        """Failures grouped by signature."""
        return await self.send(ops.failure_groups(**query))

    async def stream_events(
        self, execution_id: object, *, after: str | None = None, max_quiet_reconnects: int = 1
    ) -> AsyncIterator[RunEvent]:
        """Follow a run's events (SSE) until its final event, resuming after dropped connections.

        Args:
            execution_id: The run.
            after: Resume after this event's ``cursor`` (default: from the run's first event).
            max_quiet_reconnects: Reconnections in a row that may deliver nothing before the
                stream is taken as finished.
        """
        cursor = StreamCursor(last_event_id=after)
        path = ops.get_execution(execution_id).path + "/events"
        while True:
            parser = SseParser()
            delivered = False
            try:
                async for event in self._sse_events(path, cursor, parser):
                    delivered = True
                    cursor.delivered(event)
                    yield event
            except httpx.TransportError as exc:
                # Dropped: reconnect with Last-Event-ID, unless the gateway stays unreachable.
                cursor.connection_failed(exc, self.config.max_attempts, path)
            else:
                if not cursor.should_reconnect(
                    delivered_any=delivered, max_quiet=max_quiet_reconnects
                ):
                    return
            await self._sleep(parser.retry_s or self.config.backoff_s)

    async def _sse_events(
        self, path: str, cursor: StreamCursor, parser: SseParser
    ) -> AsyncIterator[RunEvent]:
        # The first response is checked through the usual retry loop (404, 401 ... raise).
        op: Op[None] = Op("GET", path, lambda _: None, headers=cursor.headers())
        attempts = Attempts(self.config, op)
        while True:
            attempts.next()
            async with self._http.stream(
                "GET",
                path,
                headers=op.request_headers(None),
                timeout=httpx.Timeout(self.config.timeout_s, read=60.0),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    wait = attempts.after_response(response)
                    assert wait is not None
                    await self._sleep(wait)
                    continue
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                return

    async def subscribe(
        self,
        *,
        types: list[str] | None = None,
        execution_id: object | None = None,
        cursor: str | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Follow the tenant's events over WebSocket, resuming after dropped connections.

        Never ends by itself: stop iterating to unsubscribe.

        Args:
            types: Event types to receive (default: all).
            execution_id: Only this run's events.
            cursor: Resume after this event's ``cursor`` (default: only events from now on).

        Raises:
            UnauthorizedError: The credential is refused (close code 4401).
            ForbiddenError: The role is too low (4403).
            InvalidRequestError: The cursor is malformed (1008).
        """
        subscription = Subscription(self.config, types, _optional_str(execution_id), cursor)
        while True:
            try:
                async with ws_connect(
                    subscription.url(),
                    additional_headers=subscription.headers(),
                    proxy=None,
                    open_timeout=self.config.timeout_s,
                ) as socket:
                    async for message in socket:
                        yield subscription.received(message)
                delay = subscription.closed(1000, "closed by the gateway")
            except ConnectionClosed as exc:
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "")
                delay = subscription.closed(code, reason)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                delay = subscription.failed(exc)
            await self._sleep(delay)

    # --- consensus ----------------------------------------------------------------------------

    async def open_round(
        self,
        participants: list[str],
        *,
        rule: Literal["majority", "unanimous", "weighted", "k_of_n"],
        deadline: datetime,
        weights: dict[str, float] | None = None,
        threshold: float | None = None,
        k: int | None = None,
        subject: str | None = None,
        execution_id: object | None = None,
    ) -> RoundAccepted:
        """Open a consensus round among ``participants``."""
        return await self.send(
            ops.open_round(
                participants=participants,
                rule=rule,
                deadline=deadline,
                weights=weights,
                threshold=threshold,
                k=k,
                subject=subject,
                execution_id=None if execution_id is None else str(execution_id),
            )
        )

    async def get_round(self, round_id: object) -> ConsensusRound:
        """A round with its votes and tally."""
        return await self.send(ops.get_round(round_id))

    async def cast_vote(
        self,
        round_id: object,
        participant: str,
        choice: str,
        *,
        rationale: str | None = None,
        expected_version: int | None = None,
    ) -> RoundAccepted:
        """Cast one participant's vote."""
        return await self.send(
            ops.cast_vote(
                round_id,
                participant=participant,
                choice=choice,
                rationale=rationale,
                expected_version=expected_version,
            )
        )

    async def decide_round(
        self, round_id: object, *, expected_version: int | None = None
    ) -> RoundDecision:
        """Decide a round now (on quorum, or as timed out after its deadline)."""
        return await self.send(ops.decide_round(round_id, expected_version))

    # --- policies, API keys, identity ---------------------------------------------------------

    async def publish_policy(
        self,
        name: str,
        module: str,
        *,
        mode: Literal["deny", "warn"] = "deny",
        description: str | None = None,
        expected_version: int | None = None,
    ) -> PolicyAccepted:
        """Publish a Rego module as a new policy (or a new version of one; role operator)."""
        return await self.send(
            ops.publish_policy(
                name=name,
                module=module,
                mode=mode,
                description=description,
                expected_version=expected_version,
            )
        )

    async def find_policies(self, *, name: str | None = None) -> list[Policy]:
        """The tenant's policies named ``name``, or all of them."""
        return await self.send(ops.find_policies(name))

    async def get_policy(self, policy_id: object, *, policy_version: int | None = None) -> Policy:
        """A policy at its latest (or the given) version."""
        return await self.send(ops.get_policy(policy_id, policy_version))

    async def create_api_key(self, name: str, *, role: Role) -> IssuedApiKey:
        """Create an API key (role admin); its plaintext is in the answer only."""
        return await self.send(ops.create_api_key(name, role))

    async def list_api_keys(self) -> list[ApiKey]:
        """The tenant's API keys (role admin)."""
        return await self.send(ops.list_api_keys())

    async def revoke_api_key(self, key_id: str) -> None:
        """Revoke an API key (role admin); it stops working on the next request."""
        await self.send(ops.revoke_api_key(key_id))

    async def whoami(self) -> WhoAmI:
        """The caller as the gateway sees it."""
        return await self.send(ops.whoami())

    async def ready(self) -> Readiness:
        """``/ready``; a gateway that is not ready raises ``ServiceUnavailableError``."""
        return await self.send(ops.ready())


def _optional_str(value: object | None) -> str | None:
    return None if value is None else str(value)
