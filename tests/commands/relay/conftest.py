"""Makes the relay fixtures available to these tests (they live in ``fixtures.py``, STYLE §5)."""

from tests.commands.relay.fixtures import (  # noqa: F401 - imported to register the fixtures
    crashing_relay_factory,
    relay_apps,
    relay_factory,
    relay_process_factory,
    relay_schema,
    relay_settings,
    topic_reader,
)
