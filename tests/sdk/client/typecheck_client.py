"""Written only to be type-checked (``tests/sdk/client/test_typecheck.py`` runs mypy on it).

No tests here. Each function uses the client the way users do; a signature that stops accepting
these calls, or an answer whose type changes, fails the type check before it reaches users.
"""

from __future__ import annotations

from datetime import UTC, datetime

from omium import AsyncClient, Client
from omium.sdk.client import (
    Execution,
    ExecutionAccepted,
    ExecutionSummary,
    OmiumAPIError,
    Page,
    RateLimitedError,
    RunEvent,
    WorkflowAccepted,
)


def sync_usage(omium: Client) -> None:
    workflow: WorkflowAccepted = omium.register_workflow("examples/workflows/research_report.yaml")
    run: ExecutionAccepted = omium.start_run(workflow.workflow_id, input={"topic": "tides"})
    omium.schedule_step(run.execution_id, "research", agent="researcher")
    omium.request_approval(
        run.execution_id,
        "publish",
        default_action="reject",
        deadline=datetime.now(UTC),
        prompt="publish?",
    )
    omium.approve(run.execution_id, "publish", comment="ok")
    omium.create_checkpoint(run.execution_id, "research", position="after", state=b"{}")
    done: Execution = omium.wait_for_completion(run.execution_id, timeout=30)
    page: Page[ExecutionSummary] = omium.list_executions(status="failed", limit=10)
    first: str | None = page.items[0].workflow_id if page.items else None
    events: list[RunEvent] = list(omium.stream_events(run.execution_id))
    state: bytes = omium.get_checkpoint_state(run.execution_id, "cp")
    print(done.state, first, events, state, omium.run_stats(bucket="hour").buckets)
    try:
        omium.halt_execution(run.execution_id, reason="budget")
    except RateLimitedError as limited:
        wait: float | None = limited.retry_after
        print(wait)
    except OmiumAPIError as refused:
        print(refused.status, refused.slug, refused.extensions.get("current_state"))


async def async_usage(omium: AsyncClient) -> None:
    workflow = await omium.register_workflow({"name": "w", "steps": []})
    run = await omium.start_run(workflow.workflow_id)
    await omium.reject(run.execution_id, "publish")
    async for event in omium.stream_events(run.execution_id, after=None):
        print(event.event_type, event.payload)
    async for summary in omium.iter_executions(workflow_id=workflow.workflow_id):
        print(summary.status)
    execution: Execution = await omium.wait_for_completion(run.execution_id, timeout=1.5)
    print(execution.ended)
