"""The deterministic scripted provider: canned responses per agent/step/prompt, injectable faults.

A script is a list of rules; the first rule whose ``agent``, ``step``, ``model`` and ``prompt``
(a regex searched in the last user message) all match answers the call. Calls are numbered per
rule from 1, so a fault with ``on_calls: [1]`` hits only the first matching call and the retry
after it succeeds: that is how the demo injects a fault once.

Calls made for a run (the worker wraps every agent's calls in :func:`calls_for_execution`) are
numbered per run: each run's first call of a rule is its call 1, whichever worker process or
provider instance serves it and however many runs it served before. Calls made outside any run
are numbered per provider instance. A provider remembers the numbers of its last
``_RUNS_REMEMBERED`` runs; a run whose steps move to another worker process (a takeover)
starts again from 1 there.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, field_validator

from omium.kernel.settings import LLMSettings
from omium.sdk.providers._pricing import PriceTable
from omium.sdk.providers._scope import current_execution
from omium.sdk.providers._tokens import count_prompt_tokens, count_tokens, truncate_to_tokens
from omium.sdk.providers._types import (
    Completion,
    LLMProvider,
    Message,
    MessageLike,
    Tool,
    to_messages,
)
from omium.sdk.providers.errors import (
    InjectedFaultError,
    NoScriptedResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)

FaultKind = Literal["exception", "timeout", "rate_limit", "malformed", "hallucinated"]

HALLUCINATION = (
    "Independent audits found the figure grew by 4,700% in a single year [source:{source}]."
)
"""Appended by a ``hallucinated`` fault: a cited claim whose number is in no source."""

_CITATION = re.compile(r"\[source:\s*([^\],\s]+)")
_RUNS_REMEMBERED = 10_000


class _ScriptModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_ScriptModel):
    """A failure the scripted provider produces instead of (or on top of) its response.

    Kinds: ``exception`` (raises :class:`InjectedFaultError`), ``timeout``
    (:class:`ProviderTimeoutError`), ``rate_limit`` (:class:`RateLimitError` with
    ``retry_after``), ``malformed`` (returns a truncated response, e.g. broken JSON) and
    ``hallucinated`` (returns the response plus a claim its sources do not support).
    """

    kind: FaultKind
    on_calls: list[PositiveInt] | None = None
    """Numbers (from 1) of the rule's matching calls that fail; every call when unset."""
    message: str | None = None
    retry_after_s: NonNegativeFloat = 1.0
    """``retry_after`` of a ``rate_limit`` fault."""
    retryable: bool = True
    """``retryable`` of an ``exception`` fault."""
    text: str | None = None
    """The whole output of a ``malformed`` or ``hallucinated`` fault (instead of the default)."""

    def applies_to(self, call_number: int) -> bool:
        """Whether the rule's ``call_number``-th call gets this fault."""
        return self.on_calls is None or call_number in self.on_calls


class ScriptRule(_ScriptModel):
    """Canned response(s) for the calls a rule matches (unset matchers match anything)."""

    agent: str | None = None
    step: str | None = None
    model: str | None = None
    prompt: str | None = None
    """A regular expression searched in the last user message."""
    response: str | list[str] = Field(min_length=1)
    """The reply; a list gives the n-th call the n-th reply (the last one repeats)."""
    latency_s: NonNegativeFloat = 0.0
    """Really waited before answering (a call with a shorter timeout times out)."""
    faults: list[Fault] = Field(default_factory=list)

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def matches(self, *, agent: str | None, step_id: str | None, model: str, prompt: str) -> bool:
        """Whether this rule answers a call."""
        return (
            (self.agent is None or self.agent == agent)
            and (self.step is None or self.step == step_id)
            and (self.model is None or self.model == model)
            and (self.prompt is None or re.search(self.prompt, prompt) is not None)
        )

    def response_for(self, call_number: int) -> str:
        """The reply to the rule's ``call_number``-th call."""
        if isinstance(self.response, str):
            return self.response
        return self.response[min(call_number, len(self.response)) - 1]


class Script(_ScriptModel):
    """Everything the scripted provider answers (loadable from YAML)."""

    rules: list[ScriptRule] = Field(default_factory=list)
    default: str | None = None
    """Reply to calls no rule matches; such calls fail when unset."""


@dataclass(frozen=True)
class ScriptedCall:
    """One call the scripted provider answered or failed, for assertions and timelines.

    Attributes:
        number: Position among all calls of the provider (from 1).
        execution_id: The run the call was made for (None: outside any run).
        agent: Calling agent.
        step_id: Calling step.
        model: Model asked for.
        rule: Index of the rule that matched (None: the default reply or no match).
        rule_call: Number of the call among the rule's calls (from 1), in its run when it
            was made for one.
        fault: Kind of the fault injected into the call, if any.
        completion: What was returned (None when the call raised).
        error: The error raised, if any.
    """

    number: int
    execution_id: str | None
    agent: str | None
    step_id: str | None
    model: str
    rule: int | None
    rule_call: int
    fault: FaultKind | None
    completion: Completion | None
    error: ProviderError | None


@dataclass(frozen=True)
class _Call:
    chat: list[Message]
    model: str
    max_tokens: int | None
    timeout_s: float | None
    agent: str | None
    step_id: str | None
    started: float
    execution_id: str | None = None


@dataclass(frozen=True)
class _Plan:
    number: int
    rule: int | None
    rule_call: int
    text: str | None
    latency_s: float
    fault: Fault | None


class ScriptedProvider(LLMProvider):
    """Answers from a :class:`Script`, deterministically; the default provider.

    Tokens are estimated with :func:`~omium.sdk.providers.count_tokens` and priced with the
    price table, so budgets and cost reports behave as with a real model.
    """

    name = "scripted"

    def __init__(
        self,
        script: Script | Mapping[str, Any] | None = None,
        *,
        prices: PriceTable | None = None,
    ) -> None:
        """Build a provider.

        Args:
            script: The rules and default reply (a :class:`Script` or its dict form).
            prices: Prices per model (the built-in table by default).
        """
        self.script = script if isinstance(script, Script) else Script.model_validate(script or {})
        self._prices = prices or PriceTable()
        self._lock = threading.Lock()
        # Per run (None: calls outside any run), the number of calls each rule answered.
        self._rule_calls: OrderedDict[str | None, dict[int | None, int]] = OrderedDict()
        self._pending: list[tuple[Fault, str | None, str | None]] = []
        self._calls: list[ScriptedCall] = []
        self._count = 0

    @classmethod
    def from_file(cls, path: str | Path, *, prices: PriceTable | None = None) -> ScriptedProvider:
        """Load a script from a YAML (or JSON) file."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls(Script.model_validate(data or {}), prices=prices)

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> ScriptedProvider:
        """Build the provider from the ``llm`` settings (``script_path`` and ``prices``)."""
        prices = PriceTable(llm.prices)
        if llm.script_path is None:
            return cls(prices=prices)
        return cls.from_file(llm.script_path, prices=prices)

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call so far, in order."""
        with self._lock:
            return list(self._calls)

    def inject_fault(
        self,
        fault: Fault | FaultKind,
        *,
        agent: str | None = None,
        step_id: str | None = None,
    ) -> None:
        """Make the next call of this agent/step (any, when unset) fail once with ``fault``."""
        chosen = fault if isinstance(fault, Fault) else Fault(kind=fault)
        with self._lock:
            self._pending.append((chosen, agent, step_id))

    def reset(self) -> None:
        """Forget calls, call numbers and pending injected faults."""
        with self._lock:
            self._rule_calls.clear()
            self._pending.clear()
            self._calls.clear()
            self._count = 0

    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """Answer from the script (see :meth:`LLMProvider.complete`; ``tools`` are ignored)."""
        call = _Call(
            to_messages(messages),
            model,
            max_tokens,
            timeout_s,
            agent,
            step_id,
            time.perf_counter(),
            current_execution(),
        )
        plan = self._plan(call)
        time.sleep(_wait(plan, timeout_s))
        return self._finish(plan, call)

    async def acomplete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """Answer from the script without blocking the event loop."""
        call = _Call(
            to_messages(messages),
            model,
            max_tokens,
            timeout_s,
            agent,
            step_id,
            time.perf_counter(),
            current_execution(),
        )
        plan = self._plan(call)
        await asyncio.sleep(_wait(plan, timeout_s))
        return self._finish(plan, call)

    # Internals ----------------------------------------------------------------------------

    def _plan(self, call: _Call) -> _Plan:
        prompt = next((m.content for m in reversed(call.chat) if m.role == "user"), "")
        index = next(
            (
                i
                for i, rule in enumerate(self.script.rules)
                if rule.matches(
                    agent=call.agent, step_id=call.step_id, model=call.model, prompt=prompt
                )
            ),
            None,
        )
        with self._lock:
            # Numbers are fixed here, so concurrent calls are numbered in arrival order.
            self._count += 1
            counts = self._counts_of(call.execution_id)
            number = counts.get(index, 0) + 1
            counts[index] = number
            fault = self._take_pending(call.agent, call.step_id)
            if index is None:
                return _Plan(self._count, None, number, self.script.default, 0.0, fault)
            rule = self.script.rules[index]
            if fault is None:
                fault = next((f for f in rule.faults if f.applies_to(number)), None)
            return _Plan(
                self._count, index, number, rule.response_for(number), rule.latency_s, fault
            )

    def _counts_of(self, execution_id: str | None) -> dict[int | None, int]:
        """The rule call counts of one run (of the calls outside runs for None); under the lock."""
        counts = self._rule_calls.get(execution_id)
        if counts is None:
            counts = self._rule_calls[execution_id] = {}
            if len(self._rule_calls) > _RUNS_REMEMBERED + 1:
                oldest = next(run for run in self._rule_calls if run is not None)
                del self._rule_calls[oldest]
        else:
            self._rule_calls.move_to_end(execution_id)
        return counts

    def _take_pending(self, agent: str | None, step_id: str | None) -> Fault | None:
        for position, (fault, for_agent, for_step) in enumerate(self._pending):
            if (for_agent is None or for_agent == agent) and (for_step in (None, step_id)):
                del self._pending[position]
                return fault
        return None

    def _finish(self, plan: _Plan, call: _Call) -> Completion:
        try:
            text = self._text(plan, call.model, call.timeout_s)
        except ProviderError as error:
            self._record(plan, call, None, error)
            raise
        finish_reason = "stop"
        if call.max_tokens is not None and count_tokens(text) > call.max_tokens:
            text, finish_reason = truncate_to_tokens(text, call.max_tokens), "length"
        tokens_in = count_prompt_tokens(m.content for m in call.chat)
        tokens_out = count_tokens(text)
        completion = Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=self._prices.cost(call.model, tokens_in, tokens_out),
            model=call.model,
            latency_s=time.perf_counter() - call.started,
            provider=self.name,
            finish_reason=finish_reason,
        )
        self._record(plan, call, completion, None)
        return completion

    def _text(self, plan: _Plan, model: str, timeout_s: float | None) -> str:
        if timeout_s is not None and plan.latency_s > timeout_s:
            raise ProviderTimeoutError(
                f"no answer within {timeout_s}s", provider=self.name, model=model
            )
        fault = plan.fault
        if fault is not None and fault.kind in {"exception", "timeout", "rate_limit"}:
            raise _fault_error(fault, self.name, model)
        if plan.text is None:
            raise NoScriptedResponseError(
                "no script rule matches the call and the script has no default",
                provider=self.name,
                model=model,
            )
        if fault is not None and fault.kind == "malformed":
            return fault.text if fault.text is not None else plan.text[: len(plan.text) // 2]
        if fault is not None and fault.kind == "hallucinated":
            return fault.text if fault.text is not None else _hallucinate(plan.text)
        return plan.text

    def _record(
        self,
        plan: _Plan,
        call: _Call,
        completion: Completion | None,
        error: ProviderError | None,
    ) -> None:
        record = ScriptedCall(
            number=plan.number,
            execution_id=call.execution_id,
            agent=call.agent,
            step_id=call.step_id,
            model=call.model,
            rule=plan.rule,
            rule_call=plan.rule_call,
            fault=plan.fault.kind if plan.fault is not None else None,
            completion=completion,
            error=error,
        )
        with self._lock:
            self._calls.append(record)


def _wait(plan: _Plan, timeout_s: float | None) -> float:
    return plan.latency_s if timeout_s is None else min(plan.latency_s, timeout_s)


def _fault_error(fault: Fault, provider: str, model: str) -> ProviderError:
    message = fault.message or f"injected {fault.kind.replace('_', ' ')}"
    if fault.kind == "timeout":
        return ProviderTimeoutError(message, provider=provider, model=model)
    if fault.kind == "rate_limit":
        return RateLimitError(
            message, provider=provider, model=model, retry_after=fault.retry_after_s
        )
    return InjectedFaultError(message, provider=provider, model=model, retryable=fault.retryable)


def _hallucinate(text: str) -> str:
    cited = _CITATION.search(text)
    claim = HALLUCINATION.format(source=cited.group(1) if cited else "s1")
    return f"{text.rstrip()} {claim}"
