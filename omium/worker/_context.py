"""What an agent function receives: its input, the outputs it needs, state, and its model.

Agents are plain functions ``def agent(ctx: StepContext) -> dict``. They call their model only
through :meth:`StepContext.complete`, which is how the worker records every call as a span (with
tokens and cost), counts it against the run's budget, applies the agent's limits and stops calls
once the attempt was abandoned (timed out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from omium.sdk.providers import Completion, LLMProvider, MessageLike, calls_for_execution
from omium.sdk.workflow import AgentSpec, ConsensusSpec
from omium.worker._budget import RunBudget
from omium.worker._errors import StepCancelledError
from omium.worker._telemetry import Span, Telemetry

log = structlog.get_logger("omium.agent")

OUTPUT_ATTRIBUTE_CHARS = 8000
"""How much of a reply an LLM span keeps (policies read it as ``input.output``)."""


@dataclass
class CallUsage:
    """The LLM calls of one attempt, added up."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    models: list[str] = field(default_factory=list)
    # The calls' spans (SpanRecorded payloads), for the policy gate (omium.worker._policy_gate).
    spans: list[dict[str, Any]] = field(default_factory=list)

    def add(self, completion: Completion) -> None:
        """Count one call."""
        self.calls += 1
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.cost_usd += completion.cost_usd
        self.models.append(completion.model)

    @property
    def model(self) -> str | None:
        """The model that answered most calls."""
        return max(set(self.models), key=self.models.count) if self.models else None

    def step_usage(self) -> dict[str, Any]:
        """The totals as ``complete_step`` records them on ``StepCompleted``."""
        return {
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "model": self.model,
        }


class LLMCalls:
    """Makes an attempt's LLM calls: limits, budget, deadline, one span per call.

    Args:
        provider: The agent's provider.
        agent_name: The agent's name (scripts and traces match on it).
        spec: The agent's definition (model, limits).
        model: The model to use (a recovery fallback may override the agent's).
        budget: The run's budget counters.
        telemetry: Where spans go.
        parent: The attempt's span.
        deadline: ``time.monotonic()`` by which the attempt must end.
        cancel: Set when the attempt was abandoned.
        usage: Where the calls are added up (shared by a consensus step's voters).
    """

    def __init__(
        self,
        *,
        provider: LLMProvider,
        agent_name: str,
        spec: AgentSpec,
        model: str,
        budget: RunBudget,
        telemetry: Telemetry,
        parent: Span,
        deadline: float,
        cancel: threading.Event,
        usage: CallUsage | None = None,
    ) -> None:
        """Bind the calls to one attempt."""
        self._provider = provider
        self._agent = agent_name
        self._spec = spec
        self.model = model
        self._budget = budget
        self._telemetry = telemetry
        self._parent = parent
        self._deadline = deadline
        self._cancel = cancel
        self.usage = usage if usage is not None else CallUsage()

    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """One chat completion, recorded and counted.

        Raises:
            StepCancelledError: The attempt was abandoned.
            BudgetExceededError: The run's budget is spent (or this call overspent it).
            ProviderError: The provider failed (rate limit, timeout, bad request ...).
        """
        if self._cancel.is_set():
            raise StepCancelledError("the attempt was abandoned; no more calls")
        self._budget.check()
        span = Span(
            self._parent.execution_id,
            self._parent.tenant_id,
            "llm.chat",
            "llm_call",
            step_id=self._parent.step_id,
            parent_span_id=self._parent.span_id,
            agent=self._agent,
            model=model or self.model,
        )
        try:
            with calls_for_execution(self._parent.execution_id):
                completion = self._provider.complete(
                    messages,
                    model=model or self.model,
                    max_tokens=max_tokens or self._spec.limits.max_tokens,
                    temperature=temperature,
                    timeout_s=max(0.1, self._deadline - time.monotonic()),
                    agent=self._agent,
                    step_id=self._parent.step_id,
                )
        except Exception as exc:
            span.fail(f"{type(exc).__name__}: {exc}")
            self._telemetry.record_span(span)
            self.usage.spans.append(span.payload())
            raise
        self._record(span, completion)
        self.usage.add(completion)
        self._budget.add(completion)
        return completion

    def _record(self, span: Span, completion: Completion) -> None:
        span.model = completion.model
        span.tokens_in = completion.tokens_in
        span.tokens_out = completion.tokens_out
        span.cost_usd = completion.cost_usd
        span.attributes.update(
            provider=completion.provider,
            finish_reason=completion.finish_reason or "",
            latency_ms=f"{completion.latency_s * 1000:.0f}",
            output=completion.text[:OUTPUT_ATTRIBUTE_CHARS],
        )
        self._telemetry.record_span(span)
        self.usage.spans.append(span.payload())


class StepContext:
    """The context an agent function is called with.

    Attributes:
        tenant_id: The run's tenant.
        execution_id: The run.
        workflow_id: Its workflow.
        step_id: The step being run.
        attempt: The attempt number (1 for the first try).
        agent: The name of the agent running (a consensus participant, for votes).
        input: The run's input, then the step's static ``input`` (which wins); for consensus
            participants also ``subject`` and ``choices``.
        outputs: Outputs of the steps this step needs, by step id.
        state: Free-form data carried from step to step in checkpoints; change it in place.
        consensus: The consensus step's settings, for participants (else ``None``).
        log: A structlog logger (``omium.agent``) bound to the run, step and attempt:
            ``ctx.log.info("fetched", rows=12)``.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        execution_id: str,
        workflow_id: str,
        step_id: str,
        attempt: int,
        agent: str,
        input: Mapping[str, Any],
        outputs: Mapping[str, Any],
        state: dict[str, Any],
        calls: LLMCalls,
        cancel: threading.Event,
        consensus: ConsensusSpec | None = None,
    ) -> None:
        """Build the context (the worker does this; agents only read it)."""
        self.tenant_id = tenant_id
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.attempt = attempt
        self.agent = agent
        self.input = dict(input)
        self.outputs = dict(outputs)
        self.state = state
        self.consensus = consensus
        self._calls = calls
        self._cancel = cancel
        self.log = log.bind(execution_id=execution_id, step_id=step_id, attempt=attempt)

    @property
    def model(self) -> str:
        """The model this agent's calls use."""
        return self._calls.model

    @property
    def idempotency_key(self) -> str:
        """A key that is the same for every attempt of this step in this run.

        Pass it to external systems an agent changes (payments, tickets, e-mails), so an
        attempt that runs again after a crash or a rollback does not apply its effect twice.
        """
        return f"{self.execution_id}:{self.step_id}"

    @property
    def cancelled(self) -> bool:
        """Whether the attempt was abandoned (timed out); a long agent should stop."""
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        """Stop a long-running agent whose attempt was abandoned.

        Raises:
            StepCancelledError: The attempt was abandoned.
        """
        if self._cancel.is_set():
            raise StepCancelledError("the attempt was abandoned")

    def complete(
        self,
        prompt: str | Sequence[MessageLike],
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Ask the agent's model; every call is traced, counted and budget-checked.

        Args:
            prompt: The user message, or a whole conversation.
            system: A system message put first (with a text ``prompt``).
            model: Another model than the agent's.
            max_tokens: Most reply tokens (default: the agent's ``limits.max_tokens``).
            temperature: Sampling temperature.

        Raises:
            StepCancelledError: The attempt was abandoned.
            BudgetExceededError: The run's budget is spent.
            ProviderError: The provider failed.
        """
        if isinstance(prompt, str):
            messages: list[MessageLike] = [{"role": "user", "content": prompt}]
            if system:
                messages.insert(0, {"role": "system", "content": system})
        else:
            messages = list(prompt)
        return self._calls.complete(
            messages, model=model, max_tokens=max_tokens, temperature=temperature
        )
