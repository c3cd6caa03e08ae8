"""Event-store configuration: the one place that turns settings into the library's environment.

The applications are configured like any ``eventsourcing`` application, by an environment dict
(``PERSISTENCE_MODULE``, ``POSTGRES_*``); :func:`event_store_env` builds it from
:class:`~omium.kernel.settings.OmiumSettings`. Application-prefixed keys
(``EXECUTIONS_POSTGRES_POOL_SIZE``) override bare keys, as in the library.
"""

from __future__ import annotations

import base64
from typing import Literal

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    Transcoding,
)
from eventsourcing.popo import POPOFactory

from omium.commands._idempotency import PopoIdempotentRecorder
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import OmiumSettings

Backend = Literal["postgres", "popo"]

# Environment keys (the library's names).
PERSISTENCE_MODULE = "PERSISTENCE_MODULE"
POSTGRES_DBNAME = "POSTGRES_DBNAME"
POSTGRES_HOST = "POSTGRES_HOST"
POSTGRES_PORT = "POSTGRES_PORT"
POSTGRES_USER = "POSTGRES_USER"
POSTGRES_PASSWORD = "POSTGRES_PASSWORD"
POSTGRES_SCHEMA = "POSTGRES_SCHEMA"
POSTGRES_POOL_SIZE = "POSTGRES_POOL_SIZE"
POSTGRES_MAX_OVERFLOW = "POSTGRES_MAX_OVERFLOW"
POSTGRES_CONNECT_TIMEOUT = "POSTGRES_CONNECT_TIMEOUT"
POSTGRES_PRE_PING = "POSTGRES_PRE_PING"
CREATE_TABLE = "CREATE_TABLE"

PERSISTENCE_MODULES: dict[Backend, str] = {
    "postgres": "eventsourcing.postgres",
    "popo": "eventsourcing.popo",
}

EVENT_STORE_SCHEMA = "event_store"
"""PostgreSQL schema holding every command application's ``<name>_events`` table."""


def event_store_env(
    settings: OmiumSettings,
    *,
    backend: Backend = "postgres",
    schema: str = EVENT_STORE_SCHEMA,
    pool_size: int = 2,
    max_overflow: int = 8,
    create_tables: bool = True,
    aggregate_cache_size: int = 1000,
    fast_forward: bool = True,
    pre_ping: bool = False,
) -> dict[str, str]:
    """Build the environment for the command applications.

    Args:
        settings: Omium settings; only ``settings.postgres`` is read.
        backend: ``"postgres"`` for the real event store, ``"popo"`` for the in-memory one.
        schema: PostgreSQL schema for the event tables (tests use a fresh one per session).
        pool_size: Connections each application keeps open.
        max_overflow: Extra connections each application may open under load.
        create_tables: Create the schema and tables on start (off when migrations do it).
        aggregate_cache_size: Aggregates each application keeps in memory (0: none). A cached
            aggregate is brought up to date from the events stored after it ("fast-forward")
            on every load, so other processes' writes are seen and a long run is not rebuilt
            from its first event by every command.
        fast_forward: Bring a cached aggregate up to date on every load (one read). Off for
            a process that is its aggregates' usual writer (the embedded LangGraph saver): a
            write by anyone else then fails the save on the event store's unique key, the
            cached copy is dropped, and the retried command loads the aggregate afresh.
        pre_ping: Check each pooled connection before handing it out (one round trip). After
            PostgreSQL restarts, every idle pooled connection is dead; without the check each
            one fails one operation before the pool drops it, which a process that backs off
            after each failure (the relay) pays with a long wait.

    Returns:
        A ``str -> str`` dict to pass as ``env`` to any command application.
    """
    env = {PERSISTENCE_MODULE: PERSISTENCE_MODULES[backend]}
    if aggregate_cache_size > 0:
        env[Application.AGGREGATE_CACHE_MAXSIZE] = str(aggregate_cache_size)
        env[Application.AGGREGATE_CACHE_FASTFORWARD] = "y" if fast_forward else "n"
    if backend == "popo":
        return env
    pg = settings.postgres
    env.update(
        {
            POSTGRES_DBNAME: pg.database,
            POSTGRES_HOST: pg.host,
            POSTGRES_PORT: str(pg.port),
            POSTGRES_USER: pg.user,
            POSTGRES_PASSWORD: pg.password.get_secret_value(),
            POSTGRES_SCHEMA: schema,
            POSTGRES_POOL_SIZE: str(pool_size),
            POSTGRES_MAX_OVERFLOW: str(max_overflow),
            POSTGRES_CONNECT_TIMEOUT: "5",
            POSTGRES_PRE_PING: "y" if pre_ping else "n",
            CREATE_TABLE: "y" if create_tables else "n",
        }
    )
    return env


def construct_idempotent_recorder(factory: InfrastructureFactory) -> ApplicationRecorder:
    """Build the application recorder that also stores idempotency keys.

    Args:
        factory: The infrastructure factory the library chose from ``PERSISTENCE_MODULE``.

    Returns:
        A recorder that is also an :class:`~omium.commands._idempotency.IdempotencyStore`.

    Raises:
        ConfigurationError: For a persistence module without idempotency support.
    """
    if isinstance(factory, POPOFactory):
        return PopoIdempotentRecorder()
    # Imported here so the in-memory store works without the PostgreSQL driver loaded.
    from eventsourcing.postgres import PostgresFactory

    from omium.commands._postgres import PostgresIdempotentRecorder

    if isinstance(factory, PostgresFactory):
        recorder = PostgresIdempotentRecorder(
            factory.datastore, events_table_name=f"{factory.env.name.lower()}_events"
        )
        if factory.env_create_table():
            recorder.create_table()
        return recorder
    msg = f"persistence module {type(factory).__module__} is not supported by Omium commands"
    raise ConfigurationError(msg)


class BytesAsBase64(Transcoding):
    """Lets events carry ``bytes`` (inline checkpoint state) through the JSON transcoder."""

    type = bytes
    name = "bytes_b64"

    def encode(self, obj: bytes) -> str:
        """Encode bytes as base64 text."""
        return base64.b64encode(obj).decode("ascii")

    def decode(self, data: str) -> bytes:
        """Decode base64 text back to bytes."""
        return base64.b64decode(data)
