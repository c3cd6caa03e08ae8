"""Registers the CLI test fixtures (see ``fixtures.py``)."""

from tests.cli.fixtures import (  # noqa: F401 - imported to register the fixtures
    cli,
    live_pipeline,
    operator_client,
)
from tests.sdk.client.fixtures import (  # noqa: F401 - imported to register the fixtures
    client_factory,
    live_gateway,
    tenant,
)
