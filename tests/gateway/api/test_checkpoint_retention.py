"""Over HTTP: a checkpoint pruned by retention answers 410 ``checkpoint-pruned`` for rollback,
fork and read, and the run lists it with state ``pruned``; the kept ones still work."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from omium.commands import ExecutionsApplication, event_store_env
from omium.kernel.settings import OmiumSettings
from tests.gateway.api.fixtures import Caller, blob_fields

pytestmark = pytest.mark.integration


@pytest.fixture
def executions(api_settings: OmiumSettings, api_schema: str) -> Iterator[ExecutionsApplication]:
    """The executions application on the gateway's event store (what the janitor uses)."""
    app = ExecutionsApplication(
        event_store_env(api_settings, schema=api_schema, pool_size=1, max_overflow=2)
    )
    yield app
    app.close()


def test_rollback_fork_and_read_of_a_pruned_checkpoint_answer_410(
    caller: Caller, executions: ExecutionsApplication
) -> None:
    eid = caller.running("plan")
    run = f"/executions/{eid}"
    ids = []
    for n in range(3):
        body = {"step_id": "plan", "position": "after", **blob_fields(b'{"n": %d}' % n)}
        ids.append(caller.ok(caller.post(f"{run}/checkpoints", body), 201)["checkpoint_id"])
    pruned = executions.prune_checkpoints(caller.tenant, UUID(eid), keep_last=1)
    assert pruned.data["pruned"] == ids[:2]

    rollback = caller.post(f"{run}/rollback", {"checkpoint_id": ids[0]}, role="operator")
    fork = caller.post(f"{run}/fork", {"checkpoint_id": ids[1]}, role="operator")
    read = caller.get(f"{run}/checkpoints/{ids[0]}")

    for answer in (rollback, fork, read):
        assert answer.status_code == 410, answer.text
        problem = answer.json()
        assert problem["type"] == "urn:omium:problem:checkpoint-pruned"
        assert problem["reason"] == "checkpoint_pruned"
        assert "pruned" in problem["detail"] and "corrupt" not in problem["detail"]
    assert rollback.json()["checkpoint_id"] == ids[0]
    listed = {c["checkpoint_id"]: c["state"] for c in caller.ok(caller.get(run))["checkpoints"]}
    assert listed == {ids[0]: "pruned", ids[1]: "pruned", ids[2]: "available"}
    assert caller.ok(caller.get(f"{run}/checkpoints/{ids[2]}"))["state"] == "available"
    caller.ok(caller.post(f"{run}/rollback", {"checkpoint_id": ids[2]}, role="operator"))
