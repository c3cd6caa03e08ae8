"""The async client against a real gateway: commands, queries and a run's event stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from omium.kernel.kafka import ConsumedEvent
from omium.projections.redis import RedisProjection
from omium.sdk.client import AsyncClient, ConflictError, NotFoundError, RunEvent
from tests.projections.helpers import run_of
from tests.sdk.client.fixtures import LiveGateway

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEFINITION = {"name": "async-steps", "steps": [{"id": "plan", "agent": "agents.plan"}]}


class LiveRunStream:
    """The live gateway's Redis read model, fed directly (as the projection would)."""

    def __init__(self, projection: RedisProjection) -> None:
        self.projection = projection
        self.offset = 0

    def project(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.offset += 1
            self.projection.apply(
                ConsumedEvent(
                    topic="direct", partition=0, offset=self.offset, key=None, event=event, raw=b""
                )
            )
        self.projection.flush({}, expected={})


@pytest.fixture
def live_stream(live_gateway: LiveGateway) -> Iterator[LiveRunStream]:
    """The Redis read model the live gateway subscribes to; its keys are deleted after."""
    settings = live_gateway.settings
    projection = RedisProjection.open(settings.redis.url, topic_prefix=settings.kafka.topic_prefix)
    yield LiveRunStream(projection)
    client = redis.Redis.from_url(settings.redis.url)
    for key in client.scan_iter(match=f"{projection.keys.prefix}:*", count=1000):
        client.delete(key)
    client.close()
    projection.close()


async def test_commands_and_queries(async_client_factory: Callable[..., AsyncClient]) -> None:
    async with async_client_factory("operator") as omium:
        workflow = await omium.register_workflow(DEFINITION)
        run = await omium.start_run(workflow.workflow_id, input={"q": 1})
        await omium.schedule_step(run.execution_id, "plan")
        await omium.start_step(run.execution_id, "plan")
        await omium.create_checkpoint(
            run.execution_id, "plan", position="before", state=b"state", checkpoint_id="cp-1"
        )
        await omium.fail_step(run.execution_id, "plan", error="model timed out")
        await omium.schedule_step(run.execution_id, "plan")
        await omium.start_step(run.execution_id, "plan")
        rolled = await omium.roll_back(run.execution_id, "cp-1", reason="retry from before")
        assert rolled.events == ["ExecutionRolledBack"]
        # The step that was running at the checkpoint is scheduled again, so the run may end.
        await omium.complete_execution(run.execution_id, output={"ok": True})
        with pytest.raises(ConflictError) as over:
            await omium.cancel_execution(run.execution_id, reason="enough")
        assert over.value.extensions["current_state"] == "completed"
        ended = await omium.wait_for_completion(run.execution_id, timeout=5)
        assert ended.state == "completed" and ended.rollbacks == 1
        assert (await omium.whoami()).tenant_id.startswith("t-")
        with pytest.raises(NotFoundError):
            await omium.get_workflow("00000000-0000-0000-0000-000000000000")


async def test_stream_events_follows_a_run_to_its_end_and_resumes(
    async_client_factory: Callable[..., AsyncClient],
    live_stream: LiveRunStream,
    tenant: str,
) -> None:
    run = run_of(tenant, steps=[("a", "x", True), ("b", "y", True)])
    live_stream.project(run.events[:3])
    seen: list[RunEvent] = []

    async def follow() -> None:
        async with async_client_factory("viewer") as omium:
            async for event in omium.stream_events(run.aggregate_id):
                seen.append(event)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    assert [e.event_type for e in seen] == [e["event_type"] for e in run.events[:3]]
    live_stream.project(run.events[3:])
    await asyncio.wait_for(follower, timeout=15)
    assert [e.event_type for e in seen] == [e["event_type"] for e in run.events]
    assert seen[-1].event_type == "ExecutionCompleted"
    assert [e.event_id for e in seen] == [str(e["event_id"]) for e in run.events]

    async with async_client_factory("viewer") as omium:
        resumed = [e async for e in omium.stream_events(run.aggregate_id, after=seen[3].cursor)]
    assert [e.cursor for e in resumed] == [e.cursor for e in seen[4:]]


def test_the_sync_stream_matches(
    client_factory: Callable[..., Any], live_stream: LiveRunStream, tenant: str
) -> None:
    run = run_of(tenant, steps=[("a", "x", False)], end="ExecutionFailed")
    live_stream.project(run.events)
    with client_factory("viewer") as omium:
        events = list(omium.stream_events(run.aggregate_id))
        assert [e.event_type for e in events] == [e["event_type"] for e in run.events]
        with pytest.raises(NotFoundError):
            list(omium.stream_events("no-such-run"))


async def test_subscribe_follows_the_tenant_and_resumes_after_a_cursor(
    async_client_factory: Callable[..., AsyncClient],
    live_stream: LiveRunStream,
    tenant: str,
) -> None:
    runs = [run_of(tenant, steps=[("a", "x", True), ("b", "y", True)]) for _ in range(2)]
    live_stream.project(runs[0].events)
    started = [e for e in runs[0].events if e["event_type"] == "StepStarted"]
    async with async_client_factory("viewer") as omium:
        seen: list[RunEvent] = []
        async for event in omium.subscribe(types=["StepStarted"], cursor="0-0"):
            seen.append(event)
            if len(seen) == len(started):
                break
        assert [e.event_id for e in seen] == [str(e["event_id"]) for e in started]

        live_stream.project(runs[1].events)
        later: list[RunEvent] = []
        async for event in omium.subscribe(
            execution_id=runs[1].aggregate_id, cursor=seen[-1].cursor
        ):
            later.append(event)
            if event.event_type == "ExecutionCompleted":
                break
        assert [e.event_type for e in later] == [e["event_type"] for e in runs[1].events]


def test_subscribe_refusals_are_typed(
    client_factory: Callable[..., Any], live_gateway: LiveGateway
) -> None:
    from omium.sdk.client import Client, InvalidRequestError, UnauthorizedError

    with Client(live_gateway.url, token="bad") as omium, pytest.raises(UnauthorizedError):
        next(iter(omium.subscribe()))
    with client_factory("viewer") as omium, pytest.raises(InvalidRequestError):
        next(iter(omium.subscribe(cursor="nope")))
