"""The PostgreSQL projection: relational read models, with the consumed offsets in the same
transaction as the rows (effectively exactly-once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import psycopg

from omium.kernel.kafka import Area, ConsumedEvent
from projections.base import BatchingProjection, Expected, Offsets, OffsetsMovedError
from projections.base.errors import ProjectionStoreError, TopicPartition
from projections.postgres._mappers_more import MAPPERS
from projections.postgres._migrations import check_identifier, migrate
from projections.postgres._sql import Op


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
    """

    name = "postgres"
    areas = (Area.WORKFLOWS, Area.EXECUTIONS, Area.FAILURES, Area.CONSENSUS, Area.POLICIES,
             Area.AUDIT)
    keeps_offsets = True

    def __init__(self, conn: psycopg.Connection, *, schema: str) -> None:
        super().__init__()
        self._conn = conn
        self._schema = check_identifier(schema)
        self._sql: dict[str, str] = {}

    @classmethod
    def open(cls, dsn: str, *, schema: str, run_migrations: bool = True) -> Self:
        """Connect, migrate ``schema`` (unless told not to) and return the projection."""
        conn = connect(dsn)
        try:
            if run_migrations:
                migrate(conn, schema)
        except BaseException:
            conn.close()
            raise
        return cls(conn, schema=schema)

    @property
    def schema(self) -> str:
        """The schema written to."""
        return self._schema

    def prepare(self, consumed: ConsumedEvent) -> Sequence[Op]:
        """The statements of one event (none for event types this read model ignores)."""
        mapper = MAPPERS.get(consumed.event["event_type"])
        return mapper(consumed.event) if mapper is not None else ()

    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Op]]],
        offsets: Offsets,
        expected: Expected,
    ) -> int:
        """Run the batch's statements and store ``offsets`` in one transaction.

        Raises:
            OffsetsMovedError: The stored offsets are not ``expected`` (nothing written).
            ProjectionStoreError: PostgreSQL failed (nothing written).
        """
        ops = [op for _, event_ops in batch for op in event_ops]
        try:
            with self._conn.transaction():
                self._check_offsets(offsets, expected)
                with self._conn.pipeline(), self._conn.cursor() as cur:
                    for op in ops:
                        cur.execute(self._render(op.sql), op.params)
                    cur.executemany(self._render(_SAVE_OFFSET),
                                    [(t, p, o) for (t, p), o in offsets.items()])
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"writing to {self._schema} failed: {exc}") from exc
        return len(ops)

    def stored_offsets(self) -> dict[TopicPartition, int]:
        """Every offset stored in the schema."""
        try:
            rows = self._conn.execute(self._render(_LOAD_OFFSETS)).fetchall()
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"reading offsets of {self._schema} failed: {exc}") from exc
        return {(topic, partition): offset for topic, partition, offset in rows}

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _check_offsets(self, offsets: Offsets, expected: Expected) -> None:
        # FOR UPDATE also makes a replay's swap (which locks this table) wait for this batch.
        rows = self._conn.execute(self._render(_LOCK_OFFSETS),
                                  ([t for t, _ in offsets], [p for _, p in offsets])).fetchall()
        stored: Mapping[TopicPartition, int] = {(t, p): o for t, p, o in rows}
        if any(stored.get(tp) != expected.get(tp) for tp in offsets):
            raise OffsetsMovedError(self.stored_offsets())

    def _render(self, sql: str) -> str:
        rendered = self._sql.get(sql)
        if rendered is None:
            rendered = self._sql[sql] = sql.replace("{s}", self._schema)
        return rendered


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
