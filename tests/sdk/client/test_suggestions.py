"""Recovery suggestions through the SDK (sync and async) against a real gateway whose diagnosis
model is scripted: ask for a diagnosis, read it, approve (edited) or reject it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import uvicorn
import yaml
from psycopg import sql

from omium.gateway import create_app
from omium.sdk.client import AsyncClient, Client, InvalidRequestError, SuggestionAccepted
from omium.streams.recovery import DIAGNOSIS_AGENT
from tests.sdk.client.fixtures import LiveGateway, _free_port, _session_settings

pytestmark = pytest.mark.integration

ANSWER = {
    "probable_cause": "The act agent's tool rejects long prompts.",
    "evidence": [{"source": "error", "quote": "prompt too long"}],
    "fix": {"action": "fallback", "agent": "agents.careful", "reason": "it summarises first"},
    "confidence": 0.6,
}
DEFINITION = {
    "name": "two-steps",
    "steps": [{"id": "plan", "agent": "agents.plan"}, {"id": "act", "agent": "agents.act"}],
}


@pytest.fixture(scope="module")
def diagnosing_gateway(
    stack: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    """A gateway whose scripted model answers every diagnosis with ``ANSWER``."""
    script = tmp_path_factory.mktemp("script") / "diagnosis.yaml"
    script.write_text(
        yaml.safe_dump({"rules": [{"agent": DIAGNOSIS_AGENT, "response": json.dumps(ANSWER)}]})
    )
    base = _session_settings()
    settings = base.model_copy(update={"llm": base.llm.model_copy(update={"script_path": script})})
    schema = f"test_sdk_sg_{uuid.uuid4().hex[:10]}"
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, event_store_schema=schema),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", settings, schema)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def escalated(omium: Client) -> str:
    """A run whose step ``act`` failed and waits for a human; its id."""
    run = omium.start_run(omium.register_workflow(DEFINITION).workflow_id).execution_id
    omium.schedule_step(run, "act")
    omium.start_step(run, "act")
    omium.fail_step(run, "act", error="prompt too long")
    omium.schedule_step(run, "act")
    omium.request_approval(
        run, "act", default_action="reject", deadline=datetime.now(UTC) + timedelta(hours=1)
    )
    return run


def test_the_sync_client_asks_reads_and_approves_an_edited_fix(
    diagnosing_gateway: LiveGateway,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    token = diagnosing_gateway.token("operator", tenant=tenant)
    with Client(diagnosing_gateway.url, token=token) as omium:
        run = escalated(omium)

        asked = omium.request_diagnosis(run)
        suggestion = omium.get_suggestion(run, asked.suggestion_id)
        approved = omium.approve_suggestion(
            run,
            asked.suggestion_id,
            fix={"action": "fallback", "agent": "agents.other"},
            comment="other is better",
        )
        listed = omium.list_suggestions(run)
        state = omium.get_execution(run).state
        with pytest.raises(InvalidRequestError):
            omium.reject_suggestion(run, asked.suggestion_id)

    assert isinstance(asked, SuggestionAccepted) and asked.events == ["RecoverySuggested"]
    assert suggestion.status == "proposed" and suggestion.fix["agent"] == "agents.careful"
    assert suggestion.diagnosis["probable_cause"] == ANSWER["probable_cause"]
    assert approved.events == [
        "RecoverySuggestionApproved",
        "StepScheduled",
        "HumanApprovalGranted",
    ]
    assert approved.fix is not None and approved.fix["agent"] == "agents.other"
    assert [s.status for s in listed.suggestions] == ["approved"] and listed.suggestions[0].edited
    assert state == "running"


def test_the_async_client_asks_and_rejects(diagnosing_gateway: LiveGateway) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    token = diagnosing_gateway.token("operator", tenant=tenant)
    with Client(diagnosing_gateway.url, token=token) as omium:
        run = escalated(omium)

    async def review() -> tuple[SuggestionAccepted, str]:
        async with AsyncClient(diagnosing_gateway.url, token=token) as omium:
            asked = await omium.request_diagnosis(run, step_id="act")
            rejected = await omium.reject_suggestion(run, asked.suggestion_id, comment="no")
            return rejected, (await omium.get_execution(run)).state

    rejected, state = asyncio.run(review())

    assert rejected.events == ["RecoverySuggestionRejected"]
    assert state == "waiting_for_approval"
