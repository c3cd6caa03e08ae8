"""The savers against a gateway on in-memory services (no servers): the whole conformance suite
through ASGI, so the in-memory thread store is held to the same contract as PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate

from omium.gateway import create_app, in_memory_services, mint_token
from omium.integrations.langgraph import AsyncOmiumSaver
from omium.kernel.settings import load_settings
from omium.sdk.client import AsyncClient

pytestmark = pytest.mark.anyio


async def test_conformance_on_the_in_memory_gateway() -> None:
    settings = load_settings(environment="test")
    limits = settings.gateway.rate_limit.model_copy(update={"default_tier": "premium"})
    settings = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"rate_limit": limits})}
    )
    app = create_app(settings, services=in_memory_services(settings))

    @checkpointer_test(name="AsyncOmiumSaver (in-memory gateway)")
    async def saver() -> AsyncIterator[AsyncOmiumSaver]:
        token = mint_token(
            settings, subject="t", tenant_id=f"t-{uuid.uuid4().hex[:8]}", roles=["developer"]
        )
        async with (
            AsyncClient(
                "http://gateway.test", token=token, transport=httpx.ASGITransport(app=app)
            ) as client,
            AsyncOmiumSaver(client) as omium_saver,
        ):
            yield omium_saver

    report = await validate(saver)
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert failures == {}
    assert all(result.passed for result in report.results.values())
