"""The executions application keeps runs in memory between commands, safely."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any, TypedDict
from uuid import UUID, uuid4

import pytest

from omium.commands import ExecutionsApplication, InvalidCommandError
from omium.commands.executions.domain import Execution

STATE = b'{"draft": "..."}'


class InlineBlob(TypedDict):
    """``create_checkpoint``'s keywords for a state stored inline."""

    checksum: str
    size: int
    storage: str
    inline_state: bytes


BLOB: InlineBlob = {
    "checksum": hashlib.sha256(STATE).hexdigest(),
    "size": len(STATE),
    "storage": "inline",
    "inline_state": STATE,
}


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def running(executions: ExecutionsApplication, tenant: str) -> UUID:
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1)
    executions.schedule_step(tenant, run.aggregate_id, step_id="draft")
    executions.start_step(tenant, run.aggregate_id, step_id="draft")
    executions.create_checkpoint(
        tenant, run.aggregate_id, step_id="draft", position="before", **BLOB
    )
    return run.aggregate_id


def test_a_copy_shares_checkpoints_and_owns_everything_else(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.load(Execution, tenant, running(executions, tenant))

    clone = copy.deepcopy(run)
    clone.complete_step("draft", output={"text": "done"})

    assert clone.checkpoints is not run.checkpoints
    assert all(clone.checkpoints[k] is v for k, v in run.checkpoints.items())
    assert run.steps["draft"].status.value == "running"
    assert clone.steps["draft"].status.value == "completed"
    assert (run.version, run.pending_events) != (clone.version, clone.pending_events)


def test_a_refused_command_leaves_the_cached_run_unchanged(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run_id = running(executions, tenant)
    before = executions.load(Execution, tenant, run_id)

    with pytest.raises(InvalidCommandError):
        executions.roll_back_to_checkpoint(tenant, run_id, checkpoint_id="no-such-checkpoint")

    after = executions.load(Execution, tenant, run_id)
    assert (after.version, after.steps, after.rollbacks) == (
        before.version,
        before.steps,
        before.rollbacks,
    )


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_another_process_writes_are_seen_through_the_cache(
    app_factory: Callable[..., Any], tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    gateway_a: ExecutionsApplication = app_factory(ExecutionsApplication)
    gateway_b: ExecutionsApplication = app_factory(ExecutionsApplication)
    run_id = running(gateway_a, tenant)
    gateway_a.load(Execution, tenant, run_id)  # now cached in a

    gateway_b.complete_step(tenant, run_id, step_id="draft", output={"text": "done"})
    seen = gateway_a.load(Execution, tenant, run_id)

    assert seen.steps["draft"].status.value == "completed"
    assert seen.version == gateway_b.load(Execution, tenant, run_id).version
    # ... and a command through ``a`` builds on it instead of conflicting.
    gateway_a.complete_execution(tenant, run_id, output={"report": "done"})
