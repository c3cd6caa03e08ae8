"""History verification through the gateway: ``verify_execution`` and ``verify_tenant``.

The test gateway's events are relayed to its Kafka prefix first, so both copies of the history
are checked; then a stored event is edited in PostgreSQL and the report names it.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from omium.commands.relay import OutboxRelay, RelayOptions
from omium.sdk.client import AsyncClient, Client, ForbiddenError, NotFoundError
from tests.sdk.client.fixtures import LiveGateway

pytestmark = pytest.mark.integration

DEFINITION = {
    "name": "verified",
    "steps": [{"id": "plan", "agent": "agents.plan:run"}],
}


def relay_everything(gateway: LiveGateway) -> None:
    """Publish every event stored so far to the gateway's Kafka prefix."""
    options = RelayOptions(progress_interval_s=60.0)
    with OutboxRelay.create(
        gateway.settings, schema=gateway.schema, options=options, create_topics=False
    ) as relay:
        relay.run(once=True)


def edit_first_event(gateway: LiveGateway, execution_id: str) -> None:
    """Change the run's first stored event (its input) in PostgreSQL."""
    table = sql.Identifier(gateway.schema, "executions_events")
    with psycopg.connect(gateway.settings.postgres.dsn(), autocommit=True) as conn:
        changed = conn.execute(
            sql.SQL(
                "UPDATE {} SET state = convert_to(replace(convert_from(state, 'UTF8'), "
                "'tides', 'waves'), 'UTF8') WHERE originator_id = %s AND originator_version = 1"
            ).format(table),
            (execution_id,),
        ).rowcount
    assert changed == 1


@pytest.mark.anyio
async def test_a_run_verifies_and_an_edited_event_is_named(
    live_gateway: LiveGateway,
    client_factory: Callable[..., Client],
    async_client_factory: Callable[..., AsyncClient],
) -> None:
    developer, viewer, operator = (
        client_factory("developer"),
        client_factory("viewer"),
        client_factory("operator"),
    )
    workflow = developer.register_workflow(DEFINITION)
    run = developer.start_run(workflow.workflow_id, input={"topic": "tides"}).execution_id
    developer.schedule_step(run, "plan")
    relay_everything(live_gateway)

    intact = viewer.verify_execution(run)
    async with async_client_factory("viewer") as client:
        store_only = await client.verify_execution(run, kafka=False)
    tenant = operator.verify_tenant()

    assert intact.ok and store_only.ok and tenant.ok, intact.breaks + tenant.breaks
    assert (intact.execution_id, intact.store_events, intact.kafka_events) == (run, 2, 2)
    assert (store_only.checked_kafka, store_only.kafka_events) == (False, 0)
    assert (tenant.aggregates, tenant.store_events, tenant.kafka_events) == (2, 3, 3)
    with pytest.raises(ForbiddenError):
        viewer.verify_tenant()

    edit_first_event(live_gateway, run)
    broken = viewer.verify_execution(run)

    assert not broken.ok
    [found] = broken.breaks
    assert (found.where, found.kind, found.aggregate_id, found.aggregate_version) == (
        "event_store",
        "hash_mismatch",
        run,
        1,
    )
    assert found.expected != found.found
    assert not operator.verify_tenant().ok


def test_another_tenants_run_is_not_found(
    live_gateway: LiveGateway, client_factory: Callable[..., Client]
) -> None:
    developer = client_factory("developer")
    run = developer.start_run(developer.register_workflow(DEFINITION).workflow_id).execution_id
    stranger = Client(live_gateway.url, token=live_gateway.token("admin", tenant="someone-else"))
    with stranger, pytest.raises(NotFoundError):
        stranger.verify_execution(run)
