"""An escalation gets a suggestion, on Kafka and the real event store: the recovery processor
escalates, the command worker holds the step for a human, the diagnosis processor asks the
(scripted) model and records the suggestion; approving it applies the fix and the run completes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from omium.commands import CommandApplications
from omium.kernel.settings import LLMSettings
from omium.sdk.providers import ScriptedProvider
from omium.streams.base import ProcessorConfig
from omium.streams.command_worker import CommandWorker
from omium.streams.recovery import DIAGNOSIS_AGENT, DiagnosisProcessor, RecoveryProcessor
from tests.streams.conftest import RunningRuntime
from tests.streams.events import TENANT, failure

pytestmark = pytest.mark.integration

ANSWER = {
    "probable_cause": "The search tool rejects queries longer than 200 characters.",
    "evidence": [{"source": "error", "quote": "query too long"}],
    "fix": {"action": "fallback", "agent": "careful-writer", "reason": "it shortens queries"},
    "confidence": 0.7,
}


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """``check()``'s first truthy value, polled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_an_escalation_gets_a_suggestion_and_approving_it_completes_the_run(
    apps_factory: Callable[[], CommandApplications],
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    apps = apps_factory()
    executions = apps.executions
    workflow = apps.workflows.register_workflow(
        TENANT,
        name=f"wf-{uuid.uuid4().hex[:8]}",
        definition={
            "agents": {
                "writer": {"entrypoint": "agents.writer:run"},
                "careful-writer": {"entrypoint": "agents.careful:run"},
            },
            "steps": [{"id": "plan", "agent": "writer"}],
        },
    ).aggregate_id
    run = executions.start_execution(TENANT, workflow_id=workflow, workflow_version=1).aggregate_id
    executions.schedule_step(TENANT, run, step_id="plan", agent="writer")
    executions.start_step(TENANT, run, step_id="plan")
    executions.fail_step(TENANT, run, step_id="plan", error="search: query too long")
    provider = ScriptedProvider(
        {"rules": [{"agent": DIAGNOSIS_AGENT, "response": json.dumps(ANSWER)}]}
    )
    runtime_factory(RecoveryProcessor(), config_factory("recovery"))
    runtime_factory(CommandWorker(apps_factory()), config_factory("commands"))
    diagnosis = DiagnosisProcessor(apps_factory(), {"scripted": provider}, LLMSettings())
    runtime_factory(diagnosis, config_factory("diagnosis"))

    # A systemic failure (every earlier one escalates: threshold 0) goes to a human.
    detected = failure(
        run,
        message="search: query too long",
        details={"workflow_id": str(workflow), "recovery.escalate_after_similar": "0"},
    )
    publish(detected)

    suggestions = wait_for(lambda: executions.get_suggestions(TENANT, run).suggestions)
    waiting = wait_for(
        lambda: executions.get_execution(TENANT, run).state == "waiting_for_approval"
    )
    [suggestion] = suggestions
    assert waiting
    assert suggestion.requested_by == "streams.diagnosis"
    assert suggestion.failure_id == str(detected["payload"]["failure_id"])
    assert suggestion.fix == {
        "action": "fallback",
        "agent": "careful-writer",
        "reason": "it shortens queries",
        "step_id": "plan",
    }
    assert suggestion.diagnosis["evidence"][0]["verified"] is True
    [planned] = read_events(
        "failures", count=1, where=lambda e: e["event_type"] == "RecoveryPlanned"
    )
    assert planned["payload"]["plan"] == "escalate"

    # A plan delivered again (a crash before the offsets were committed) calls no model.
    publish(planned)
    wait_for(lambda: diagnosis.stats["already_suggested"] == 1)  # the copy was handled
    assert len(provider.calls) == 1
    assert len(executions.get_suggestions(TENANT, run).suggestions) == 1

    # The reviewer approves; the fix (the fallback agent) is applied and the step may run.
    executions.approve_suggestion(
        TENANT, run, suggestion_id=suggestion.suggestion_id, decided_by="alice"
    )
    view = executions.get_execution(TENANT, run)
    step = next(s for s in view.steps if s.step_id == "plan")
    assert (view.state, step.status, step.agent) == ("running", "scheduled", "careful-writer")
    executions.start_step(TENANT, run, step_id="plan")
    executions.complete_step(TENANT, run, step_id="plan", output={"plan": "ok"})
    executions.complete_execution(TENANT, run, output={"done": True})
    assert executions.get_execution(TENANT, run).state == "completed"
