"""Deny-mode policies checked in the worker, before it goes on to a run's next step by itself.

The policy processor judges every ``StepCompleted`` (target ``step_output``) and every LLM or
tool call span (``llm_call``, ``tool_call``) with the tenant's published Rego policies and halts
the run when a deny-mode policy denies. On the orchestrated path that halt races the
orchestrator's scheduling of the next step; a worker that goes on to the next step in the same
save as the completion (:mod:`omium.worker._pipeline`) would win that race every time. So before
it does, the worker evaluates the same policies on the same input documents (the step's output
and the attempt's calls) with the same engine: the policy processor's own feed
(``<prefix>.policies`` read from the beginning, then polled for new versions), its compiled
regopy bundles and its document mapping.

The gate only decides whether the worker may go on. The processor stays the auditor of record:
it still evaluates the ``StepCompleted`` and records ``PolicyViolated`` / ``PolicyEvaluationError``
(its halt command then finds the run already halted by the worker and is refused).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from omium.streams.policy import (
    CompiledPolicy,
    PolicyEvaluationFailure,
    PolicyFeed,
    PolicyInput,
    add_usage,
    new_run,
    run_view,
    span_document,
    step_document,
)

log = structlog.get_logger(__name__)

STEP_OUTPUT = "step_output"
"""The policy target the processor evaluates on ``StepCompleted`` (calls: ``llm_call`` ...)."""


@dataclass(frozen=True)
class GateDecision:
    """What the gate said about a step's output.

    Attributes:
        known: Whether the policies could be consulted at all (no: leave it to the processor).
        denied: Deny-mode policies that denied (or failed to evaluate: fail closed), as the
            processor words them (``<policy> v<version>: <messages>``).
    """

    known: bool
    denied: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the worker may go on to the next step."""
        return self.known and not self.denied

    @property
    def halt_reason(self) -> str:
        """The halt reason, as the policy processor would give it."""
        return "; ".join(self.denied)[:1000]

    @property
    def policy_id(self) -> str | None:
        """The first denying policy's id, as the policy processor names it."""
        return self.denied[0].split(" ", 1)[0] if self.denied else None


UNKNOWN = GateDecision(known=False)


class PolicyGate:
    """The tenant's deny-mode ``step_output`` policies, evaluated on a step's output.

    Args:
        feed: Builds the policy feed (called by :meth:`start`).
    """

    def __init__(self, feed: Callable[[], PolicyFeed]) -> None:
        """Prepare; :meth:`start` reads the published policies."""
        self._make_feed = feed
        self._feed: PolicyFeed | None = None
        self._lock = threading.Lock()  # one regopy interpreter per policy: not thread-safe
        self.evaluations = 0

    def start(self) -> bool:
        """Read every policy published so far; return whether the gate is usable.

        A gate that could not read the policies answers :data:`UNKNOWN` (the worker then leaves
        the next step to the orchestrator, and the decision to the policy processor).
        """
        with self._lock:
            if self._feed is not None:
                return True
            feed = self._make_feed()
            try:
                feed.poll()  # the first poll reads the topic to its end
            except Exception:
                log.warning(
                    "policy_gate.unreadable", why="no step goes on by itself", exc_info=True
                )
                feed.close()
                return False
            self._feed = feed
            return True

    def close(self) -> None:
        """Stop reading policies."""
        with self._lock:
            if self._feed is not None:
                self._feed.close()
                self._feed = None

    def check_output(
        self,
        *,
        tenant_id: str,
        execution_id: str,
        workflow_id: str,
        workflow_version: int,
        step_id: str,
        attempt: int,
        output: Any,
        calls: Sequence[Mapping[str, Any]] = (),
        usage: Mapping[str, Any] | None = None,
        budget: Mapping[str, Any] | None = None,
    ) -> GateDecision:
        """Evaluate the deny-mode policies on a step's output and calls, as the processor will.

        The output's input document is the one the processor builds from the run's
        ``StepCompleted``, with the step's LLM ``usage`` (``tokens_in``, ``tokens_out``,
        ``cost_usd``, ``model``, as recorded on it) and the run's ``budget`` (``max_cost_usd``,
        ``max_tokens``, as recorded on ``ExecutionStarted``). The run's totals there are this
        step's usage: the processor's also hold the earlier steps', which the worker does not
        keep. Each of the attempt's LLM and tool calls (``SpanRecorded`` payloads) is judged by
        the ``llm_call`` / ``tool_call`` policies on the document the processor builds from its
        span.
        """
        with self._lock:
            feed = self._feed
            if feed is None:
                return UNKNOWN
            try:
                feed.poll()  # newly published versions (does not wait)
            except Exception:
                log.warning("policy_gate.poll_failed", exc_info=True)
                return UNKNOWN
            run = _run_facts(workflow_id, workflow_version, budget or {})
            documents: list[dict[str, Any]] = []
            for call in calls:
                span = span_document({"tenant_id": tenant_id, "payload": call}, run)
                if span is not None:
                    documents.append(span)
            if self._deny_mode(tenant_id, STEP_OUTPUT):
                documents.append(
                    _step_output_document(
                        tenant_id, execution_id, run, step_id, attempt, output, usage or {}
                    )
                )
            denied: list[str] = []
            for document in documents:
                prepared = PolicyInput(document)
                for policy in self._deny_mode(tenant_id, document["target"]):
                    self.evaluations += 1
                    try:
                        messages = policy.evaluate(prepared)
                    except PolicyEvaluationFailure:
                        why = f"{policy.policy_id} v{policy.version} could not be evaluated"
                    else:
                        if not messages:
                            continue
                        why = f"{policy.policy_id} v{policy.version}: {'; '.join(messages)}"
                    if why not in denied:
                        denied.append(why)
            return GateDecision(known=True, denied=tuple(denied))

    def _deny_mode(self, tenant_id: str, target: str) -> list[CompiledPolicy]:
        assert self._feed is not None
        policies = self._feed.registry.for_target(tenant_id, target)
        return [policy for policy in policies if policy.mode == "deny"]


def _run_facts(
    workflow_id: str, workflow_version: int, budget: Mapping[str, Any]
) -> dict[str, Any]:
    """The processor's run facts, from the run's ``ExecutionStarted`` as the relay writes it."""
    started = {
        "payload": {
            "workflow_id": workflow_id,
            "workflow_version": workflow_version,
            "max_cost_usd": budget.get("max_cost_usd"),
            "max_tokens": budget.get("max_tokens"),
        }
    }
    return new_run(started)


def _step_output_document(
    tenant_id: str,
    execution_id: str,
    run: dict[str, Any],
    step_id: str,
    attempt: int,
    output: Any,
    usage: Mapping[str, Any],
) -> dict[str, Any]:
    """The processor's document for the ``StepCompleted`` this output will be relayed as."""
    completed = {
        "tenant_id": tenant_id,
        "aggregate_id": execution_id,
        "payload": {
            "step_id": step_id,
            "attempt": attempt,
            # As the relay writes it (omium.commands.relay: sorted keys, no spaces).
            "output_json": json.dumps(
                output, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ),
            "model": usage.get("model"),
            "tokens_in": int(usage.get("tokens_in", 0)),
            "tokens_out": int(usage.get("tokens_out", 0)),
            "cost_usd": float(usage.get("cost_usd", 0.0)),
        },
    }
    run = dict(run)
    document = step_document(completed, run)
    add_usage(run, document)
    document["run"] = run_view(run)
    return document
