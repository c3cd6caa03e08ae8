"""Fixtures for the provider tests: a local OpenAI-compatible server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sdk.providers.chat_server import ChatServer
from tests.sdk.providers.messages_server import messages_server


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A running chat-completions server on 127.0.0.1 (stopped after the test)."""
    with ChatServer() as server:
        yield server


@pytest.fixture
def messages_api() -> Iterator[ChatServer]:
    """A running Anthropic Messages API server on 127.0.0.1 (stopped after the test)."""
    with messages_server() as server:
        yield server
