"""The SDK against a real gateway: a checkpoint pruned by retention is a typed
``CheckpointPrunedError`` (410) and listed as ``pruned``; the kept one still works."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

import pytest

from omium.commands import ExecutionsApplication, event_store_env
from omium.sdk.client import CheckpointPrunedError, Client, OmiumAPIError
from tests.sdk.client.fixtures import LiveGateway

pytestmark = pytest.mark.integration

DEFINITION = {"name": "looping", "steps": [{"id": "draft", "agent": "agents.draft"}]}


@pytest.fixture
def executions(live_gateway: LiveGateway) -> Iterator[ExecutionsApplication]:
    """The executions application on the gateway's event store (what the janitor uses)."""
    env = event_store_env(
        live_gateway.settings, schema=live_gateway.schema, pool_size=1, max_overflow=2
    )
    app = ExecutionsApplication(env)
    yield app
    app.close()


def test_a_pruned_checkpoint_is_a_typed_410(
    client_factory: Callable[..., Client], executions: ExecutionsApplication, tenant: str
) -> None:
    omium = client_factory("operator")
    workflow = omium.register_workflow(DEFINITION)
    run = omium.start_run(workflow.workflow_id).execution_id
    omium.schedule_step(run, "draft")
    omium.start_step(run, "draft")
    ids = [
        omium.create_checkpoint(
            run, "draft", position="after", state=b'{"n": %d}' % n
        ).checkpoint_id
        for n in range(3)
    ]
    executions.prune_checkpoints(tenant, UUID(str(run)), keep_last=2)

    with pytest.raises(CheckpointPrunedError) as rollback:
        omium.roll_back(run, ids[0])
    with pytest.raises(CheckpointPrunedError) as read:
        omium.get_checkpoint(run, ids[0])

    for error in (rollback.value, read.value):
        assert isinstance(error, OmiumAPIError) and error.status == 410
        assert error.reason == "checkpoint_pruned" and error.checkpoint_id == ids[0]
        assert error.checksum is not None and len(error.checksum) == 64
    states = {c.checkpoint_id: c.state for c in omium.get_execution(run).checkpoints}
    assert states == {ids[0]: "pruned", ids[1]: "available", ids[2]: "available"}
    assert omium.get_checkpoint(run, ids[1]).state_bytes() == b'{"n": 1}'
    omium.roll_back(run, ids[1])
