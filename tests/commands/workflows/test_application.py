"""Workflows application, run on the in-memory store and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from omium.commands import (
    AlreadyExistsError,
    ConflictError,
    InvalidCommandError,
    NotFoundError,
    WorkflowsApplication,
)
from tests.commands.helpers import event_names

DEFINITION: dict[str, Any] = {
    "steps": [
        {"id": "research", "agent": "agents:researcher"},
        {"id": "write", "agent": "agents:writer", "needs": ["research"]},
    ]
}


@pytest.fixture
def workflows(app_factory: Callable[..., Any]) -> WorkflowsApplication:
    return app_factory(WorkflowsApplication)  # type: ignore[no-any-return]


def test_register_publish_and_query_a_workflow(
    workflows: WorkflowsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()

    registered = workflows.register_workflow(tenant, name="report", definition=DEFINITION)
    v2 = {"steps": [*DEFINITION["steps"], {"id": "review", "agent": "a:r", "needs": ["write"]}]}
    published = workflows.publish_workflow_version(
        tenant, registered.aggregate_id, definition=v2, expected_version=1
    )

    assert registered.events == ("WorkflowRegistered",)
    assert (published.version, published.events) == (2, ("WorkflowVersionPublished",))
    latest = workflows.get_workflow(tenant, registered.aggregate_id)
    assert (latest.name, latest.definition_version, latest.latest_version) == ("report", 2, 2)
    assert latest.definition == v2
    first = workflows.get_workflow(tenant, registered.aggregate_id, definition_version=1)
    assert first.definition == DEFINITION
    assert workflows.find_workflow(tenant, "report").id == registered.aggregate_id
    assert event_names(workflows, registered.aggregate_id) == [
        "WorkflowRegistered",
        "WorkflowVersionPublished",
    ]


def test_a_name_is_registered_once_per_tenant(
    workflows: WorkflowsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant, other = tenant_factory(), tenant_factory()
    first = workflows.register_workflow(tenant, name="report", definition=DEFINITION)

    with pytest.raises(AlreadyExistsError) as exists:
        workflows.register_workflow(tenant, name="report", definition=DEFINITION)
    elsewhere = workflows.register_workflow(other, name="report", definition=DEFINITION)

    assert exists.value.aggregate_id == first.aggregate_id
    assert elsewhere.aggregate_id != first.aggregate_id


def test_invalid_definitions_and_names_are_refused_and_nothing_is_written(
    workflows: WorkflowsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    registered = workflows.register_workflow(tenant, name="report", definition=DEFINITION)
    cyclic = {"steps": [{"id": "a", "agent": "x", "needs": ["a"]}]}

    with pytest.raises(InvalidCommandError, match="cycle"):
        workflows.publish_workflow_version(tenant, registered.aggregate_id, definition=cyclic)
    with pytest.raises(InvalidCommandError) as bad_name:
        workflows.register_workflow(tenant, name=" padded ", definition=DEFINITION)
    with pytest.raises(InvalidCommandError) as unknown:
        workflows.get_workflow(tenant, registered.aggregate_id, definition_version=7)

    assert bad_name.value.reason == "invalid_name"
    assert unknown.value.reason == "unknown_version"
    assert workflows.get_workflow(tenant, registered.aggregate_id).version == 1


def test_a_stale_expected_version_is_a_conflict(
    workflows: WorkflowsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    wid = workflows.register_workflow(tenant, name="report", definition=DEFINITION).aggregate_id
    workflows.publish_workflow_version(tenant, wid, definition=DEFINITION)

    with pytest.raises(ConflictError) as conflict:
        workflows.publish_workflow_version(tenant, wid, definition=DEFINITION, expected_version=1)

    assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)


def test_another_tenants_workflow_is_not_found(
    workflows: WorkflowsApplication, tenant_factory: Callable[[], str]
) -> None:
    owner, intruder = tenant_factory(), tenant_factory()
    wid = workflows.register_workflow(owner, name="report", definition=DEFINITION).aggregate_id

    with pytest.raises(NotFoundError) as on_read:
        workflows.get_workflow(intruder, wid)
    with pytest.raises(NotFoundError) as on_write:
        workflows.publish_workflow_version(intruder, wid, definition=DEFINITION)
    with pytest.raises(NotFoundError):
        workflows.find_workflow(intruder, "report")

    assert on_read.value.aggregate_id == wid
    assert on_write.value.aggregate_id == wid
    assert on_read.value.aggregate_type == "Workflow"
