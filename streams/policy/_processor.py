"""The policy processor: every step output and LLM/tool call span checked against Rego policies.

Inputs (keyed by execution id): ``<prefix>.executions`` (``ExecutionStarted`` for run facts and
budgets, ``StepCompleted`` for step outputs) and ``<prefix>.traces`` (``SpanRecorded`` of kind
``llm_call``/``tool_call``); the tenant's policies come from :class:`PolicyFeed`. Outputs on
``<prefix>.policies``: ``PolicyViolated`` per policy that denies, ``PolicyEvaluationError`` per
policy that fails; and one ``executions.halt_execution`` command per run that a deny-mode policy
denied or failed on (evaluation errors of deny-mode policies fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omium.streams.base import Context, Processor, command_event, derived_id, output_event
from omium.streams.policy import _mapping as m
from omium.streams.policy._feed import PolicyFeed
from omium.streams.policy._registry import (
    CompiledPolicy,
    PolicyEvaluationFailure,
    PolicyInput,
)

RUNS = "runs"
HALTS = "halts"


class PolicyProcessor(Processor):
    """Evaluates policies on step outputs and calls, exactly once per input event.

    Args:
        feed: The published policies (read by every instance).
    """

    name = "policy"
    tables = (RUNS, HALTS)

    def __init__(self, feed: PolicyFeed) -> None:
        """Evaluate with the policies ``feed`` loads."""
        self.feed = feed
        self.evaluations = 0

    def input_areas(self) -> Sequence[str]:
        """Executions (step outputs, run facts) and traces (calls)."""
        return ["executions", "traces"]

    def poll_side_inputs(self) -> None:
        """Load newly published policy versions (hot reload)."""
        self.feed.poll()

    def close(self) -> None:
        """Stop reading policies."""
        self.feed.close()

    def handle(self, ctx: Context) -> None:
        """Keep run facts; evaluate step outputs and call spans."""
        event = ctx.event
        assert event is not None
        kind = event["event_type"]
        if kind == "ExecutionStarted":
            if ctx.get(RUNS, str(event["aggregate_id"])) is None:
                ctx.put(RUNS, str(event["aggregate_id"]), m.new_run(event))
            return
        if kind == "StepCompleted":
            run = ctx.get(RUNS, str(event["aggregate_id"]))
            document = m.step_document(event, run)
            if run is not None:
                m.add_usage(run, document)
                document["run"] = m.run_view(run)
                ctx.put(RUNS, str(event["aggregate_id"]), run)
        elif kind == "SpanRecorded":
            payload = event["payload"]
            execution = payload.get("execution_id")
            run = None if execution is None else ctx.get(RUNS, str(execution))
            span = m.span_document(event, run)
            if span is None:
                return
            document = span
        else:
            return
        self._check(ctx, event, document)

    def _check(self, ctx: Context, event: dict[str, Any], document: dict[str, Any]) -> None:
        denied_by: list[str] = []
        prepared = PolicyInput(document)
        for policy in self.feed.registry.for_target(event["tenant_id"], document["target"]):
            self.evaluations += 1
            try:
                messages = policy.evaluate(prepared)
            except PolicyEvaluationFailure as exc:
                self._emit(
                    ctx,
                    event,
                    policy,
                    "PolicyEvaluationError",
                    m.error_payload(policy, document, str(exc)),
                )
                if policy.mode == "deny":
                    denied_by.append(f"{policy.policy_id} v{policy.version} could not be evaluated")
                continue
            if messages:
                self._emit(
                    ctx,
                    event,
                    policy,
                    "PolicyViolated",
                    m.violated_payload(policy, document, messages),
                )
                if policy.mode == "deny":
                    denied_by.append(f"{policy.policy_id} v{policy.version}: {'; '.join(messages)}")
        if denied_by:
            self._halt(ctx, event, document, denied_by)

    def _emit(
        self,
        ctx: Context,
        event: dict[str, Any],
        policy: CompiledPolicy,
        event_type: str,
        payload: dict[str, Any],
    ) -> None:
        output = output_event(
            event_type,
            event_id=derived_id("policy", event["event_id"], policy.policy_id, policy.version),
            tenant_id=event["tenant_id"],
            payload=payload,
            occurred_at=ctx.now,
            causation_id=str(event["event_id"]),
            correlation_id=event.get("correlation_id"),
        )
        ctx.emit(output, key=payload["execution_id"])

    def _halt(
        self, ctx: Context, event: dict[str, Any], document: dict[str, Any], why: list[str]
    ) -> None:
        execution = document["execution_id"]
        if ctx.get(HALTS, execution):
            return  # one halt per run; later denials are recorded as violations only
        ctx.put(HALTS, execution, True)
        command = command_event(
            "executions.halt_execution",
            command_id=derived_id("policy", execution, "halt"),
            tenant_id=event["tenant_id"],
            target_id=execution,
            args={"reason": "; ".join(why)[:1000], "policy_id": why[0].split(" ", 1)[0]},
            issued_by="streams.policy",
            occurred_at=ctx.now,
            reason="denied by policy",
            causation_id=str(event["event_id"]),
            correlation_id=event.get("correlation_id"),
        )
        ctx.emit(command, key=execution)
