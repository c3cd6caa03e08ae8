"""The diagnosis processor (``omium worker diagnosis``): every escalation gets a suggestion.

On ``<prefix>.failures`` (keyed by execution id): a ``FailureDetected`` is kept (table
``failures``) until the recovery processor's ``RecoveryPlanned`` for it arrives. When that plan
escalates to a human, the failed step's context (the run and its workflow from the write side,
the failure, the learned statistics the plan carries) is shown to the configured model, and the
diagnosis is recorded on the run with ``suggest_fix`` (``RecoverySuggested``) for the reviewer
the escalation waits for.

The model call and the command happen outside the Kafka transaction, as the orchestrator's
commands do: the suggestion id and idempotency key derive from the plan, and a plan processed
again after a crash finds its suggestion already recorded and calls no model. A provider that
fails, or an answer that is not a diagnosis, is logged and counted; the escalation goes on
without a suggestion (a person can still ask for one through the API).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import structlog

from omium.commands import CommandApplications, ConflictError
from omium.kernel.errors import DomainError, OmiumError
from omium.kernel.retry import retrying
from omium.kernel.settings import LLMSettings
from omium.sdk.providers import LLMProvider, ProviderError
from omium.streams.base import Context, Processor, derived_id
from omium.streams.recovery._diagnosis import (
    DiagnosisError,
    diagnose,
    failure_context,
    suggestion_arguments,
)

log = structlog.get_logger("omium.streams.diagnosis")

FAILURES = "failures"
REQUESTED_BY = "streams.diagnosis"
"""``requested_by`` of the suggestions this processor records."""


class DiagnosisProcessor(Processor):
    """Asks a model for a root-cause diagnosis of every escalated failure, once.

    Args:
        apps: The write side (reads the run and its workflow; records the suggestion).
        providers: LLM providers by name.
        llm: ``diagnosis_provider``, ``diagnosis_model`` (else ``default_model``) and
            ``diagnosis_timeout_s``.
    """

    name = "diagnosis"
    tables = (FAILURES,)

    def __init__(
        self, apps: CommandApplications, providers: Mapping[str, LLMProvider], llm: LLMSettings
    ) -> None:
        """Diagnose with ``providers[llm.diagnosis_provider]``."""
        self._apps = apps
        self._providers = providers
        self._llm = llm
        self.stats: Counter[str] = Counter()

    def input_areas(self) -> Sequence[str]:
        """Failures and recovery plans."""
        return ["failures"]

    def handle(self, ctx: Context) -> None:
        """Keep failures; diagnose the ones whose plan escalates."""
        event = ctx.event
        assert event is not None
        payload = event["payload"]
        if event["event_type"] == "FailureDetected":
            ctx.put(FAILURES, str(payload["failure_id"]), _failure(payload))
        elif event["event_type"] == "RecoveryPlanned":
            failure_id = str(payload["failure_id"])
            if payload["plan"] == "escalate" and payload.get("step_id"):
                self._diagnose(event, ctx.get(FAILURES, failure_id))
            ctx.delete(FAILURES, failure_id)

    def _diagnose(self, plan: Mapping[str, Any], failure: Mapping[str, Any] | None) -> None:
        payload = plan["payload"]
        tenant = str(plan["tenant_id"])
        execution_id = UUID(str(payload["execution_id"]))
        suggestion_id = derived_id("diagnosis", payload["plan_id"]).hex
        executions = self._apps.executions
        try:
            known = executions.get_suggestions(tenant, execution_id).suggestions
            if any(s.suggestion_id == suggestion_id for s in known):
                self.stats["already_suggested"] += 1
                return  # processed again after a crash: no second model call
            run = executions.get_execution(tenant, execution_id)
        except DomainError as exc:
            log.warning("diagnosis.none", execution_id=execution_id, error=str(exc))
            self.stats["run_not_found"] += 1
            return
        context = failure_context(
            run,
            self._definition(tenant, run),
            step_id=str(payload["step_id"]),
            failure={**(failure or {}), "failure_id": str(payload["failure_id"])},
            statistics=payload.get("statistics") or (),
        )
        provider = self._providers.get(self._llm.diagnosis_provider)
        if provider is None:
            log.error("diagnosis.no_provider", provider=self._llm.diagnosis_provider)
            self.stats["no_provider"] += 1
            return
        try:
            result = diagnose(
                provider,
                context,
                model=self._llm.diagnosis_model or self._llm.default_model,
                timeout_s=self._llm.diagnosis_timeout_s,
            )
        except (ProviderError, DiagnosisError) as exc:
            log.warning(
                "diagnosis.failed",
                execution_id=execution_id,
                error_type=type(exc).__name__,
                error=str(exc),
            )
            self.stats["diagnosis_failed"] += 1
            return
        arguments = suggestion_arguments(
            result, context, suggestion_id=suggestion_id, requested_by=REQUESTED_BY
        )
        self._record(tenant, execution_id, arguments, key=f"diagnosis:{payload['plan_id']}")

    def _record(
        self, tenant: str, execution_id: UUID, arguments: dict[str, Any], *, key: str
    ) -> None:
        # A conflict: another writer moved the run on; the next attempt reloads it.
        try:
            retrying(ConflictError, attempts=5, wait_s=0.02)(
                self._apps.executions.suggest_fix,
                tenant,
                execution_id,
                idempotency_key=key,
                **arguments,
            )
        except ConflictError:
            log.warning("diagnosis.suggestion_dropped", execution_id=execution_id, why="conflicts")
            self.stats["conflicts"] += 1
            return
        except DomainError as exc:
            log.warning("diagnosis.suggestion_refused", execution_id=execution_id, error=str(exc))
            self.stats["refused"] += 1
            return
        self.stats["suggested"] += 1

    def _definition(self, tenant: str, run: Any) -> dict[str, Any] | None:
        try:
            workflow = self._apps.workflows.get_workflow(
                tenant, run.workflow_id, definition_version=run.workflow_version
            )
        except OmiumError:
            return None  # the diagnosis can do without it
        definition: dict[str, Any] = workflow.definition
        return definition


def _failure(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "failure_id": str(payload["failure_id"]),
        "kind": str(payload["kind"]),
        "message": str(payload["message"])[:4000],
        "agent": payload.get("agent"),
        "model": payload.get("model"),
        "details": {str(k): str(v)[:2000] for k, v in dict(payload.get("details") or {}).items()},
    }
