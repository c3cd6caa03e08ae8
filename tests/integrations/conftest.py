"""Registers the live gateway fixtures for the integration tests (see tests/sdk/client)."""

import pytest

from tests.sdk.client.fixtures import (  # noqa: F401 - imported to register the fixtures
    async_client_factory,
    client_factory,
    live_gateway,
    tenant,
)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"
