"""``langgraph-checkpoint-conformance`` against ``AsyncOmiumSaver`` on a live gateway.

Every base capability must pass; the extended ones (``copy_thread``, ``delete_for_runs``,
``prune``) are implemented too and must pass as well. Each capability suite gets a saver in a
fresh tenant, as it would get a fresh database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)

from omium.integrations.langgraph import AsyncOmiumSaver
from omium.sdk.client import AsyncClient
from tests.sdk.client.fixtures import LiveGateway

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_async_saver_passes_the_conformance_suite(live_gateway: LiveGateway) -> None:
    @checkpointer_test(name="AsyncOmiumSaver")
    async def omium_saver() -> AsyncIterator[AsyncOmiumSaver]:
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        async with AsyncClient(
            live_gateway.url, token=live_gateway.token("developer", tenant=tenant)
        ) as client:
            saver = AsyncOmiumSaver(client)
            yield saver
            await saver.aclose()

    report = await validate(omium_saver)
    report.print_report()
    results = report.results
    failures = {name: result.failures for name, result in results.items() if result.failures}
    assert failures == {}
    for capability in BASE_CAPABILITIES | EXTENDED_CAPABILITIES:
        result = results[capability.value]
        assert result.detected and result.passed, (capability.value, result)
