"""Registers the security suite's fixtures (see ``fixtures.py``)."""

from tests.security.fixtures import (  # noqa: F401 - imported to register the fixtures
    app_factory,
    jwks,
    project_everything,
    security_client,
    security_schema,
    security_settings,
    tenant_factory,
    tokens,
)
