"""Turning an attempt's outcome into what recovery needs: post-condition checks and failures."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from omium.kernel.blobs import CorruptCheckpointError
from omium.sdk.providers import ProviderError
from omium.sdk.workflow import (
    EntrypointError,
    Step,
    StepOutput,
    WorkflowDefinition,
    check_postconditions,
    gather_sources,
)
from omium.worker._errors import StepAttemptError
from omium.worker._telemetry import FailureReport


def check_output(
    step: Step,
    output: dict[str, Any],
    needed: Mapping[str, Any],
    *,
    tokens_out: int | None,
    attempt: int,
) -> FailureReport | None:
    """Run the step's post-conditions; describe the failure if any check failed.

    A failed ``grounded`` check makes the failure a ``hallucination``; any other failed check a
    ``postcondition_failed``.
    """
    if not step.postconditions:
        return None
    sources = gather_sources(output, [needed[dep] for dep in needed])
    results = check_postconditions(step.postconditions, StepOutput(output, sources, tokens_out))
    failed = [result for result in results if not result.passed]
    if not failed:
        return None
    kinds = {result.failure_kind for result in failed}
    kind = "hallucination" if "hallucination" in kinds else "postcondition_failed"
    message = "; ".join(f"{result.kind}: {result.reason}" for result in failed)
    details = {
        "postconditions_failed": ",".join(result.kind for result in failed),
        "postconditions_checked": str(len(results)),
    }
    for result in failed:
        details[f"postcondition.{result.kind}"] = (result.description or result.reason)[:500]
    return FailureReport(kind, message, attempt, details=details)


def failure_of(exc: BaseException, *, attempt: int) -> tuple[FailureReport, bool]:
    """The failure an exception stands for, and whether another attempt may succeed."""
    if isinstance(exc, StepAttemptError | ProviderError):
        kind, retryable = exc.failure_kind, exc.retryable
    elif isinstance(exc, CorruptCheckpointError | EntrypointError):
        kind, retryable = "exception", False  # the same state or code fails the same way
    else:
        kind, retryable = "exception", True
    details = {"error_type": type(exc).__name__}
    trace = "".join(traceback.format_exception(exc)[-6:])
    if kind == "exception":
        details["stack_trace"] = trace[-3000:]
    message = f"{type(exc).__name__}: {exc}"
    return FailureReport(kind, message, attempt, details=details), retryable


def recovery_details(definition: WorkflowDefinition, step: Step, kind: str) -> dict[str, str]:
    """The workflow's recovery settings for this failure, as ``FailureDetected`` details.

    The recovery processor reads ``workflow_id`` and ``recovery.<setting>`` overrides from them;
    ``recovery.action`` names the rule the workflow gives this kind of failure.
    """
    retry = definition.retry_for(step)
    rule = definition.recovery.rule_for(kind)  # type: ignore[arg-type]
    details = {
        "recovery.action": rule.action,
        "recovery.max_retries": str(max(retry.max_attempts - 1, 0)),
        "recovery.backoff_ms": str(int(retry.backoff.initial_s * 1000)),
        "recovery.max_backoff_ms": str(int(retry.backoff.max_s * 1000)),
    }
    if rule.action == "fallback":
        if rule.fallback_agent:
            details["recovery.fallback_agent"] = rule.fallback_agent
        if rule.fallback_model:
            details["recovery.fallback_model"] = rule.fallback_model
    return details
