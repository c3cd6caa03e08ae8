"""Checkpoint retention on the in-memory store and on PostgreSQL: what is pruned, what stays,
and that a pruned checkpoint is reported as pruned (never as unknown or corrupt)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from omium.commands import (
    CheckpointPrunedError,
    ExecutionsApplication,
    InvalidCommandError,
)
from tests.commands.helpers import event_names


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def inline(data: bytes) -> dict[str, Any]:
    return {
        "checksum": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "storage": "inline",
        "inline_state": data,
    }


def in_object_storage(data: bytes, key: str) -> dict[str, Any]:
    return {
        "checksum": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "storage": "object",
        "object_key": key,
    }


def running_run(executions: ExecutionsApplication, tenant: str, *steps: str) -> UUID:
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1)
    for step in steps:
        executions.schedule_step(tenant, run.aggregate_id, step_id=step)
    executions.start_step(tenant, run.aggregate_id, step_id=steps[0])
    return run.aggregate_id


def checkpoints(
    executions: ExecutionsApplication, tenant: str, run: UUID, step: str, count: int
) -> list[str]:
    ids = [f"{step}-{n}" for n in range(count)]
    for cid in ids:
        executions.create_checkpoint(
            tenant,
            run,
            step_id=step,
            position="after",
            checkpoint_id=cid,
            **inline(f"{cid} state".encode()),
        )
    return ids


def states(executions: ExecutionsApplication, tenant: str, run: UUID) -> dict[str, str]:
    view = executions.get_execution(tenant, run)
    return {c.checkpoint_id: c.state for c in view.checkpoints}


def test_keep_last_keeps_the_latest_n_of_each_step(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft", "review")
    drafts = checkpoints(executions, tenant, run, "draft", 5)
    reviews = checkpoints(executions, tenant, run, "review", 2)

    result = executions.prune_checkpoints(tenant, run, keep_last=2)

    assert result.data["pruned"] == drafts[:3]
    assert result.events == ("CheckpointsPruned",)
    assert states(executions, tenant, run) == {
        **{cid: "pruned" for cid in drafts[:3]},
        **{cid: "available" for cid in drafts[3:] + reviews},
    }
    assert event_names(executions, run)[-1] == "CheckpointsPruned"
    # The same rule again lets nothing more go and records nothing.
    again = executions.prune_checkpoints(tenant, run, keep_last=2)
    assert again.data["pruned"] == [] and again.events == ()
    # A tighter rule goes on from there; the latest of each step stays even with keep_last=1.
    tighter = executions.prune_checkpoints(tenant, run, keep_last=1)
    assert tighter.data["pruned"] == [drafts[3], reviews[0]]
    kept = [cid for cid, state in states(executions, tenant, run).items() if state == "available"]
    assert kept == [drafts[4], reviews[1]]


def test_max_age_lets_old_checkpoints_go_but_never_the_latest_of_a_step(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    drafts = checkpoints(executions, tenant, run, "draft", 3)
    created = executions.get_execution(tenant, run).checkpoints[0].created_at
    assert created is not None and created.tzinfo is not None

    young = executions.prune_checkpoints(
        tenant, run, max_age=timedelta(days=7), now=datetime.now(UTC)
    )
    assert young.data["pruned"] == []
    # A year later all are older than a week; the latest stays anyway.
    later = datetime.now(UTC) + timedelta(days=365)
    old = executions.prune_checkpoints(tenant, run, max_age=timedelta(days=7), now=later)
    assert old.data["pruned"] == drafts[:2]
    assert states(executions, tenant, run)[drafts[2]] == "available"


def test_both_rules_keep_only_what_passes_both(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    drafts = checkpoints(executions, tenant, run, "draft", 4)

    # Within the age but beyond keep_last: pruned by the count.
    result = executions.prune_checkpoints(
        tenant, run, keep_last=3, max_age=timedelta(days=1), now=datetime.now(UTC)
    )
    assert result.data["pruned"] == drafts[:1]


def test_a_pruned_checkpoint_is_reported_as_pruned_everywhere(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    drafts = checkpoints(executions, tenant, run, "draft", 3)
    executions.prune_checkpoints(tenant, run, keep_last=1)
    gone = drafts[0]

    with pytest.raises(CheckpointPrunedError) as rollback:
        executions.roll_back_to_checkpoint(tenant, run, checkpoint_id=gone)
    error = rollback.value
    assert (error.reason, error.checkpoint_id, error.execution_id) == (
        "checkpoint_pruned",
        gone,
        run,
    )
    assert error.checksum == hashlib.sha256(f"{gone} state".encode()).hexdigest()
    assert "pruned" in str(error) and "corrupt" not in str(error)
    with pytest.raises(CheckpointPrunedError):
        executions.get_checkpoint(tenant, run, gone)
    with pytest.raises(CheckpointPrunedError):
        executions.fork_execution(tenant, run, checkpoint_id=gone)
    # Forking with an edited state needs no pruned state: allowed.
    fork = executions.fork_execution(tenant, run, checkpoint_id=gone, state=b'{"edited": 1}')
    assert executions.get_execution(tenant, fork.aggregate_id).parent_execution_id == run
    # Still unknown is unknown, and the kept checkpoint restores and rolls back as before.
    with pytest.raises(InvalidCommandError) as unknown:
        executions.roll_back_to_checkpoint(tenant, run, checkpoint_id="nope")
    assert unknown.value.reason == "unknown_checkpoint"
    kept = executions.get_checkpoint(tenant, run, drafts[2])
    assert kept.inline_state == f"{drafts[2]} state".encode() and kept.state == "available"
    executions.roll_back_to_checkpoint(tenant, run, checkpoint_id=drafts[2])


def test_a_rule_that_keeps_nothing_or_everything_is_refused(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    checkpoints(executions, tenant, run, "draft", 2)

    for rule in ({}, {"keep_last": 0}, {"max_age": timedelta(0)}, {"keep_last": True}):
        with pytest.raises(InvalidCommandError) as caught:
            executions.prune_checkpoints(tenant, run, **rule)
        assert caught.value.reason == "invalid_retention", rule


def test_pruning_works_on_a_finished_run(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    drafts = checkpoints(executions, tenant, run, "draft", 2)
    executions.complete_step(tenant, run, step_id="draft")
    executions.complete_execution(tenant, run)

    assert executions.prune_checkpoints(tenant, run, keep_last=1).data["pruned"] == drafts[:1]


def test_referenced_object_keys_leave_out_pruned_checkpoints_but_not_shared_blobs(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    prefix = f"{tenant}/sha256/"
    shared, alone, last = (f"{prefix}{name}" for name in ("shared", "alone", "last"))
    run = running_run(executions, tenant, "draft")
    other = running_run(executions, tenant, "draft")
    for cid, key in (("a", alone), ("b", shared), ("c", last)):
        executions.create_checkpoint(
            tenant,
            run,
            step_id="draft",
            position="after",
            checkpoint_id=cid,
            **in_object_storage(key.encode(), key),
        )
    # Another run refers to the shared blob too (identical state: one object).
    executions.create_checkpoint(
        tenant,
        other,
        step_id="draft",
        position="after",
        checkpoint_id="x",
        **in_object_storage(shared.encode(), shared),
    )
    assert {alone, shared, last} <= executions.referenced_object_keys()

    executions.prune_checkpoints(tenant, run, keep_last=1)

    mine = {k for k in executions.referenced_object_keys() if k.startswith(prefix)}
    assert mine == {shared, last}
    assert executions.runs_with_checkpoints(tenant) == {run: tenant, other: tenant}


def test_before_and_after_checkpoints_are_kept_apart(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = running_run(executions, tenant, "draft")
    for n in range(2):
        for position in ("before", "after"):
            executions.create_checkpoint(
                tenant,
                run,
                step_id="draft",
                position=position,
                checkpoint_id=f"{position}-{n}",
                **inline(f"{position} {n}".encode()),
            )

    pruned = executions.prune_checkpoints(tenant, run, keep_last=1).data["pruned"]

    # The latest before (where the step last started) and after (where it ended) both stay.
    assert pruned == ["before-0", "after-0"]
