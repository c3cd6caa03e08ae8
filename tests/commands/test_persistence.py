"""Event-store configuration: the environment factory, the backends and the tables."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from pydantic import SecretStr

from omium.commands import (
    EVENT_STORE_SCHEMA,
    CommandApplications,
    EventStoreError,
    ExecutionsApplication,
    event_store_env,
)
from omium.commands._application import translate_persistence_errors
from omium.commands._idempotency import IDEMPOTENCY_TABLE
from omium.kernel.errors import ConfigurationError, PersistenceError
from omium.kernel.settings import OmiumSettings, PostgresSettings


def test_the_in_memory_environment_names_only_the_module(settings: OmiumSettings) -> None:
    assert event_store_env(settings, backend="popo", aggregate_cache_size=0) == {
        "PERSISTENCE_MODULE": "eventsourcing.popo"
    }


def test_the_postgres_environment_comes_from_the_settings() -> None:
    settings = OmiumSettings(
        postgres=PostgresSettings(host="db", port=6000, password=SecretStr("s3cret"))
    )

    env = event_store_env(settings, pool_size=3, create_tables=False)

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"]) == (
        "db",
        "6000",
        "s3cret",
    )
    assert (env["POSTGRES_SCHEMA"], env["POSTGRES_POOL_SIZE"], env["CREATE_TABLE"]) == (
        EVENT_STORE_SCHEMA,
        "3",
        "n",
    )


def test_applications_never_read_the_process_environment(
    settings: OmiumSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "no.such.module")
    monkeypatch.setenv("EXECUTIONS_PERSISTENCE_MODULE", "no.such.module")

    app = ExecutionsApplication(event_store_env(settings, backend="popo"))

    assert app.env.get("PERSISTENCE_MODULE") == "eventsourcing.popo"


def test_an_application_prefixed_key_beats_the_bare_key() -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.popo", "EXECUTIONS_POOL": "7", "POOL": "1"}

    assert ExecutionsApplication(env).env.get("POOL") == "7"


def test_a_store_without_idempotency_support_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        ExecutionsApplication(
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}
        )


def test_library_store_errors_become_event_store_errors() -> None:
    with pytest.raises(EventStoreError) as translated, translate_persistence_errors():
        raise OperationalError("connection refused")

    assert isinstance(translated.value, PersistenceError)
    assert isinstance(translated.value.__cause__, OperationalError)


def test_all_applications_open_and_close_together(settings: OmiumSettings) -> None:
    with CommandApplications.create(event_store_env(settings, backend="popo")) as apps:
        names = [a.name for a in (apps.workflows, apps.executions, apps.consensus, apps.policies)]

    assert names == ["Workflows", "Executions", "Consensus", "Policies"]


@pytest.mark.integration
def test_each_application_has_an_events_table_with_a_notification_log_in_one_schema(
    settings: OmiumSettings,
    postgres_schema: str,
    event_store_env_factory: Callable[[str], dict[str, str]],
) -> None:
    with CommandApplications.create(event_store_env_factory("postgres")):
        pass

    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s",
            (postgres_schema,),
        ):
            columns.setdefault(table, set()).add(column)

    assert {
        "workflows_events",
        "executions_events",
        "consensus_events",
        "policies_events",
        IDEMPOTENCY_TABLE,
    } <= set(columns)
    assert "notification_id" in columns["executions_events"]
    assert {"tenant_id", "scope", "idempotency_key", "fingerprint", "result"} <= columns[
        IDEMPOTENCY_TABLE
    ]


def test_a_command_handler_keeps_its_name_and_docstring() -> None:
    handler: Any = ExecutionsApplication.complete_step
    assert handler.__name__ == "complete_step"
    assert "running step" in handler.__doc__


@pytest.mark.integration
def test_processes_starting_at_once_all_create_or_find_the_tables(settings: OmiumSettings) -> None:
    # Worker replicas start together; PostgreSQL's "IF NOT EXISTS" races between them.
    schema = f"test_race_{uuid.uuid4().hex[:10]}"
    env = event_store_env(settings, schema=schema, pool_size=1, max_overflow=2)
    starters = 6
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            CommandApplications.create(env).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    assert errors == []
