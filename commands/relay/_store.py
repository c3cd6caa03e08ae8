"""The relay's own state in PostgreSQL: positions in the notification logs and chain heads.

Two tables beside the events tables, in the event store's schema:

- ``relay_positions (application, notification_id)``: the last notification of each
  application's log that is on Kafka;
- ``relay_chain_heads (aggregate_id, aggregate_version, hash)``: the last relayed version of each
  aggregate and its hash, the next event's ``prev_hash``.

Both are written in one transaction after Kafka has committed a batch, so after any crash the
heads describe exactly the events up to the stored positions: re-relaying from there recomputes
the same hashes. Writes only move forward (``WHERE stored < new``), so a stale relay that lost its
lock can never move a position or a head back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from omium.commands.relay._sources import Position
from omium.commands.relay.errors import RelayStoreError

POSITIONS_TABLE = "relay_positions"
CHAIN_HEADS_TABLE = "relay_chain_heads"


@dataclass(frozen=True)
class ChainLink:
    """The last relayed event of one aggregate.

    Attributes:
        aggregate_version: Its version (an event that was dead-lettered counts as relayed).
        hash: The hash of the last event actually published (the next ``prev_hash``).
    """

    aggregate_version: int
    hash: str


class PostgresRelayStore:
    """Positions and chain heads of one event store schema.

    Args:
        dsn: libpq connection string of the event store's database.
        schema: The event store schema (the tables live beside the events tables).
    """

    def __init__(self, dsn: str, *, schema: str) -> None:
        """Remember where to connect; nothing is opened until the first call."""
        self._dsn = dsn
        self._schema = schema
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._positions = sql.Identifier(schema, POSITIONS_TABLE)
        self._heads = sql.Identifier(schema, CHAIN_HEADS_TABLE)

    @property
    def schema(self) -> str:
        """The event store schema."""
        return self._schema

    def create_tables(self) -> None:
        """Create the schema and both tables if they are missing."""
        statements = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (application text PRIMARY KEY, "
                "notification_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
            ).format(self._positions),
            # Commit-order positions (see _sources.py); NULL: stored by a relay that read by id.
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS tx_id bigint").format(self._positions),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (aggregate_id text PRIMARY KEY, "
                "aggregate_version bigint NOT NULL, hash text NOT NULL)"
            ).format(self._heads),
        ]
        with self._transaction() as conn:
            for statement in statements:
                conn.execute(statement)

    def positions(self) -> dict[str, Position]:
        """The stored position of every application that has one."""
        with self._transaction() as conn:
            rows = conn.execute(
                sql.SQL("SELECT application, tx_id, notification_id FROM {}").format(
                    self._positions
                )
            ).fetchall()
        return {
            str(app): Position(-1 if tx is None else int(str(tx)), int(str(position)))
            for app, tx, position in rows
        }

    def chain_heads(self, aggregate_ids: Iterable[str]) -> dict[str, ChainLink]:
        """The stored heads of these aggregates (missing: nothing relayed yet)."""
        ids = sorted(set(aggregate_ids))
        if not ids:
            return {}
        with self._transaction() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT aggregate_id, aggregate_version, hash FROM {} "
                    "WHERE aggregate_id = ANY(%s)"
                ).format(self._heads),
                (ids,),
            ).fetchall()
        return {str(a): ChainLink(int(str(v)), str(h)) for a, v, h in rows}

    def commit(self, positions: Mapping[str, Position], heads: Mapping[str, ChainLink]) -> None:
        """Store new positions and heads together, in one transaction.

        Call only after Kafka acknowledged every event up to these positions.
        """
        with self._transaction() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {t} (application, tx_id, notification_id) "
                    "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
                    "ON CONFLICT (application) DO UPDATE SET tx_id = EXCLUDED.tx_id, "
                    "notification_id = EXCLUDED.notification_id, updated_at = now() "
                    "WHERE {t}.tx_id IS NULL "
                    "OR ({t}.tx_id, {t}.notification_id) "
                    "< (EXCLUDED.tx_id, EXCLUDED.notification_id)"
                ).format(t=self._positions),
                (
                    list(positions),
                    [p.tx_id for p in positions.values()],
                    [p.notification_id for p in positions.values()],
                ),
            )
            if heads:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {t} (aggregate_id, aggregate_version, hash) "
                        "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[]) "
                        "ON CONFLICT (aggregate_id) DO UPDATE SET "
                        "aggregate_version = EXCLUDED.aggregate_version, hash = EXCLUDED.hash "
                        "WHERE {t}.aggregate_version < EXCLUDED.aggregate_version"
                    ).format(t=self._heads),
                    (
                        list(heads),
                        [link.aggregate_version for link in heads.values()],
                        [link.hash for link in heads.values()],
                    ),
                )

    def reset(self) -> None:
        """Forget every position and head: the next run relays everything again.

        The events are re-sent with the same ids, bytes and hashes (consumers dedupe them).
        """
        with self._transaction() as conn:
            conn.execute(sql.SQL("DELETE FROM {}").format(self._positions))
            conn.execute(sql.SQL("DELETE FROM {}").format(self._heads))

    def close(self) -> None:
        """Close the connection, if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, connect_timeout=5)
            with self._conn.transaction():
                yield self._conn
        except psycopg.Error as exc:
            # A broken connection is replaced on the next call; the caller retries the batch.
            self.close()
            raise RelayStoreError(f"relay store in schema {self._schema!r}: {exc}") from exc
