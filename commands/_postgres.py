"""PostgreSQL application recorder that writes idempotency keys in the events' transaction.

The library's ``PostgresApplicationRecorder.insert_events()`` opens one transaction, calls the
``_insert_events()`` hook with the ``save()`` keywords, then locks the events table and inserts
the events. This recorder uses that hook to insert the idempotency record first: a duplicate key
violates the primary key, the whole transaction rolls back, and the caller sees the library's
``IntegrityError`` exactly as for a version conflict. Inserting the key *before* taking the
events-table lock also means a concurrent command with the same key waits on the key's row,
never on the table, so the two locks can't deadlock.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor, errors
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from commands._idempotency import (
    IDEMPOTENCY_KWARG,
    IDEMPOTENCY_TABLE,
    IdempotencyRecord,
    IdempotencyStore,
)
from commands._result import CommandResult

_CREATE_ATTEMPTS = 6
# What a concurrent CREATE ... IF NOT EXISTS can answer the process that lost the race.
_RACES = (
    errors.DuplicateTable,
    errors.DuplicateObject,
    errors.UniqueViolation,
    errors.InternalError,
)


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
        # "IF NOT EXISTS" is not safe against a concurrent creator: PostgreSQL may answer
        # "tuple concurrently updated" or a duplicate key on its catalogue. Every statement is
        # idempotent, so a process that lost the race tries again once the winner is done.
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                super().create_table()
                return
            except PersistenceError as exc:
                if attempt == _CREATE_ATTEMPTS - 1 or not isinstance(exc.__cause__, _RACES):
                    raise
                time.sleep(0.05 * 2**attempt * (1 + random.random()))

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
