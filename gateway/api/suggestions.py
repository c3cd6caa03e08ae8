"""``/api/v1/executions/{id}/suggestions``: root-cause diagnoses and the fixes they propose.

``POST .../suggestions`` asks the configured model (``OMIUM_LLM__DIAGNOSIS_PROVIDER`` and
``..._MODEL``) to diagnose a failed step of the run, through the same provider layer agents use,
and records the answer as a proposed suggestion (``RecoverySuggested``): ``201`` with the
suggestion. A reviewer then approves it (optionally with an edited ``fix``), which applies the
fix in the same save, or rejects it. Approving can do nothing the reviewer could not do by hand:
a run halted by a deny policy stays halted (``422`` ``run_halted``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from omium.commands import CommandResult, InvalidCommandError
from omium.gateway._openapi import problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway._problems import register_error
from omium.gateway.api._models import ID_PATTERN, MAX_ID_LENGTH, location
from omium.gateway.api._suggestion_models import (
    ApproveSuggestion,
    DecideSuggestion,
    RequestDiagnosis,
    suggestion_accepted,
    suggestion_of,
)
from omium.gateway.api._support import CommandCall, Read, Update, etag
from omium.kernel.errors import ConfigurationError, OmiumError
from omium.kernel.settings import OmiumSettings
from omium.sdk.client import Suggestion, SuggestionAccepted, SuggestionList
from omium.sdk.providers import LLMProvider, ProviderError, providers_from_settings
from omium.streams.recovery import DiagnosisError, diagnose, failure_context, suggestion_arguments

router = APIRouter(prefix="/executions", tags=["recovery"])

SuggestionId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]

register_error(
    ProviderError,
    status=502,
    title="The model provider failed",
    slug="model-provider-failed",
    extensions=("provider", "model", "status_code", "retry_after", "retryable"),
    expose_detail=True,
)
register_error(
    DiagnosisError,
    status=502,
    title="The model's answer is not a diagnosis",
    slug="diagnosis-unreadable",
    expose_detail=True,
)


def _command(role: Role, name: str) -> list[Any]:
    return [requires(role, command=f"executions.{name}")]


def llm_providers(request: Request) -> Mapping[str, LLMProvider]:
    """The app's LLM providers (built from its settings on first use, then kept)."""
    providers: Mapping[str, LLMProvider] | None = getattr(request.app.state, "llm_providers", None)
    if providers is None:
        settings: OmiumSettings = request.app.state.settings
        providers = providers_from_settings(settings.llm)
        request.app.state.llm_providers = providers
    return providers


@router.post(
    "/{execution_id}/suggestions",
    status_code=status.HTTP_201_CREATED,
    response_model=SuggestionAccepted,
    summary="Diagnose a failed step and record the fix the model proposes",
    dependencies=_command(Role.DEVELOPER, "request_diagnosis"),
    responses=problems(409, 502),
)
async def request_diagnosis(
    execution_id: UUID, request: Request, call: Update, body: RequestDiagnosis | None = None
) -> SuggestionAccepted:
    """Ask the configured model for a diagnosis of a failed step; it is recorded as proposed.

    502 when the provider fails or its answer is not a diagnosis (nothing is recorded).
    """
    body = body or RequestDiagnosis()
    key = call.context.idempotency_key
    if key is not None:
        # The same key again answers the first suggestion; the model is not asked twice.
        replay = await run_in_threadpool(
            call.apps.executions.suggestion_for_key, call.context.tenant_id, key
        )
        if replay is not None and replay.aggregate_id == execution_id:
            call.context.set_target(execution_id)
            return _created(call, replay)
    settings: OmiumSettings = request.app.state.settings
    llm = settings.llm
    provider = llm_providers(request).get(llm.diagnosis_provider)
    if provider is None:
        raise ConfigurationError(f"no LLM provider {llm.diagnosis_provider!r} for diagnoses")
    tenant = call.context.tenant_id
    run = await run_in_threadpool(call.apps.executions.get_execution, tenant, execution_id)
    definition = await run_in_threadpool(_definition, call, tenant, run)
    failure = {"failure_id": body.failure_id} if body.failure_id else None
    context = failure_context(run, definition, step_id=body.step_id, failure=failure)
    if context.step_id is None or context.step_id not in {s.step_id for s in run.steps}:
        raise InvalidCommandError(
            "the run has no failed step to diagnose"
            if body.step_id is None
            else f"execution has no step {body.step_id!r}",
            reason="nothing_to_diagnose" if body.step_id is None else "unknown_step",
            field="step_id",
        )
    step = next(s for s in run.steps if s.step_id == context.step_id)
    if step.status != "failed" and not step.error:
        raise InvalidCommandError(
            f"step {step.step_id!r} is {step.status} and has not failed: nothing to diagnose",
            reason="step_not_failed",
            field="step_id",
        )
    result = await run_in_threadpool(
        diagnose,
        provider,
        context,
        model=llm.diagnosis_model or llm.default_model,
        timeout_s=llm.diagnosis_timeout_s,
    )
    suggestion_id = (
        uuid.uuid5(uuid.NAMESPACE_URL, f"omium:suggestion:{execution_id}:{key}").hex
        if key is not None
        else uuid.uuid4().hex
    )
    arguments = suggestion_arguments(
        result,
        context,
        suggestion_id=suggestion_id,
        requested_by=call.context.principal.subject,
    )
    accepted = await call.update(call.apps.executions.suggest_fix, execution_id, body, **arguments)
    return _created(call, accepted)


def _created(call: CommandCall, result: CommandResult) -> SuggestionAccepted:
    call.response.headers["ETag"] = etag(result.version)
    call.response.headers["Location"] = location(
        "executions", result.aggregate_id, "suggestions", result.data["suggestion_id"]
    )
    return suggestion_accepted(result)


def _definition(call: Any, tenant: str, run: Any) -> dict[str, Any] | None:
    try:
        workflow = call.apps.workflows.get_workflow(
            tenant, run.workflow_id, definition_version=run.workflow_version
        )
    except OmiumError:  # the diagnosis can do without the definition
        return None
    definition: dict[str, Any] = workflow.definition
    return definition


@router.get(
    "/{execution_id}/suggestions",
    response_model=SuggestionList,
    summary="A run's recovery suggestions",
    dependencies=[requires(Role.VIEWER)],
)
async def list_suggestions(execution_id: UUID, call: Read) -> SuggestionList:
    """Every suggestion of the run, oldest first, with its diagnosis, fix and review."""
    view = await call.run(call.apps.executions.get_suggestions, execution_id)
    return SuggestionList(
        execution_id=str(view.execution_id),
        version=view.version,
        suggestions=[suggestion_of(s) for s in view.suggestions],
    )


@router.get(
    "/{execution_id}/suggestions/{suggestion_id}",
    response_model=Suggestion,
    summary="One recovery suggestion",
    dependencies=[requires(Role.VIEWER)],
)
async def get_suggestion(execution_id: UUID, suggestion_id: SuggestionId, call: Read) -> Suggestion:
    """One suggestion of the run (422 ``unknown_suggestion`` when the run has no such one)."""
    view = await call.run(call.apps.executions.get_suggestions, execution_id)
    for suggestion in view.suggestions:
        if suggestion.suggestion_id == suggestion_id:
            return suggestion_of(suggestion)
    raise InvalidCommandError(
        f"execution has no suggestion {suggestion_id!r}",
        reason="unknown_suggestion",
        field="suggestion_id",
    )


@router.post(
    "/{execution_id}/suggestions/{suggestion_id}/approve",
    response_model=SuggestionAccepted,
    summary="Approve a suggestion (optionally edited) and apply its fix",
    dependencies=_command(Role.OPERATOR, "approve_suggestion"),
    responses=problems(409),
)
async def approve_suggestion(
    execution_id: UUID,
    suggestion_id: SuggestionId,
    call: Update,
    body: ApproveSuggestion | None = None,
) -> SuggestionAccepted:
    """Approve (the caller is recorded as the reviewer); the fix is applied in the same save."""
    fix = body.fix.model_dump(exclude_none=True) if body and body.fix else None
    result = await call.update(
        call.apps.executions.approve_suggestion,
        execution_id,
        body,
        suggestion_id=suggestion_id,
        decided_by=call.context.principal.subject,
        fix=fix,
        comment=body.comment if body else None,
    )
    return suggestion_accepted(result)


@router.post(
    "/{execution_id}/suggestions/{suggestion_id}/reject",
    response_model=SuggestionAccepted,
    summary="Reject a suggestion",
    dependencies=_command(Role.OPERATOR, "reject_suggestion"),
    responses=problems(409),
)
async def reject_suggestion(
    execution_id: UUID,
    suggestion_id: SuggestionId,
    call: Update,
    body: DecideSuggestion | None = None,
) -> SuggestionAccepted:
    """Reject (the caller is recorded as the reviewer); the run stays as it is."""
    result = await call.update(
        call.apps.executions.reject_suggestion,
        execution_id,
        body,
        suggestion_id=suggestion_id,
        decided_by=call.context.principal.subject,
        comment=body.comment if body else None,
    )
    return suggestion_accepted(result)
