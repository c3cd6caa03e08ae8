"""Session fixtures for tests that talk to the real local stack (``omium up``).

Registered from ``tests/conftest.py`` through ``pytest_plugins``.
"""

from __future__ import annotations

import pytest

from omium.infra.localstack import LocalStack
from omium.kernel.settings import OmiumSettings, load_settings


@pytest.fixture(scope="session")
def settings() -> OmiumSettings:
    """Settings as every Omium process would load them (defaults, then ``OMIUM_*`` env)."""
    return load_settings()


@pytest.fixture(scope="session")
def local_stack(settings: OmiumSettings) -> LocalStack:
    """A handle on the local stack of ``settings.stack.data_dir`` (does not start anything)."""
    return LocalStack(settings)


@pytest.fixture(scope="session")
def stack(settings: OmiumSettings, local_stack: LocalStack) -> OmiumSettings:
    """Require a running stack: every component of the configured profile answers.

    Raises:
        infra.localstack.StackNotRunningError: Something is down; the message says to run
            ``omium up``. Tests are not allowed to silently skip here: the stack is part of the
            test command.

    Returns:
        The settings, so tests can write ``stack.kafka.bootstrap_servers``.
    """
    local_stack.check_ready()
    return settings
