"""A run started through the API records its workflow version's budget on ``ExecutionStarted``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from omium.commands import CommandApplications, event_store_env
from omium.kernel.settings import OmiumSettings
from tests.gateway.api.fixtures import Caller

pytestmark = pytest.mark.integration


@pytest.fixture
def stored(api_settings: OmiumSettings, api_schema: str) -> Iterator[CommandApplications]:
    """The command applications on the gateway's event store (to read what it recorded)."""
    env = event_store_env(api_settings, schema=api_schema, pool_size=1, max_overflow=1)
    with CommandApplications.create(env) as apps:
        yield apps


def started(apps: CommandApplications, execution_id: str) -> Any:
    """The run's first event (eventsourcing builds its class from ``Execution.__init__``)."""
    first, *_ = apps.executions.repository.event_store.get(uuid.UUID(execution_id))
    return first


def test_the_versions_budget_is_recorded_and_a_version_without_one_records_none(
    caller: Caller, stored: CommandApplications
) -> None:
    capped = {
        "steps": [{"id": "plan", "agent": "agents.plan"}],
        "policies": {"budget": {"max_tokens": 1200, "max_cost_usd": 0.25}},
    }
    body = {"name": f"wf-{uuid.uuid4().hex[:8]}", "definition": capped}
    wid = str(caller.ok(caller.post("/workflows", body), 201)["workflow_id"])
    run = caller.execution(wid)
    event = started(stored, run)
    assert type(event).__name__ == "ExecutionStarted"
    assert (event.max_tokens, event.max_cost_usd) == (1200, 0.25)

    free = started(stored, caller.execution())
    assert (free.max_tokens, free.max_cost_usd) == (None, None)
