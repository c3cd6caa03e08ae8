"""Makes the command fixtures available to these tests.

They live in ``fixtures.py`` (STYLE §5); until ``tests/conftest.py`` lists
``tests.commands.fixtures`` in ``pytest_plugins``, they are imported here.
"""

from tests.commands.fixtures import (  # noqa: F401 - imported to register the fixtures
    app_factory,
    backend,
    event_store_env_factory,
    postgres_schema,
    tenant_factory,
)
