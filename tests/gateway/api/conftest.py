"""Makes the command API fixtures available to these tests (see ``fixtures.py``)."""

from tests.gateway.api.fixtures import (  # noqa: F401 - imported to register the fixtures
    api_app,
    api_client,
    api_read_model,
    api_schema,
    api_settings,
    caller,
    caller_factory,
    event_count,
    idempotency_count,
)
