"""The relay's fixtures (a fresh event store schema and topic prefix per test), reused here."""

from tests.commands.relay.fixtures import (  # noqa: F401 - imported to register the fixtures
    relay_apps,
    relay_factory,
    relay_schema,
    relay_settings,
    topic_reader,
)
