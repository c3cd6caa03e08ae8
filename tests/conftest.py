"""Test-suite wiring: the session fixtures for the local stack, and test ordering."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures_stack"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this conftest understands."""
    config.addinivalue_line(
        "markers",
        "restarts_stack: stops and restarts the local stack; such tests run after all others",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move stack-restarting tests to the end of the session.

    Other tests hold connections and consumers on the shared stack; a restart in the middle of the
    run would break them for reasons unrelated to what they test.
    """
    items.sort(key=lambda item: item.get_closest_marker("restarts_stack") is not None)
