"""PostgreSQL application recorder that writes idempotency keys in the events' transaction.

The library's ``PostgresApplicationRecorder.insert_events()`` opens one transaction, calls the
``_insert_events()`` hook with the ``save()`` keywords, then locks the events table and inserts
the events. This recorder replaces that method (one pipelined round trip, no table lock: writers
take a shared advisory lock and the relay reads in commit order by transaction id, see
``relay/_sources.py``) and keeps the hook: the idempotency record is inserted first, so a
duplicate key violates the primary key, the whole transaction rolls back, and the caller sees the
library's ``IntegrityError`` exactly as for a version conflict.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor, errors
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from omium.commands._idempotency import (
    ALSO_WRITE_KWARG,
    IDEMPOTENCY_KWARG,
    IDEMPOTENCY_TABLE,
    IdempotencyRecord,
    IdempotencyStore,
)
from omium.commands._result import CommandResult
from omium.kernel.retry import retrying

_CREATE_ATTEMPTS = 6
# What a concurrent CREATE ... IF NOT EXISTS can answer the process that lost the race.
_RACES = (
    errors.DuplicateTable,
    errors.DuplicateObject,
    errors.UniqueViolation,
    errors.InternalError,
    # Two creators altering the same table and replacing the same function can deadlock;
    # PostgreSQL aborts one of them, which simply tries again.
    errors.DeadlockDetected,
)


WRITERS_LOCK_CLASS = 0x4F4D
"""First key of the advisory lock every event-store writer holds (``'OM'``)."""


def writers_lock_key(schema: str) -> tuple[int, int]:
    """The ``(class, object)`` keys of the shared advisory lock writers of ``schema`` hold.

    Every transaction that inserts events takes this lock (shared, so writers never wait on
    each other) before it writes anything, so before it has a transaction id. The relay reads
    the transaction ids of the lock's holders as its commit-order horizon: only *event-store*
    writers hold events back, not every write transaction in the cluster (an operator's open
    session, a projection's batch in another database).
    """
    digest = hashlib.sha256(f"omium.event_store.writers:{schema}".encode()).digest()
    return WRITERS_LOCK_CLASS, int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def writers_lock_statement(schema: str) -> Composed:
    """``SELECT pg_advisory_xact_lock_shared(...)`` for a writer of ``schema``'s events."""
    first, second = writers_lock_key(schema)
    return SQL("SELECT pg_advisory_xact_lock_shared({}, {})").format(first, second)


def _lz4(schema: str, table: str, column: str) -> Composed:
    """Compress a column's large values with lz4 when the server has it (else keep pglz)."""
    return SQL(
        "DO $$ BEGIN ALTER TABLE {}.{} ALTER COLUMN {} SET COMPRESSION lz4; "
        "EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
    ).format(Identifier(schema), Identifier(table), Identifier(column))


class PostgresIdempotentRecorder(PostgresApplicationRecorder, IdempotencyStore):
    """Events table (with notification log) plus the shared idempotency-key table."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str,
        idempotency_table_name: str = IDEMPOTENCY_TABLE,
    ) -> None:
        """Prepare the statements; tables are made by :meth:`create_table`.

        Args:
            datastore: The library's connection pool and schema.
            events_table_name: This application's events table.
            idempotency_table_name: The table shared by all command applications.
        """
        super().__init__(datastore, events_table_name=events_table_name)
        self._idempotency_table_name = idempotency_table_name
        self._writers_lock = writers_lock_statement(datastore.schema)
        # Creators of the same schema take turns (the lock ends with their transaction):
        # concurrent CREATE/ALTER on one catalogue otherwise fail with races or deadlocks.
        self.sql_create_statements.insert(
            0,
            SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                f"omium.event_store.create:{datastore.schema}"
            ),
        )
        self.check_identifier_length(idempotency_table_name)
        table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(idempotency_table_name)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                "tenant_id text NOT NULL, "
                "scope text NOT NULL, "
                "idempotency_key text NOT NULL, "
                "fingerprint text NOT NULL, "
                "result jsonb NOT NULL, "
                "recorded_at timestamptz NOT NULL, "
                "PRIMARY KEY (tenant_id, scope, idempotency_key))"
            ).format(table=table)
        )
        # Checkpoint states travel inline in events (up to 64 KiB): lz4 compresses them several
        # times faster than PostgreSQL's default pglz (a 60 KiB put: measured in
        # bench.checkpointer). Servers built without lz4 keep pglz.
        self.sql_create_statements.append(_lz4(self.datastore.schema, events_table_name, "state"))
        # The inserting transaction's id, so the relay can read in commit order without a
        # table lock on every insert (commands/relay/_sources.py). Rows stored before the
        # column existed all get the id of the transaction that adds it.
        events = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(events_table_name)
        )
        self.sql_create_statements += [
            SQL(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL "
                "DEFAULT pg_current_xact_id()"
            ).format(events),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tx_id, notification_id)").format(
                Identifier(f"{events_table_name}_tx_idx"), events
            ),
        ]
        # Keys are kept until pruned; the index makes "older than N days" cheap.
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {table} (recorded_at)").format(
                index=Identifier(f"{idempotency_table_name}_recorded_at_idx"), table=table
            )
        )
        self._insert_key_statement = SQL(
            "INSERT INTO {table} (tenant_id, scope, idempotency_key, fingerprint, result, "
            "recorded_at) VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(table=table)
        self._select_key_statement = SQL(
            "SELECT fingerprint, result, recorded_at FROM {table} "
            "WHERE tenant_id = %s AND scope = %s AND idempotency_key = %s"
        ).format(table=table)

    def create_table(self) -> None:
        """Create the schema if needed, then the library's tables and the key table."""
        # The library assumes the schema exists; two applications starting at once may both
        # try to create it, and the loser's duplicate error is harmless.
        with (
            contextlib.suppress(IntegrityError),
            self.datastore.transaction(commit=True) as curs,
        ):
            curs.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema))
            )
        # Every process start comes here. CREATE INDEX / ALTER TABLE ... IF NOT EXISTS still
        # queue for a lock on the events table behind any open insert, and every later insert
        # queues behind them: skip the DDL when the tables are already complete.
        if self._tables_complete():
            return
        # "IF NOT EXISTS" is not safe against a concurrent creator: PostgreSQL may answer
        # "tuple concurrently updated" or a duplicate key on its catalogue. Every statement is
        # idempotent, so a process that lost the race tries again once the winner is done.
        retrying(
            PersistenceError,
            attempts=_CREATE_ATTEMPTS,
            wait_s=0.05,
            when=lambda exc: isinstance(exc.__cause__, _RACES),
        )(super().create_table)

    def _tables_complete(self) -> bool:
        """Whether the events table (with ``tx_id`` and its index) and the key table exist."""
        schema = self.datastore.schema
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL "
                "AND to_regclass(%s) IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attname = 'tx_id' AND NOT attisdropped) "
                "AS complete",
                (
                    f'"{schema}"."{self.events_table_name}"',
                    f'"{schema}"."{self._idempotency_table_name}"',
                    f'"{schema}"."{self.events_table_name}_tx_idx"',
                    f'"{schema}"."{self.events_table_name}"',
                ),
            )
            row = curs.fetchone()
        return bool(row and row["complete"])

    @retrying(
        (psycopg.InterfaceError, psycopg.OperationalError), attempts=10, wait_s=0.2, max_wait_s=0.4
    ).wraps
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record events, their idempotency key and joined writes in one round trip.

        The library's version syncs its pipeline three times (after the inserts, at COMMIT and
        when the pipeline closes): three network round trips per command, and locks the events
        table so ids are issued in commit order. Here BEGIN, the key, the joined writes,
        NOTIFY, the inserts and COMMIT are queued on the
        autocommit connection and sent with one sync; a unique-key violation (a version
        conflict, a repeated key) aborts the transaction and is raised as the library's
        ``IntegrityError``, as before.
        """
        with self.datastore.get_connection() as conn:
            try:
                with conn.pipeline() as pipeline, conn.cursor() as curs, conn.cursor() as ids:
                    curs.execute("BEGIN")
                    # Before the first write (which assigns the transaction id): the relay's
                    # horizon is the oldest id among this lock's holders (relay/_sources.py).
                    curs.execute(self._writers_lock, prepare=True)
                    self._insert_events(curs, stored_events, **kwargs)
                    if stored_events:
                        # No table lock: the relay reads in commit order by transaction id.
                        self._notify_channel(curs)
                        ids.execute(*self._values_insert(stored_events), prepare=True)
                    curs.execute("COMMIT")
                    pipeline.sync()
                    rows = ids.fetchall() if stored_events else []
                    return [row["notification_id"] for row in rows]
            except psycopg.Error:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise

    def _values_insert(self, stored_events: Sequence[StoredEvent]) -> tuple[Composed, list[Any]]:
        """``INSERT ... VALUES (...), ... RETURNING notification_id`` with plain parameters.

        The library inserts ``unnest(%s::stored_event[])``: a composite array in text form,
        whose escaping (a regex over every state) cost ~3 ms for a 60 KiB checkpoint. Plain
        parameters go as they are (bytea in binary).
        """
        rows = SQL(", ").join([SQL("(%s, %s, %s, %s)")] * len(stored_events))
        statement = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) VALUES {} "
            "RETURNING notification_id"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name), rows)
        params: list[Any] = []
        for e in stored_events:
            params += [e.originator_id, e.originator_version, e.topic, e.state]
        return statement, params

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        record: IdempotencyRecord | None = kwargs.get(IDEMPOTENCY_KWARG)
        if record is not None:
            curs.execute(
                self._insert_key_statement,
                (
                    record.tenant_id,
                    record.scope,
                    record.key,
                    record.fingerprint,
                    Jsonb(record.result.to_json()),
                    record.recorded_at,
                ),
                prepare=True,
            )
        # Read rows written with the events (a LangGraph checkpoint's row): same transaction,
        # pipelined with the inserts, like the key above.
        for write in kwargs.get(ALSO_WRITE_KWARG, ()):
            write(curs)
        super()._insert_events(curs, stored_events, **kwargs)

    def get_idempotency_record(
        self, tenant_id: str, scope: str, key: str
    ) -> IdempotencyRecord | None:
        """Return the record for this key, or None if the key was never used."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_key_statement, (tenant_id, scope, key), prepare=True)
            row = curs.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            tenant_id=tenant_id,
            scope=scope,
            key=key,
            fingerprint=row["fingerprint"],
            result=CommandResult.from_json(row["result"]),
            recorded_at=row["recorded_at"],
        )
