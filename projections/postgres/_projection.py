"""The PostgreSQL projection: relational read models, with the consumed offsets in the same
transaction as the rows (effectively exactly-once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import psycopg

from omium.kernel.kafka import Area, ConsumedEvent
from omium.projections.base import (
    BatchingProjection,
    Expected,
    FlushResult,
    Offsets,
    OffsetsMovedError,
    Reject,
)
from omium.projections.base.errors import ProjectionStoreError, TopicPartition
from omium.projections.postgres._batch import plan, statement
from omium.projections.postgres._mappers_more import MAPPERS
from omium.projections.postgres._migrations import check_identifier, migrate
from omium.projections.postgres._sql import Op


def connect(dsn: str, *, autocommit: bool = True, timeout_s: int = 10) -> psycopg.Connection:
    """A connection for read-model work, without server-side prepared statements.

    Prepared statements are bound to table OIDs, and a replay swaps in tables with new OIDs under
    the same names; re-parsing every statement keeps names meaning the live tables.

    Raises:
        ProjectionStoreError: PostgreSQL cannot be reached.
    """
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=timeout_s)
    except psycopg.Error as exc:
        raise ProjectionStoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    conn.prepare_threshold = None
    return conn


class PostgresProjection(BatchingProjection[Op]):
    """Workflows, executions, steps, checkpoints, failures, consensus, policies and audit.

    Args:
        conn: An autocommit connection (see :func:`connect`); the projection owns it.
        schema: The PostgreSQL schema holding the tables (migrated by :meth:`open`).
        dsn: Where to connect again when the connection broke (PostgreSQL restarted, the
            session was terminated); without it, a broken connection stays broken.
    """

    name = "postgres"
    areas = (
        Area.WORKFLOWS,
        Area.EXECUTIONS,
        Area.FAILURES,
        Area.CONSENSUS,
        Area.POLICIES,
        Area.AUDIT,
    )
    keeps_offsets = True

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        schema: str,
        set_based: bool = True,
        dsn: str | None = None,
    ) -> None:
        super().__init__()
        self._conn = conn
        self._dsn = dsn
        self.reconnects = 0
        self._schema = check_identifier(schema)
        self._sql: dict[str, str] = {}
        self._set_based = set_based
        self._types: dict[str, dict[str, str]] | None = None
        self._reject: Reject | None = None
        self.statements = 0

    @classmethod
    def open(
        cls, dsn: str, *, schema: str, run_migrations: bool = True, set_based: bool = True
    ) -> Self:
        """Connect, migrate ``schema`` (unless told not to) and return the projection.

        ``set_based=False`` runs every op as its own statement (the reference behaviour).
        """
        conn = connect(dsn)
        try:
            if run_migrations:
                migrate(conn, schema)
        except BaseException:
            conn.close()
            raise
        return cls(conn, schema=schema, set_based=set_based, dsn=dsn)

    @property
    def schema(self) -> str:
        """The schema written to."""
        return self._schema

    @property
    def connection(self) -> psycopg.Connection:
        """The projection's connection (session settings, e.g. a replay's)."""
        return self._conn

    def prepare(self, consumed: ConsumedEvent) -> Sequence[Op]:
        """The statements of one event (none for event types this read model ignores)."""
        mapper = MAPPERS.get(consumed.event["event_type"])
        return mapper(consumed.event) if mapper is not None else ()

    def flush(
        self, offsets: Offsets, *, expected: Expected, reject: Reject | None = None
    ) -> FlushResult:
        """Write the batch; events PostgreSQL refuses go to ``reject`` before the commit."""
        self._reject = reject
        try:
            return super().flush(offsets, expected=expected)
        finally:
            self._reject = None

    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Op]]],
        offsets: Offsets,
        expected: Expected,
    ) -> FlushResult:
        """Run the batch's statements and store ``offsets`` in one transaction.

        Set-based (see ``_batch``) unless opened otherwise. When PostgreSQL refuses a row for
        good (a data or constraint error), the batch is written again event by event, each in a
        savepoint: the refused events are rolled back alone and handed to ``reject`` (made
        durable in the DLQ) before the transaction with the others and the offsets commits.

        Raises:
            OffsetsMovedError: The stored offsets are not ``expected`` (nothing written).
            ProjectionStoreError: PostgreSQL failed (nothing written).
        """
        ops = [op for _, event_ops in batch for op in event_ops]
        self._reconnect_if_broken()
        try:
            with self._conn.transaction():
                self._check_offsets(offsets, expected)
                with self._conn.pipeline(), self._conn.cursor() as cur:
                    if self._set_based:
                        self._run_set_based(cur, ops)
                    else:
                        for op in ops:
                            cur.execute(self._render(op.sql), op.params)
                        self.statements += len(ops)
                    self._save_offsets(cur, offsets)
        except _REFUSALS as exc:
            return self._write_sifting(batch, offsets, expected, first_error=exc)
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"writing to {self._schema} failed: {exc}") from exc
        return FlushResult(events=len(batch), writes=len(ops))

    def _run_set_based(self, cur: psycopg.Cursor[Any], ops: Sequence[Op]) -> None:
        types = self._column_types()
        for level in plan(ops):
            for group in level:
                sql, params = statement(group, types)
                if isinstance(group.template, tuple) and group.template[0] == "raw":
                    cur.executemany(self._render(sql), params)
                else:
                    cur.execute(self._render(sql), params)
                self.statements += 1

    def _write_sifting(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Op]]],
        offsets: Offsets,
        expected: Expected,
        *,
        first_error: psycopg.Error,
    ) -> FlushResult:
        """Event by event, each in a savepoint; refused events are rejected, not written."""
        rejected: list[tuple[ConsumedEvent, str]] = []
        writes = 0
        try:
            with self._conn.transaction():
                self._check_offsets(offsets, expected)
                for consumed, ops in batch:
                    try:
                        with self._conn.transaction(), self._conn.cursor() as cur:
                            for op in ops:
                                cur.execute(self._render(op.sql), op.params)
                        writes += len(ops)
                    except _REFUSALS as exc:
                        rejected.append((consumed, f"PostgreSQL refused: {exc}"))
                if rejected and self._reject is not None:
                    self._reject(rejected)  # durable before the offsets move past them
                with self._conn.cursor() as cur:
                    self._save_offsets(cur, offsets)
        except psycopg.Error as exc:
            raise ProjectionStoreError(
                f"writing to {self._schema} failed: {exc} (after {first_error})"
            ) from exc
        return FlushResult(
            events=len(batch),
            writes=writes,
            rejected=[] if self._reject is not None else rejected,
        )

    def _save_offsets(self, cur: psycopg.Cursor[Any], offsets: Offsets) -> None:
        cur.executemany(self._render(_SAVE_OFFSET), [(t, p, o) for (t, p), o in offsets.items()])

    def _column_types(self) -> dict[str, dict[str, str]]:
        if self._types is None:
            rows = self._conn.execute(_COLUMN_TYPES, (self._schema,)).fetchall()
            types: dict[str, dict[str, str]] = {}
            for table, column, kind in rows:
                types.setdefault(table, {})[column] = kind
            self._types = types
        return self._types

    def stored_offsets(self) -> dict[TopicPartition, int]:
        """Every offset stored in the schema."""
        self._reconnect_if_broken()
        try:
            rows = self._conn.execute(self._render(_LOAD_OFFSETS)).fetchall()
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"reading offsets of {self._schema} failed: {exc}") from exc
        return {(topic, partition): offset for topic, partition, offset in rows}

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _reconnect_if_broken(self) -> None:
        """Replace a connection that PostgreSQL closed (a restart, a terminated session).

        psycopg marks a connection closed once a statement found it broken; it never connects
        again by itself. The failed call already reported a :class:`ProjectionStoreError`, which
        the runner retries; the retry lands here and gets a new session.

        Raises:
            ProjectionStoreError: PostgreSQL cannot be reached yet.
        """
        if not self._conn.closed or self._dsn is None:
            return
        self._conn = connect(self._dsn)
        self._types = None  # the tables may have been migrated meanwhile
        self.reconnects += 1

    def _check_offsets(self, offsets: Offsets, expected: Expected) -> None:
        # FOR UPDATE also makes a replay's swap (which locks this table) wait for this batch.
        rows = self._conn.execute(
            self._render(_LOCK_OFFSETS), ([t for t, _ in offsets], [p for _, p in offsets])
        ).fetchall()
        stored: Mapping[TopicPartition, int] = {(t, p): o for t, p, o in rows}
        if any(stored.get(tp) != expected.get(tp) for tp in offsets):
            raise OffsetsMovedError(self.stored_offsets())

    def _render(self, sql: str) -> str:
        rendered = self._sql.get(sql)
        if rendered is None:
            rendered = self._sql[sql] = sql.replace("{s}", self._schema)
        return rendered


_REFUSALS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
"""Errors that refuse a row for good (bad value, constraint): retrying cannot help."""

_COLUMN_TYPES = (
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
)
_LOAD_OFFSETS = "SELECT topic, partition, next_offset FROM {s}.projection_offsets"
_LOCK_OFFSETS = (
    "SELECT o.topic, o.partition, o.next_offset FROM {s}.projection_offsets o "
    "JOIN unnest(%s::text[], %s::int[]) AS b(topic, partition) "
    "ON o.topic = b.topic AND o.partition = b.partition FOR UPDATE OF o"
)
_SAVE_OFFSET = (
    "INSERT INTO {s}.projection_offsets (topic, partition, next_offset) VALUES (%s, %s, %s) "
    "ON CONFLICT (topic, partition) DO UPDATE "
    "SET next_offset = EXCLUDED.next_offset, updated_at = now()"
)
