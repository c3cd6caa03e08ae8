"""Fixtures for the command applications: the same tests run on the in-memory store and on the
real PostgreSQL event store (marked ``integration``), with only the configuration changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from omium.commands import Backend, CommandApplication, event_store_env
from omium.kernel.settings import OmiumSettings

App = TypeVar("App", bound=CommandApplication)

BACKENDS = ["popo", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(scope="session")
def postgres_schema(settings: OmiumSettings) -> Iterator[str]:
    """A fresh PostgreSQL schema for this test session's event tables, dropped at the end.

    Fails (never skips) when PostgreSQL does not answer: integration tests are selected on
    purpose, and the stack is part of the test command (``omium up``).
    """
    pg = settings.postgres
    try:
        psycopg.connect(pg.dsn(), autocommit=True, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {pg.host}:{pg.port} does not answer ({exc}); run `omium up`")
    schema = f"test_commands_{uuid.uuid4().hex[:10]}"
    try:
        yield schema
    finally:
        # A new connection: the stack restart test may have restarted PostgreSQL meanwhile.
        with psycopg.connect(pg.dsn(), autocommit=True, connect_timeout=5) as admin:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            admin.execute(drop)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The event store under test: ``popo`` (in memory) or ``postgres`` (integration)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def event_store_env_factory(
    request: pytest.FixtureRequest, settings: OmiumSettings
) -> Callable[[Backend], dict[str, str]]:
    """Builds the application environment for a backend (PostgreSQL: the session's schema)."""

    def build(backend: Backend) -> dict[str, str]:
        if backend == "popo":
            return event_store_env(settings, backend="popo")
        schema = request.getfixturevalue("postgres_schema")
        return event_store_env(settings, schema=schema, pool_size=1, max_overflow=4)

    return build


@pytest.fixture
def app_factory(
    backend: Backend, event_store_env_factory: Callable[[Backend], dict[str, str]]
) -> Iterator[Callable[[type[App]], App]]:
    """Builds command applications on the backend under test and closes them afterwards.

    On ``popo`` every application built has its own in-memory store.
    """
    built: list[CommandApplication] = []

    def build(app_class: type[App]) -> App:
        app = app_class(event_store_env_factory(backend))
        built.append(app)
        return app

    yield build
    for app in built:
        app.close()


@pytest.fixture
def tenant_factory() -> Callable[[], str]:
    """Builds a fresh tenant id, so tests sharing a PostgreSQL schema never see each other."""
    return lambda: f"tenant-{uuid.uuid4().hex[:12]}"
